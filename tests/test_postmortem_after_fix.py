"""A postmortem written after the fix keeps the incident; "What was done" is this incarnation's only;
impact under a gap says what could not be seen; a running `sandbox serve` does not undo `sandbox reset`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from vyxops.act.fixes import apply_plan, plan_fixes
from vyxops.analysis.investigate import Investigation, investigate
from vyxops.fetch.session import open_session
from vyxops.shell.cli import main
from vyxops.testing.served import served_sandbox
from vyxops.views.postmortem import render_postmortem

APP = "vyx-app"
SCENARIOS = Path(__file__).parent / "scenarios"


def _fix_and_look_again(sandbox_dir: Path, audit: Path) -> Investigation:
    """Investigate the seed, apply every planned fix, and investigate again (the on-call's second look)."""
    with open_session("sandbox", scenario="stub-image", sandbox_dir=sandbox_dir) as s:
        apply_plan(s, plan_fixes(investigate(s, APP)), dry_run=False, confirm=APP, app=APP, audit_log=audit)
        return investigate(s, APP)


def _done_rows(text: str) -> list[str]:
    part = text.split("## What was done", 1)[1].split("\n## ", 1)[0]
    return [line for line in part.splitlines() if line.startswith("| 20")]


def test_postmortem_after_the_fix_keeps_the_incident(tmp_path: Path) -> None:
    """Title, timeline and root cause describe the incident that happened, and name the secret's old image."""
    audit = tmp_path / "audit.jsonl"
    inv = _fix_and_look_again(tmp_path / "sb", audit)
    assert inv.root is None and inv.resolved is not None  # the detectors see the failure as history
    assert inv.document["resolved"]["code"] == "MACHINE_EXITED_AUTO_DESTROYED"
    text = render_postmortem(inv, audit_log=audit)
    title = text.splitlines()[0]
    assert "no root cause" not in title
    assert "resolved" in title and "DOCKER\\_IMAGE" in title and "vyx-app:stub" in title
    assert "No incident in the window" not in text
    timeline = text.split("## Timeline", 1)[1].split("\n## ", 1)[0]
    assert "machine 5683732efe3208 exited with code 0" in timeline
    cause = text.split("## Root cause and evidence", 1)[1].split("\n## ", 1)[0]
    assert "`PIN_SECRET_TO_RELEASE`" in cause and "vyx-app:stub" in cause
    assert "No root cause: no root cause" not in text


def test_healthy_window_still_says_no_incident_once(tmp_path: Path) -> None:
    """A window with nothing failed at all keeps "No incident in the window", without a doubled phrase."""
    scenario = SCENARIOS / "user-sessions-end-normally.yaml"
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "sb") as s:
        inv = investigate(s, "class-app")
    text = render_postmortem(inv, audit_log=tmp_path / "audit.jsonl")
    assert inv.resolved is None and "resolved" not in inv.document
    assert "No incident in the window." in text
    assert "No root cause: no root cause" not in text and "No root cause: nothing critical found." in text


def test_what_was_done_is_this_incarnation_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `sandbox reset` and a second apply, "What was done" lists the second apply's fixes once."""
    sandbox_dir, audit = tmp_path / "sb", tmp_path / "audit.jsonl"
    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(sandbox_dir))
    first = _fix_and_look_again(sandbox_dir, audit)
    once = _done_rows(render_postmortem(first, audit_log=audit))
    assert main(["sandbox", "reset", "--scenario", "stub-image"]) == 0
    again = _fix_and_look_again(sandbox_dir, audit)
    assert again.evidence.incarnation and again.evidence.incarnation != first.evidence.incarnation
    rows = _done_rows(render_postmortem(again, audit_log=audit))
    assert len(rows) == len(once) and sum("`PIN_SECRET_TO_RELEASE`" in r for r in rows) == 1
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert {x["incarnation"] for x in lines} == {first.evidence.incarnation, again.evidence.incarnation}


def test_impact_under_a_gap_says_what_could_not_be_seen(tmp_path: Path) -> None:
    """Free plan, logs aged out: no failure is seen, but the refusals were in the span the logs lost."""
    scenario = SCENARIOS / "outage-function-logs-aged-out-free-plan.yaml"
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "sb") as s:
        inv = investigate(s, "worker-app", since="2026-06-02T13:00:00Z")
    sentence = inv.impact.sentence()
    assert "No user session failed in the window" not in sentence
    assert sentence.startswith("No failed session seen outside 2026-06-02 13:00")
    assert (
        "supabase.function_logs from 2026-06-02 13:00:00.000 UTC to 2026-06-02 20:00:00.000 UTC could not be read"
        in sentence
    )


def test_running_serve_does_not_undo_a_reset(sandbox_env: Path) -> None:
    """A served sandbox that held a changed world adopts the reset one and never saves the old one over it."""
    from vyxops_sandbox.world import World

    env = {**os.environ, "VYXOPS_SANDBOX_DIR": str(sandbox_env)}
    World.load("stub-image", sandbox_env)
    with served_sandbox(env) as base, httpx.Client(base_url=base, timeout=10) as c:  # saves its world when it stops
        w = World.open(sandbox_env)
        assert w is not None
        w.unset_secrets(["DOCKER_IMAGE"])
        w.save()
        assert c.get("/_sandbox/session").status_code == 200  # the server adopts the change
        old = c.get("/_sandbox/session").json().get("incarnation")
        assert main(["sandbox", "reset", "--scenario", "stub-image"]) == 0
        new = c.get("/_sandbox/session").json().get("incarnation")
    kept = World.open(sandbox_env)
    assert kept is not None and "DOCKER_IMAGE" in kept.state["supabase"]["secrets"]  # the reset world, not the old
    assert new != old and kept.incarnation == new  # the server answered from the reset world

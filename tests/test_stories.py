"""Stories nobody scripted vyxops for (tests/scenarios), diagnosed by SPEC.md's causal principles.

Each scenario file's header says the story and its right diagnosis; these tests pin
what a user relies on in each: the root cause, what is (and is not) critical, what the
summary says and what it must never claim.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from vyxops.testing.runs import findings_of as by_code
from vyxops.testing.runs import investigate_scenario

HERE = Path(__file__).parent / "scenarios"


run = functools.partial(investigate_scenario, scenarios=HERE)


def test_a_release_killed_for_memory_after_reporting_running_is_the_machine_not_the_callback(tmp_path: Path) -> None:
    """OOM after `running`: the machine's exit is the root (killed for memory); the row's drift follows it."""
    name = "release-oom-killed-after-reporting-running"
    inv = run(tmp_path, name, _app_of(name))
    assert inv.root is not None and inv.root.code == "MACHINE_EXITED_AUTO_DESTROYED"
    assert "killed for memory" in inv.root.title and inv.root.facts["exit_code"] == 137
    assert "reported `running`" in inv.summary and "never reported back" not in inv.summary
    assert all(f.severity == "critical" for f in by_code(inv, "DB_FLY_STATE_DRIFT"))


def test_a_pull_failure_is_not_blamed_on_a_tag_deleted_after_it(tmp_path: Path) -> None:
    """The launch failed before the tag was deleted: MACHINE_LAUNCH_FAILED is the root; the missing tag a warning."""
    inv = run(tmp_path, "pull-failed-then-tag-deleted-later", "render-app")
    assert inv.root is not None and inv.root.code == "MACHINE_LAUNCH_FAILED"
    [missing] = by_code(inv, "IMAGE_TAG_MISSING")
    assert missing.severity == "warning"
    assert "next provisioning will be refused" in inv.summary and "did not cause" in inv.summary


def test_an_overwritten_latest_that_provisioning_uses_is_the_root(tmp_path: Path) -> None:
    """Secret unset, :latest overwritten with a stub: LATEST_TAG_STALE explains the exits, not the stub alone."""
    inv = run(tmp_path, "latest-overwritten-with-a-stub-used-by-provisioning", "notes-app")
    assert inv.root is not None and inv.root.code == "LATEST_TAG_STALE" and inv.root.severity == "critical"
    exits = by_code(inv, "MACHINE_EXITED_AUTO_DESTROYED")
    assert exits and all(f.severity == "critical" for f in exits)
    assert "overwritten" in inv.summary


def test_refusals_naming_a_typoed_repository_are_this_apps(tmp_path: Path) -> None:
    """Every refused create counts, whatever repository it names: three refusals under IMAGE_TAG_MISSING."""
    inv = run(tmp_path, "secret-names-a-typoed-repository", "vyx-app")
    assert inv.root is not None and inv.root.code == "IMAGE_TAG_MISSING"
    assert "registry.fly.io/vyx-ap:" in inv.root.facts["ref"]
    [refused] = by_code(inv, "MACHINE_CREATE_REJECTED")
    assert refused.facts["count"] == 3 and inv.impact.refused == 3


@pytest.mark.parametrize("name", ["healthy-app-deploys-with-release-command", "user-sessions-end-normally"])
def test_machines_that_exit_by_design_are_healthy(tmp_path: Path, name: str) -> None:
    """Release commands and sessions that end with their row `stopped` exit and are destroyed: healthy, no finding."""
    inv = run(tmp_path, name, _app_of(name))
    assert inv.verdict == "healthy" and inv.root is None and inv.findings == []


def _app_of(name: str) -> str:
    for line in (HERE / f"{name}.yaml").read_text().splitlines():
        if line.startswith("fly:"):
            return line.split("apps: [")[1].split("]")[0].split(",")[0].strip()
    raise AssertionError(name)


def test_a_machine_that_keeps_restarting_is_its_own_failure(tmp_path: Path) -> None:
    """A worker crash-looping under on-failure is MACHINE_RESTART_LOOP; the healthy provisioning chain is not blamed."""
    inv = run(tmp_path, "machine-keeps-restarting-on-failure", "queue-app")
    assert inv.root is not None and inv.root.code == "MACHINE_RESTART_LOOP"
    assert {f.code for f in inv.findings} == {"MACHINE_RESTART_LOOP"}
    assert inv.root.facts["image"] == "registry.fly.io/queue-app:worker-2026-06-02"


def test_an_outage_whose_logs_aged_out_is_inconclusive_not_healthy(tmp_path: Path) -> None:
    """Free plan, refusals gone from the logs: the verdict is inconclusive, with the gap and how to see it."""
    inv = run(tmp_path, "outage-function-logs-aged-out-free-plan", _app_of("outage-function-logs-aged-out-free-plan"))
    assert inv.verdict == "inconclusive" and inv.document["complete"] is False and inv.gaps
    assert "--probe" in inv.summary
    from vyxops.analysis.audit import worst

    assert worst(inv) == "warning"  # an audit counts it as a warning, never as a pass


def test_a_window_reaching_past_the_plans_retention_names_the_function_logs_gap(tmp_path: Path) -> None:
    """Looking back to the outage, the part Free no longer keeps is a supabase.function_logs gap."""
    name = "outage-function-logs-aged-out-free-plan"
    inv = run(tmp_path, name, _app_of(name), since="2026-06-02T13:00:00Z")
    assert any(g.source == "supabase.function_logs" for g in inv.gaps)


def test_focusing_on_a_healthy_machine_keeps_the_app_wide_root_cause(tmp_path: Path) -> None:
    """--machine on a machine that served keeps SECRET_IMAGE_NOT_CURRENT_RELEASE, and drops the others' failures."""
    whole = run(tmp_path, "some-machines-failed", "gamma-app")
    healthy = whole.context.ledger
    good = healthy[healthy["outcome"] == "running"]["machine_id"].iloc[0]
    focused = run(tmp_path, "some-machines-failed", "gamma-app", machine_id=good)
    assert focused.root is not None and focused.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
    assert not any(f.facts.get("machine_id") not in (None, good) for f in focused.findings)
    assert set(focused.timeline["machine_id"].dropna()) <= {good}

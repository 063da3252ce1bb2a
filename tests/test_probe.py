"""--probe: a canary provisioned now shows what old evidence no longer can, and cleans up after itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vyxops.act.fixes import apply_plan, plan_fixes
from vyxops.act.probe import probe_and_investigate
from vyxops.analysis.investigate import investigate
from vyxops.core.errors import ConfigError
from vyxops.fetch.session import Session, open_session
from vyxops.shell.cli import main
from vyxops_sandbox.faults import FaultRule, Faults
from vyxops_sandbox.testing import world_of

STORIES = Path(__file__).parent / "scenarios"


def test_a_probe_turns_an_inconclusive_outage_into_its_root_cause(tmp_path: Path, sandbox_env: Path) -> None:
    """Logs aged out, the secret unmatched: the probe's refused create names the missing tag, and the canary is gone."""
    scenario = STORIES / "outage-function-logs-aged-out-free-plan.yaml"
    app = "worker-app"
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "sb") as s:
        probed = probe_and_investigate(s, app)
        world = world_of(s)
        machines = world.app(app)["machines"].values()  # type: ignore[index]
        canaries = [
            m
            for m in machines
            if str((m["config"].get("metadata") or {}).get("user_id", "")).startswith("vyxops-verify-")
        ]
    inv = probed.investigation
    assert probed.result is not None
    assert inv.root is not None and inv.root.code == "IMAGE_TAG_MISSING"
    assert "MACHINE_CREATE_REJECTED" in {f.code for f in inv.findings}
    assert "PROVISIONING_PROBE_FAILED" in {f.code for f in inv.findings}  # the probe failed: said, not the root
    assert all(m["state"] == "destroyed" for m in canaries)  # a refused create made none; any made is cleaned up
    lines = [json.loads(x) for x in (sandbox_env.parent / "audit.jsonl").read_text().splitlines()]
    assert any(x["action"] == "VERIFY_PROVISIONING" and x["kind"] == "intent" for x in lines)


def test_a_probe_of_healthy_provisioning_finds_it_healthy_and_leaves_nothing(tmp_path: Path, sandbox_env: Path) -> None:
    """On a healthy app the canary starts, reports running, and is cleaned up; the verdict stays healthy."""
    with open_session("sandbox", scenario="healthy", sandbox_dir=tmp_path / "sb") as s:
        probed = probe_and_investigate(s, "vyx-app")
        rows = world_of(s).state["supabase"]["tables"]["machines"]["rows"]
    assert probed.investigation.verdict == "healthy"
    canary_rows = [r for r in rows if str(r["user_id"]).startswith("vyxops-verify-")]
    assert canary_rows and all(r["status"] not in ("starting", "running") for r in canary_rows)


def test_a_probe_the_function_would_refuse_is_refused_up_front(tmp_path: Path, sandbox_env: Path) -> None:
    """An sb_secret_ key against a verify_jwt function: ConfigError naming why, and no canary is made."""
    with open_session("sandbox", scenario="stub-image-sb-secret-key", sandbox_dir=tmp_path / "sb") as s:
        before = len(world_of(s).app("vyx-app")["machines"])  # type: ignore[index]
        with pytest.raises(ConfigError, match="verify_jwt"):
            probe_and_investigate(s, "vyx-app")
        assert len(world_of(s).app("vyx-app")["machines"]) == before  # type: ignore[index]
    assert not (sandbox_env.parent / "audit.jsonl").exists()


def test_investigate_probe_through_the_cli_exits_2_when_refused(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vyxops investigate --probe` on a key the function refuses exits 2 with the reason."""
    code = main(
        [
            "investigate",
            "--scenario",
            "stub-image-sb-secret-key",
            "--app",
            "vyx-app",
            "--probe",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "verify_jwt" in capsys.readouterr().err


CROSS_APP = STORIES / "bases-function-provisions-into-another-app.yaml"  # vyx-base's function makes vyx-app's machines


def _canaries(s: Session, app: str) -> list[dict[str, Any]]:
    machines = world_of(s).app(app)["machines"].values()  # type: ignore[index]
    return [m for m in machines if str((m["config"].get("metadata") or {}).get("user_id", "")).startswith("vyxops-")]


def _log(sandbox_env: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (sandbox_env.parent / "audit.jsonl").read_text().splitlines()]


def test_a_probe_finds_its_canary_in_the_app_the_function_made_it_in(tmp_path: Path, sandbox_env: Path) -> None:
    """Investigating vyx-base, whose function creates in vyx-app: the canary is watched and destroyed in vyx-app,
    and the audit log says nothing is left only once Fly says so there."""
    with open_session("sandbox", scenario=CROSS_APP, sandbox_dir=tmp_path / "sb") as s:
        probed = probe_and_investigate(s, "vyx-base")
        made, stray = _canaries(s, "vyx-app"), _canaries(s, "vyx-base")
    assert probed.result is not None
    verify = next(a for a in probed.result.actions if a.code == "VERIFY_PROVISIONING")
    assert verify.status == "applied", verify.reason
    assert len(made) == 1 and not stray
    assert made[0]["state"] == "destroyed"  # it reached started and running, then was removed where it was
    lines = _log(sandbox_env)
    invoked = next(x for x in lines if x["kind"] == "outcome" and x["step"] == "invoke")
    assert invoked["canary"]["app"] == "vyx-app" and "in app vyx-app" in invoked["reason"]
    settled = next(x for x in lines if x["kind"] == "outcome" and x["step"] == "settle_canary")
    assert settled["result"] == "applied" and f"machine {made[0]['id']} in app vyx-app gone" in settled["reason"]
    assert "PROVISIONING_PROBE_FAILED" not in {f.code for f in probed.investigation.findings}


def test_a_canary_the_platform_will_not_destroy_is_said_to_be_left(tmp_path: Path, sandbox_env: Path) -> None:
    """Fly refuses every DELETE: the log never says nothing is left; it and the report name the machine, its app
    and the command that removes it, and the failed probe is the critical root cause (never "no failure")."""
    faults = Faults([FaultRule(kind="5xx", method="DELETE", path="/machines/")])
    with open_session("sandbox", scenario=CROSS_APP, sandbox_dir=tmp_path / "sb", faults=faults) as s:
        probed = probe_and_investigate(s, "vyx-base")
        (canary,) = _canaries(s, "vyx-app")
    assert canary["state"] == "started"
    command = f"fly machines destroy --force {canary['id']} -a vyx-app"
    lines = _log(sandbox_env)
    assert not any("nothing of the canary is left" in str(x.get("reason")) for x in lines)
    settled = next(x for x in lines if x["kind"] == "outcome" and x["step"] == "settle_canary")
    assert settled["result"] == "failed" and command in settled["reason"]
    assert not any("canary_cleaned" in x for x in lines)  # the duty stays open for the next run
    inv = probed.investigation
    assert inv.root is not None and inv.root.code == "PROVISIONING_PROBE_FAILED" and inv.root.severity == "critical"
    assert command in inv.root.title and command in inv.summary
    assert inv.verdict == "root_cause" and "No failure was seen" not in inv.summary
    assert "Nothing critical" not in inv.summary


def test_the_next_run_cleans_up_a_left_canary_in_its_own_app(tmp_path: Path, sandbox_env: Path) -> None:
    """The duty the audit log keeps names the canary's app: CLEANUP_VERIFY_CANARY destroys it there."""
    faults = Faults([FaultRule(kind="5xx", method="DELETE", path="/machines/", times=4)])  # the probe's 4 attempts
    with open_session("sandbox", scenario=CROSS_APP, sandbox_dir=tmp_path / "sb", faults=faults) as s:
        probe_and_investigate(s, "vyx-base")
        assert [m["state"] for m in _canaries(s, "vyx-app")] == ["started"]
        plan = plan_fixes(investigate(s, "vyx-base"), fixes=["CLEANUP_VERIFY_CANARY"])
        (action,) = [a for a in plan.actions if a.code == "CLEANUP_VERIFY_CANARY"]
        assert action.read["machine_app"] == "vyx-app"
        result = apply_plan(s, plan, dry_run=False, confirm="vyx-base", app="vyx-base")
        assert [m["state"] for m in _canaries(s, "vyx-app")] == ["destroyed"]
    assert result.actions[0].status == "applied", result.actions[0].reason


def test_a_failed_probe_exits_non_zero(sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`investigate --probe` whose canary is left behind: findings.json has the critical finding, exit 1."""
    sandbox_env.mkdir(parents=True, exist_ok=True)
    (sandbox_env / "faults.json").write_text(
        json.dumps({"seed": 1, "rules": [{"kind": "5xx", "method": "DELETE", "path": "/machines/"}]}), encoding="utf-8"
    )
    out = tmp_path / "o"
    code = main(["investigate", "--scenario", str(CROSS_APP), "--app", "vyx-base", "--probe", "--out", str(out)])
    doc = json.loads((out / "findings.json").read_text())
    assert doc["root_cause"]["code"] == "PROVISIONING_PROBE_FAILED"
    assert {"code": "PROVISIONING_PROBE_FAILED", "severity": "critical"}.items() <= doc["findings"][-1].items()
    assert code == 1 and "probe:      FAILED" in capsys.readouterr().out


def test_a_canary_whose_row_names_no_app_is_found_among_the_orgs_apps(tmp_path: Path, sandbox_env: Path) -> None:
    """A table without an app column and an answer without an app: the canary is looked for in the org's apps
    (the one investigated first, where it is not), found in vyx-app and removed there."""
    scenario = tmp_path / "no-app-column.yaml"
    scenario.write_text(
        CROSS_APP.read_text(encoding="utf-8") + "pipeline: {table: {columns: {app: null}}}\n", encoding="utf-8"
    )
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "sb") as s:
        probed = probe_and_investigate(s, "vyx-base")
        (canary,) = _canaries(s, "vyx-app")
        assert not _canaries(s, "vyx-base")
    assert probed.result is not None and probed.result.ok, [a.reason for a in probed.result.actions]
    assert canary["state"] == "destroyed"
    invoked = next(x for x in _log(sandbox_env) if x["kind"] == "outcome" and x["step"] == "invoke")
    assert "in app vyx-app (from the org's apps" in invoked["reason"]

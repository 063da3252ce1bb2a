"""`vyxops remediate` end to end: dry run, refusal, apply, re-apply, then a clean investigation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_fixes import unpaired

from vyxops.shell import runner
from vyxops.shell.cli import main
from vyxops_sandbox.world import World

APP = "vyx-app"


def artefact_leaks(out: Path, credentials: dict[str, str]) -> list[str]:
    """Files under ``out`` that hold one of the sandbox's credentials."""
    secrets = [v.encode() for k, v in credentials.items() if k != "project_ref"]
    return [str(p) for p in out.rglob("*") if p.is_file() and any(c in p.read_bytes() for c in secrets)]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """A fresh stub-image sandbox and audit log, set in the environment like an operator would."""
    directory = tmp_path / "sandbox"
    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(directory))
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.chdir(tmp_path)
    return World.load("stub-image", directory)


def test_dry_run_writes_the_plan_and_changes_nothing(
    sandbox: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --apply the CLI writes plan.json, the notebook and the report, prints the plan and leaves the sandbox as
    it was."""
    state = tmp_path / "sandbox" / "state.json"
    before = state.read_bytes()
    out = tmp_path / "plan"
    assert main(["remediate", "--scenario", "stub-image", "--app", APP, "--out", str(out)]) == 0
    assert state.read_bytes() == before
    assert {p.name for p in out.iterdir()} >= {"plan.json", "remediate.ipynb", "remediate.html"}
    assert not (out / "result.json").exists() and not (tmp_path / "audit.jsonl").exists()
    doc = json.loads((out / "plan.json").read_text())
    assert doc["schema"] == "vyxops.remediation/1" and doc["dry_run"] is True
    assert [(a["code"], a["status"]) for a in doc["actions"]] == [
        ("PIN_SECRET_TO_RELEASE", "planned"),
        ("RECONCILE_STUCK_ROWS", "planned"),
        ("VERIFY_PROVISIONING", "planned"),
    ]
    printed = capsys.readouterr().out
    assert "PIN_SECRET_TO_RELEASE" in printed and "nothing changed" in printed
    # The command it prints runs as printed: complete (--out included) and naming the scenario.
    apply = f"apply:    vyxops remediate --scenario stub-image --app {APP} --apply --confirm {APP} --out {out}"
    assert apply in printed
    html = (out / "remediate.html").read_text()
    assert "PIN_SECRET_TO_RELEASE" in html and "open_session(" not in html
    assert not artefact_leaks(out, sandbox.credentials)


def test_apply_without_confirm_exits_2_before_anything(
    sandbox: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--apply without --confirm APP exits 2 naming --confirm, runs no notebook, writes no file and changes nothing."""
    state = tmp_path / "sandbox" / "state.json"
    before = state.read_bytes()

    def no_notebook(*a: object, **k: object) -> None:
        raise AssertionError("the notebook ran")

    monkeypatch.setattr(runner, "run_notebook", no_notebook)
    for extra in ([], ["--confirm", "other-app"]):
        out = tmp_path / "refused"
        assert main(["remediate", "--scenario", "stub-image", "--app", APP, "--out", str(out), "--apply", *extra]) == 2
        assert "--confirm" in capsys.readouterr().err
        assert not out.exists()
    assert state.read_bytes() == before and not (tmp_path / "audit.jsonl").exists()


def test_apply_then_reapply_then_investigate_is_clean(
    sandbox: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--apply --confirm fixes the seed; a second apply changes nothing; the next investigation finds no root cause."""
    out1, out2, out3 = tmp_path / "apply1", tmp_path / "apply2", tmp_path / "after"
    args = ["remediate", "--scenario", "stub-image", "--app", APP, "--apply", "--confirm", APP, "--out"]
    assert main([*args, str(out1)]) == 0
    first = json.loads((out1 / "result.json").read_text())
    assert first["dry_run"] is False
    assert [(a["code"], a["status"]) for a in first["actions"]] == [
        ("PIN_SECRET_TO_RELEASE", "applied"),
        ("RECONCILE_STUCK_ROWS", "applied"),
        ("VERIFY_PROVISIONING", "applied"),
    ]
    assert (out1 / "plan.json").exists() and (out1 / "remediate.html").exists()
    audit = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert not unpaired(audit)
    assert [
        x["action"] for x in audit if x["kind"] == "outcome" and x["step"] in ("set_secret", "update_row", "verify")
    ] == [
        "PIN_SECRET_TO_RELEASE",
        "RECONCILE_STUCK_ROWS",
        "VERIFY_PROVISIONING",
    ]

    state = tmp_path / "sandbox" / "state.json"
    before = state.read_bytes()
    assert main([*args, str(out2)]) == 0
    second = json.loads((out2 / "result.json").read_text())
    # Re-planned from a clean investigation: nothing is left to do, so nothing is touched.
    assert all(a["status"] == "skipped" and a["reason"].startswith("already done") for a in second["actions"])
    assert second["notes"] and state.read_bytes() == before
    reported = {n.split(": ", 1)[0]: n.split(": ", 1)[1] for n in second["notes"]}
    assert reported["PIN_SECRET_TO_RELEASE"].startswith("already done")
    assert reported["RECONCILE_STUCK_ROWS"].startswith("already done")
    printed = capsys.readouterr().out
    assert "already done" in printed and "nothing to apply" in printed
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) == len(audit)  # nothing written the second time

    assert main(["investigate", "--scenario", "stub-image", "--app", APP, "--out", str(out3)]) == 0
    findings = json.loads((out3 / "findings.json").read_text())
    assert findings["root_cause"] is None and not any(f["severity"] == "critical" for f in findings["findings"])
    # The incident is over, not forgotten: the terminal names what was resolved, and so does the postmortem's title.
    said = capsys.readouterr().out.splitlines()[0]
    assert said.startswith("root cause: none now (healthy) — resolved: MACHINE_EXITED_AUTO_DESTROYED: machine ")
    assert "resolved" in (out3 / "postmortem.md").read_text().splitlines()[0]
    assert not artefact_leaks(tmp_path, sandbox.credentials)  # every out dir, the audit log, the sandbox


def test_hostile_region_and_row_values_reach_the_report_as_text(
    sandbox: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A provisioning request wrote <script> into a row's user id and region: the dry run's HTML and notebook show it
    escaped, never as markup."""
    payload = '<script>alert("vyx-xss")</script>'
    sandbox.invoke_function("provision-machine", {"user_id": f"vyxops-verify-{payload}", "region": payload})
    sandbox.sleep(60)
    sandbox.save()
    out = tmp_path / "hostile"
    assert main(["remediate", "--scenario", "stub-image", "--app", APP, "--out", str(out)]) == 0
    capsys.readouterr()
    html = (out / "remediate.html").read_text()
    notebook = json.loads((out / "remediate.ipynb").read_text())
    outputs = json.dumps([c.get("outputs", []) for c in notebook["cells"]])
    assert payload not in html and "<script>alert(" not in html
    assert html.count("&lt;script&gt;alert(") >= 2  # there, as text: in the plan's table and the region's note
    assert "<script>alert(" not in outputs
    plan = json.loads((out / "plan.json").read_text())
    assert plan["actions"][0]["code"] == "CLEANUP_VERIFY_CANARY" and payload in plan["actions"][0]["target"]
    verify = next(a for a in plan["actions"] if a["code"] == "VERIFY_PROVISIONING")
    assert verify["before"]["region"] == "sjc"  # not a Fly region code: never sent to the Machines API

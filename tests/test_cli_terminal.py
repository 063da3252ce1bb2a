"""What the terminal shows (issue 20, "The terminal"): the dry run's changes, the audit log's path, `vyxops log`,
one-line errors, a fast offline failure, wrapped lines, strict options and a default --out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vyxops import runner
from vyxops.cli import main

APP = "vyx-app"


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh sandbox and audit log in the environment, the working directory a temporary one."""
    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(tmp_path / "sandbox"))
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def no_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the notebook ran")

    monkeypatch.setattr(runner, "run_notebook", refuse)


# --------------------------------------------------------------------------- remediate: dry run and apply


def test_dry_run_prints_each_change_and_apply_prints_the_audit_log(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under each planned action: the secret's old → new image ref, the row's old → new status and the command or
    SQL that makes the change by hand. An apply then names the audit log it wrote to."""
    out = sandbox / "plan"
    assert main(["remediate", "--scenario", "stub-image", "--app", APP, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    plan = json.loads((out / "plan.json").read_text())
    pin, rows = plan["actions"][0], plan["actions"][1]
    assert f"ref: {pin['before']['secret_ref']} → {pin['after']['ref']}" in printed
    assert f"status: {rows['before']['status']} → {rows['after']['status']}" in printed
    assert f"$ {pin['native'][0]}" in printed
    assert f"sql: {rows['native'][0]}" in printed
    lines = printed.splitlines()
    head = next(i for i, line in enumerate(lines) if "RECONCILE_STUCK_ROWS" in line)
    assert lines[head + 1].startswith(" " * 10 + "status: ")  # indented under its action, not elsewhere

    assert main(["remediate", "--app", APP, "--out", str(out), "--apply", "--confirm", APP]) == 0
    printed = capsys.readouterr().out
    assert f"audit log: {sandbox / 'audit.jsonl'}" in printed.splitlines()


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "argv, named",
    [
        (["investigate", "--ap", APP, "--out", "x"], "--ap"),
        (["audit", "--ap", APP, "--out", "x"], "--ap"),
        (["remediate", "--app", APP, "--appl"], "--appl"),
        (["audit", "--all", "--app", APP], "--app"),
        (["audit", "--app", APP, "--all"], "--all"),
    ],
)
def test_abbreviations_and_all_with_app_are_refused(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    """``--ap`` is not ``--app`` (no abbreviations), and ``audit --all --app X`` is two answers: exit 2 naming it,
    before any work."""
    no_notebook(monkeypatch)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vyxops: {named}: "), err
    assert not (sandbox / "x").exists() and not (sandbox / "out").exists()


def test_out_defaults_to_a_folder_named_by_verb_app_and_time(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --out, a run writes into out/<verb>-<app>-<UTC time> under the working directory and says where."""
    assert main(["investigate", "--scenario", "healthy", "--app", APP]) == 0
    made = list((sandbox / "out").iterdir())
    assert len(made) == 1 and re.fullmatch(rf"investigate-{APP}-\d{{8}}T\d{{6}}Z", made[0].name), made
    assert (made[0] / "findings.json").is_file()
    assert f"report:     out/{made[0].name}/investigate.html" in capsys.readouterr().out


def test_default_out_names_several_apps_and_all() -> None:
    from vyxops.cli import default_out

    at = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    assert default_out("audit", ["a-app", "b-app"], now=at) == Path("out/audit-a-app+b-app-20270115T080000Z")
    assert default_out("audit", [], all_apps=True, now=at) == Path("out/audit-all-20270115T080000Z")

"""Issue 20's small things: --machine's one rule, --stuck-after from a notebook, `make lab` as root, the lab's out/."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vyxops.analysis.investigate import investigate
from vyxops.core.checks import check_stuck_after
from vyxops.core.errors import InputError
from vyxops.fetch.session import open_session
from vyxops.shell.cli import main

ROOT = Path(__file__).resolve().parent.parent
APP = "vyx-app"
#: A shipped scenario whose morning machine is gone from Fly's API (destroyed past retention) while its row is
#: still `starting`: the findings name it (DB_STATUS_STUCK, "machine no longer known to Fly").
GONE = "destroyed-machine-without-destroy-event"
ROW_ONLY = "7a7a7a7a7a7a01"


# --------------------------------------------------------------------------- --machine


def test_a_machine_known_only_from_its_row_is_the_apps(tmp_path: Path) -> None:
    """--machine on the machine the findings name, which Fly no longer shows but the app's row does: accepted,
    and the focused investigation keeps that row's finding (it was refused in the kernel, exit 2)."""
    with open_session("sandbox", scenario=GONE, sandbox_dir=tmp_path) as s:
        whole = investigate(s, APP)
        assert ROW_ONLY in str(whole.document["findings"])  # the findings name it
        assert ROW_ONLY not in set(whole.evidence.machines["machine_id"])  # and Fly does not show it
        focused = investigate(s, APP, machine_id=ROW_ONLY)
    assert any(ROW_ONLY in str(f) for f in focused.document["findings"])


def test_the_cli_check_and_the_investigation_agree_on_row_only_machines(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_kernel: None
) -> None:
    """Before a kernel starts: the row-only machine passes the sandbox check, and a machine the sandbox holds but
    neither Fly's API (gone past retention) nor any row names is refused, as the investigation would refuse it."""
    from vyxops.fetch.targets import sandbox_control

    control = sandbox_control()
    world = control.load_world(GONE, [APP])
    control.check_machine(world, APP, ROW_ONLY, None)  # raised nothing: a row names it
    table = world.table(world.pipeline.table)
    table["rows"] = [r for r in table["rows"] if ROW_ONLY not in r.values()]
    with pytest.raises(InputError, match=rf"--machine: machine {ROW_ONLY} is neither one of app {APP}'s machines"):
        control.check_machine(world, APP, ROW_ONLY, None)
    assert (
        main(
            [
                "investigate",
                "--scenario",
                GONE,
                "--app",
                APP,
                "--machine",
                "0123456789abcd",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.startswith("vyxops: --machine: machine 0123456789abcd is neither")


def test_a_row_only_machine_created_after_the_window_is_refused(tmp_path: Path) -> None:
    """The row makes it the app's, not the window's: --until before its row is exit 2 naming the row's time."""
    with open_session("sandbox", scenario=GONE, sandbox_dir=tmp_path) as s:
        with pytest.raises(InputError, match=r"was first named by a row at 2025-12-03T09:12"):
            investigate(s, APP, machine_id=ROW_ONLY, until="2025-12-03T09:00:00Z")


def test_a_bundle_refuses_a_machine_it_never_saw_before_a_kernel(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_kernel: None
) -> None:
    """A replayed bundle answers only what was captured: --machine naming none of its answers is exit 2 at once
    (it was a kernel, then a refusal from inside it)."""
    from vyxops.fetch.bundle import names_machine, read_exchanges

    bundle = tmp_path / "bundle"
    assert main(["capture", "--scenario", "stub-image", "--app", APP, "--out", str(bundle)]) == 0
    capsys.readouterr()
    assert names_machine(read_exchanges(bundle), APP, "5683732efe3208")  # the seed's machine is in it
    args = ["investigate", "--target", f"bundle:{bundle}", "--app", APP, "--machine", "0123456789abcd"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("vyxops: --machine: machine 0123456789abcd is named by none")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- --stuck-after


@pytest.mark.parametrize("value", ["abc", "-5", True, [5]])
def test_stuck_after_from_a_notebook_is_checked_like_the_flag(value: object) -> None:
    """papermill passes parameters as it parses them (`-p stuck_after_minutes abc` is a str): anything but a
    number of minutes above 0 is the same InputError naming --stuck-after, never a TypeError from the kernel."""
    with pytest.raises(InputError, match=r"^--stuck-after: .* is not a number of minutes \(allowed: above 0"):
        check_stuck_after(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- make lab


def test_make_lab_runs_as_root_only_with_allow_root_and_on_loopback() -> None:
    """Jupyter exits at once as root without --allow-root; the lab gets it exactly when the user is root."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {**os.environ, "MAKEFLAGS": ""}
    dry = subprocess.run(
        ["make", "-n", "-o", ".tools/lab/.installed", "lab"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    line = next(x for x in dry.stdout.splitlines() if "jupyter lab" in x)
    assert line.startswith(".tools/lab/bin/jupyter lab ")  # the lab's own venv, never the CLI's
    assert ("--allow-root" in line) == (os.geteuid() == 0)
    assert "--ip 127.0.0.1" in line


# --------------------------------------------------------------------------- the lab's out/


def test_a_notebook_run_in_its_folder_writes_to_the_projects_out(tmp_path: Path) -> None:
    """A notebook run where JupyterLab runs it (cwd notebooks/, by papermill here) writes its relative out_dir
    under the project's root, as the CLI does, not under notebooks/out/."""
    import papermill

    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    env = {"VYXOPS_SANDBOX_DIR": str(tmp_path / "sandbox"), "VYXOPS_AUDIT_LOG": str(tmp_path / "audit.jsonl")}
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "investigate.ipynb"),
            str(tmp_path / "ran.ipynb"),
            parameters={"scenario": "stub-image", "app": APP, "out_dir": "out/investigate"},
            cwd=str(project / "notebooks"),
            progress_bar=False,
            kernel_name="python3",
        )
    finally:
        for k, v in before.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert (project / "out" / "investigate" / "findings.json").is_file()
    assert not (project / "notebooks" / "out").exists()


def test_the_cli_passes_its_out_as_typed_from_its_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's relative --out stays relative to where it was typed, even below a project's root."""
    import papermill

    from vyxops.nbtools import project_out_dir
    from vyxops.shell import runner

    seen: dict[str, object] = {}

    def fake(*a: object, parameters: dict[str, object], **k: object) -> None:
        seen.update(parameters)

    sub = tmp_path / "sub"
    sub.mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.chdir(sub)
    monkeypatch.setattr(papermill, "execute_notebook", fake)
    runner.run_notebook("investigate", {"app": APP, "out_dir": "here"}, Path("here"))
    assert seen["out_dir"] == str(sub / "here")
    assert project_out_dir(str(seen["out_dir"]), sub) == sub / "here"  # an absolute one is kept
    assert project_out_dir("here", sub) == tmp_path / "here"  # a relative one, in a notebook, is the project's


def test_stuck_after_has_one_default() -> None:
    """--stuck-after, the library calls and the detectors' Thresholds all default to checks.STUCK_AFTER_MIN."""
    import inspect

    from vyxops.act.fixes.commands import remediate_command
    from vyxops.analysis import audit, investigate
    from vyxops.analysis.detect.model import Thresholds
    from vyxops.core import checks
    from vyxops.shell import cli

    for fn in (investigate.investigate, investigate.analyse, audit.run_audit, audit.audit_or_error, remediate_command):
        assert inspect.signature(fn).parameters["stuck_after_minutes"].default == checks.STUCK_AFTER_MIN, fn
    assert Thresholds().stuck_after_minutes == checks.STUCK_AFTER_MIN
    args = cli.build_parser().parse_args(["investigate", "--app", "a", "--out", "o"])
    assert args.stuck_after_minutes == checks.STUCK_AFTER_MIN


def test_fail_on_levels_have_one_home() -> None:
    """--fail-on's choices, its default and the audit's failing severities come from checks; a notebook's
    `fail_on` of another word is the CLI's InputError, not quietly read as `warning`."""
    from vyxops.analysis.audit import failing_levels
    from vyxops.core import checks
    from vyxops.core.errors import InputError
    from vyxops.shell import cli

    assert failing_levels("critical") == ("error", "critical")
    assert failing_levels("warning") == ("error", "critical", "warning")
    with pytest.raises(InputError) as exc:
        failing_levels("info")
    assert exc.value.name == "--fail-on"
    with pytest.raises(InputError) as exc:
        cli.build_parser().parse_args(["audit", "--all", "--fail-on", "info", "--out", "o"])
    assert exc.value.name == "--fail-on"
    assert cli.build_parser().parse_args(["audit", "--all", "--out", "o"]).fail_on == checks.FAIL_ON_DEFAULT

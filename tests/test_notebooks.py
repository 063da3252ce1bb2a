"""The notebooks as code: paired with their py:percent files, parameters first, and validated with nbval."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["investigate", "remediate", "audit", "explore"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_first_cell_is_parameters_and_no_stale_outputs(name: str) -> None:
    """Each notebook opens with the cell tagged `parameters` and is committed without outputs."""
    nb = nbformat.read(str(ROOT / "notebooks" / f"{name}.ipynb"), as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and "parameters" in first.metadata.get("tags", [])
    assert "target" in first.source
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_matches_its_jupytext_pair(name: str) -> None:
    """The .ipynb holds the same cells as its py:percent pair, so review of the .py is review of the notebook."""
    import jupytext

    paired = jupytext.read(str(ROOT / "notebooks" / f"{name}.py"))
    nb = nbformat.read(str(ROOT / "notebooks" / f"{name}.ipynb"), as_version=4)
    assert [(c.cell_type, c.source) for c in paired.cells] == [(c.cell_type, c.source) for c in nb.cells]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_cells_hold_calls_not_logic(name: str) -> None:
    """Notebook code cells stay short: no function or class definitions (logic lives in the package)."""
    nb = nbformat.read(str(ROOT / "notebooks" / f"{name}.ipynb"), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "def " not in cell.source and "class " not in cell.source
            assert len(cell.source.splitlines()) <= 20


def test_executed_investigation_revalidates_with_nbval(sandbox_env: Path, tmp_path: Path) -> None:
    """The investigation notebook, executed by papermill, re-runs under nbval with the same outputs."""
    from vyxops.shell.cli import main

    out = tmp_path / "nb"
    assert main(["investigate", "--scenario", "stub-image", "--app", "vyx-app", "--out", str(out)]) == 0
    executed = out / "investigate.ipynb"
    # nbval's kernel runs as the CLI's does (which draws no progress bar), so the outputs can be the same.
    env = {**os.environ, "VYXOPS_SANDBOX_DIR": str(sandbox_env), "VYXOPS_PROGRESS": "0"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval",
            str(executed),
            "--nbval-sanitize-with",
            str(ROOT / "tests" / "nbval_sanitize.cfg"),
        ],
        cwd=str(Path.cwd()),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout


def test_explore_notebook_runs_headless_with_its_widgets(sandbox_env: Path, tmp_path: Path) -> None:
    """explore.ipynb executes on the sandbox and shows the app picker and the timeline table."""
    import papermill

    from vyxops_sandbox.world import World

    World.load("stub-image", sandbox_env)
    out = tmp_path / "explore.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "explore.ipynb"),
        str(out),
        parameters={"app": "vyx-app"},
        progress_bar=False,
        kernel_name="python3",
    )
    nb = nbformat.read(str(out), as_version=4)
    data = [o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in d for d in data)
    assert any("5683732efe3208" in d.get("text/html", "") for d in data)


def test_a_notebook_error_is_named_by_its_class_in_the_error_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixes' LockHeld (an InputError) reaches papermill named InputError, so the CLI exits 2, text intact."""
    from IPython.core.interactiveshell import InteractiveShell

    from vyxops import nbtools
    from vyxops.act.fixes.lock import LockHeld

    shell = InteractiveShell.instance()
    shown: list[tuple[type, list[str]]] = []
    monkeypatch.setattr(shell, "_showtraceback", lambda etype, value, stb: shown.append((etype, stb)))
    nbtools.setup()
    shell.user_ns["LockHeld"], shell.user_ns["Path"] = LockHeld, Path
    shell.run_cell("raise LockHeld(Path('x.lock'), {'who': 'alice', 'target': 'sandbox', 'app': 'vyx-app'})")
    etype, stb = shown[-1]
    assert etype.__name__ == "InputError" and stb[0].startswith("LockHeld: ")
    from vyxops.core.errors import exit_code_for

    assert exit_code_for(etype) == 2


def _parameters(name: str) -> dict[str, object]:
    """A notebook's parameters cell, evaluated as papermill would see its defaults."""
    nb = nbformat.read(str(ROOT / "notebooks" / f"{name}.ipynb"), as_version=4)
    values: dict[str, object] = {}
    exec(nb.cells[0].source, {}, values)  # literals only (test_notebook_first_cell_is_parameters_…)
    return values


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n != "explore"])
def test_notebook_stuck_after_default_is_the_one_constant(name: str) -> None:
    """A notebook keeps a literal parameter (papermill overrides it) but the value is vyxops's one default."""
    from vyxops.core.checks import STUCK_AFTER_MIN

    assert _parameters(name)["stuck_after_minutes"] == STUCK_AFTER_MIN


def test_audit_notebook_fail_on_default_is_the_clis() -> None:
    """The audit notebook's `fail_on` defaults to what `vyxops audit` does without --fail-on."""
    from vyxops.core.checks import FAIL_ON_DEFAULT

    assert _parameters("audit")["fail_on"] == FAIL_ON_DEFAULT


@pytest.mark.parametrize(
    ("name", "value", "flag"),
    [
        ("tz", "Mars/Olympus", "--tz"),
        ("fail_on", "info", "--fail-on"),
        ("machine_id", "../x", "--machine"),
        ("scenario", "stub-image", "--scenario"),  # a live target with a scenario: it would be ignored
    ],
)
def test_a_notebooks_bad_parameter_is_the_clis_input_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, flag: str
) -> None:
    """nbtools.setup() runs the CLI's checks (vyxops.core.checks.check_inputs) on the notebook's parameters: a papermill
    run with a bad tz fails at setup with the InputError `--tz` gives, before a session is opened."""
    from IPython.core.interactiveshell import InteractiveShell

    from vyxops import nbtools
    from vyxops.core.errors import InputError

    shell = InteractiveShell.instance()
    shown: list[tuple[type, BaseException]] = []
    monkeypatch.setattr(shell, "_showtraceback", lambda etype, value, stb: shown.append((etype, value)))
    parameters = {"target": "live", "scenario": None, "app": "vyx-app", "tz": "UTC", name: value, "nbtools": nbtools}
    for key, given in parameters.items():
        monkeypatch.setitem(shell.user_ns, key, given)  # the shell is shared: undone after the test
    shell.run_cell("nbtools.setup()")
    etype, error = shown[-1]
    assert etype is InputError and isinstance(error, InputError) and error.name == flag
    shell.user_ns[name] = None
    shell.run_cell("nbtools.setup()")
    assert len(shown) == 1

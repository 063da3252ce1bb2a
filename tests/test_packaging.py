"""The set-up files agree with each other."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_installs_the_checkout_with_the_same_python() -> None:
    """environment.yml pins the Python that pyproject requires and installs the package from the checkout."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    minimum = re.search(r">=\s*(\d+\.\d+)", project["requires-python"]).group(1)
    assert python == f"python={minimum}"
    assert "pip" in deps
    pip_block = next(d["pip"] for d in deps if isinstance(d, dict))
    extras = set(project["optional-dependencies"])
    installs = [line for line in pip_block if line.startswith("-e .")]
    assert installs, "environment.yml must install vyxops from the checkout"
    named = set(re.findall(r"\[(.*)\]", installs[0])[0].split(",")) if "[" in installs[0] else set()
    assert named <= extras and "test" in named


def test_readme_opens_with_the_two_commands() -> None:
    """The README's first code block holds the demo and the test command, and the Makefile defines both."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:sh|bash)?\n(.*?)```", readme, re.S).group(1)
    assert "make demo" in block and "make test" in block
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _uv() -> str:
    """The uv `make setup` installs beside the venv (.tools/bin/uv of the checkout the venv is in), else PATH's."""
    beside = Path(sys.prefix).parent / ".tools" / "bin" / "uv"
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if not found:
        pytest.skip("uv is not installed (make setup puts it in .tools/bin)")
    return found


def test_the_built_wheel_investigates_outside_a_checkout(tmp_path: Path) -> None:
    """`pip install .` then `vyxops investigate` from anywhere: the wheel carries the notebooks and scenarios.

    Offline: the wheel is built by uv from its cache (the setuptools `make setup` fetched) and installed with
    --no-deps into a fresh venv, which reaches the dependencies through a .pth line to this venv's
    site-packages (a path line: that directory's own .pth files, the editable install's finder, are not run),
    and to nbconvert's templates through JUPYTER_PATH.
    """
    uv = _uv()
    src = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("vyxops", "vyxops_sandbox", "notebooks"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*argv: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120, **kw)
        assert done.returncode == 0, f"{argv}: {done.stdout[-800:]} {done.stderr[-800:]}"
        return done

    run(uv, "build", "--wheel", "--offline", "--quiet", "-o", tmp_path / "dist", src, env=clean)
    wheel = next((tmp_path / "dist").glob("vyxops-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert {f"vyxops/notebooks/{n}.ipynb" for n in ("investigate", "remediate", "audit", "explore")} <= names
    assert "vyxops/scenarios/stub-image.yaml" in names
    venv = tmp_path / "venv"
    run(uv, "venv", "--offline", "--quiet", "--python", sys.executable, venv, env=clean)
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(site) / "deps-from-the-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(uv, "pip", "install", "--offline", "--no-deps", "--quiet", "--python", python, wheel, env=clean)
    where = tmp_path / "elsewhere"  # no pyproject.toml here or above: not a checkout
    where.mkdir()
    env = {**clean, "VYXOPS_SANDBOX_DIR": str(tmp_path / "sandbox"), "VYXOPS_AUDIT_LOG": str(tmp_path / "a.jsonl")}
    # nbconvert's templates are data files its own install put under that venv's share/jupyter, not in a package.
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    imported = run(python, "-c", "import vyxops; print(vyxops.__file__)", cwd=where, env=env).stdout
    assert imported.startswith(site), imported  # the wheel's vyxops, not the checkout's
    args = ("investigate", "--scenario", "stub-image", "--app", "vyx-app", "--out", "report")
    done = run(venv / "bin" / "vyxops", *args, cwd=where, env=env)
    assert "root cause: SECRET_IMAGE_NOT_CURRENT_RELEASE" in done.stdout
    assert (where / "report" / "investigate.html").is_file()


def _installs(target: str) -> list[tuple[str, str]]:
    """(venv, extras) of each `uv pip install -e '.[extras]'` that `make TARGET` runs in a fresh checkout."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {**os.environ, "MAKEFLAGS": ""}
    dry = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert dry.returncode == 0, dry.stderr
    found = re.findall(r"pip install .*--python (\S+)/bin/python .*-e '\.\[([^\]]*)\]'", dry.stdout)
    assert found, dry.stdout
    return found


def test_the_demo_installs_the_sandbox_extra_and_the_tests_add_the_test_extra() -> None:
    """`make demo` installs what the demo needs and nothing more; `make test` adds the test extra to the same venv,
    and JupyterLab goes into a venv of its own, so the venv the CLI runs from never holds the lab."""
    assert _installs("demo") == [(".venv", "sandbox")]
    test = _installs("test")
    assert (".venv", "sandbox") in test and (".venv", "test") in test
    assert [v for v, extras in test if "lab" in extras.split(",")] == [".tools/lab"]
    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    own = {e.strip() for d in test_extra if (m := re.match(r"vyxops\[(.*)\]", d)) for e in m.group(1).split(",")}
    assert "lab" not in own and not any(d.startswith("jupyterlab") for d in test_extra), test_extra

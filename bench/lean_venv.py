"""A lean venv for the bench: the package (editable, this checkout) and its sandbox extra, nothing else.

`make bench` measures investigate against an empty papermill run in it, so neither side is slowed or
flattered by what the test or lab extras bring into the venv the bench itself runs from. uv makes it
under .tools/ from its cache; the stamp holds a digest of pyproject.toml, so a second run does nothing
until the dependencies change. Run: ``.venv/bin/python bench/lean_venv.py`` (prints its python).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEAN = ROOT / ".tools" / "bench-lean"
STAMP = LEAN / ".installed"
EXTRAS = "sandbox"
PACKAGES = ("vyxops", "vyxops_sandbox")  # the checkout's own, imported from source


def _uv() -> str:
    """The uv `make setup` put in .tools/bin, else PATH's."""
    beside = ROOT / ".tools" / "bin" / "uv"
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if found is None:
        raise SystemExit("bench: uv is not installed (make setup puts it in .tools/bin)")
    return found


def _digest() -> str:
    return f"{EXTRAS} {hashlib.sha256((ROOT / 'pyproject.toml').read_bytes()).hexdigest()}"


def lean_python() -> Path:
    """The lean venv's python, made (or brought up to date with pyproject.toml) first when it needs to be."""
    python = LEAN / "bin" / "python"
    if python.is_file() and STAMP.is_file() and STAMP.read_text() == _digest():
        return python
    uv = _uv()
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    # Made afresh, so nothing another set of extras installed lingers in it.
    subprocess.run([uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(LEAN)], check=True, env=env)
    install = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python), "-e"]
    subprocess.run([*install, f"{ROOT}[{EXTRAS}]"], check=True, env=env, cwd=ROOT)
    STAMP.write_text(_digest())
    return python


def compile_checkout(python: Path) -> None:
    """Compile the checkout's own packages, which the editable install imports from source, as `make setup`'s
    bytecode step does: --compile-bytecode compiled only site-packages, and without this, with
    PYTHONDONTWRITEBYTECODE set, every investigate run would compile them again while papermill's never does.
    compileall skips what is up to date."""
    packages = [str(ROOT / name) for name in PACKAGES]
    subprocess.run([str(python), "-m", "compileall", "-q", "-x", "/notebooks/", *packages], check=True)


if __name__ == "__main__":
    lean = lean_python()
    compile_checkout(lean)
    print(lean)

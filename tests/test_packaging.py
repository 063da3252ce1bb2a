"""The set-up files agree with each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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

"""The target registry: one opener per way of reaching the platforms, picked by a stated rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from vyxops.core.config import parse_target
from vyxops.core.errors import ConfigError
from vyxops.fetch import targets
from vyxops.fetch.session import open_session
from vyxops_sandbox.testing import world_of

URL = "http://127.0.0.1:9"


def chosen(target: str, **kw: object) -> str:
    env = kw.pop("environ", {})
    return targets.choose_opener(targets.OpenRequest(target=parse_target(target), environ=env, **kw))  # type: ignore[arg-type]


def test_live_and_bundle_targets_have_their_own_openers() -> None:
    """`live` opens live and `bundle:PATH` opens the bundle, whatever VYXOPS_SANDBOX_URL says."""
    env = {targets.SANDBOX_URL_ENV: URL}
    assert chosen("live", environ=env) == "live"
    assert chosen("bundle:/tmp/x", environ=env) == "bundle"


def test_sandbox_is_served_only_when_the_url_is_set_and_no_argument_says_otherwise(tmp_path: Path) -> None:
    """$VYXOPS_SANDBOX_URL picks the served sandbox; a sandbox_dir or faults argument beats it."""
    env = {targets.SANDBOX_URL_ENV: URL}
    assert chosen("sandbox") == "sandbox"
    assert chosen("sandbox", environ=env) == "sandbox-served"
    assert chosen("sandbox", environ=env, sandbox_dir=tmp_path) == "sandbox"
    assert chosen("sandbox", environ=env, faults=object()) == "sandbox"


def test_every_registered_opener_names_an_importable_function() -> None:
    """The registry's dotted paths resolve, so adding a target is one line that a test checks."""
    import importlib

    for name, path in targets.OPENERS.items():
        module, _, function = path.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name


def test_a_session_says_which_opener_it_used(tmp_path: Path) -> None:
    """The session carries the opener's name and a one-line description naming the scenario and directory."""
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as s:
        assert s.opened_by == "sandbox"
        assert "stub-image" in s.description and str(tmp_path) in s.description
        assert world_of(s).scenario_name == "stub-image"


def test_a_missing_sandbox_extra_is_a_config_error_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the vyxops_sandbox package, --target sandbox fails with how to install it, not an ImportError."""
    import builtins

    real_import = builtins.__import__

    def no_sandbox(name: str, *args: object, **kw: object) -> object:
        if name.startswith("vyxops_sandbox"):
            raise ModuleNotFoundError(f"No module named {name!r}", name="vyxops_sandbox")
        return real_import(name, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_sandbox)
    monkeypatch.setattr("importlib.import_module", lambda name: no_sandbox(name))
    with pytest.raises(ConfigError, match=r"vyxops\[sandbox\]"):
        targets.sandbox_plugin()

"""Targets: one registered opener per way of reaching the platforms, and the rule that picks one.

An opener turns an :class:`OpenRequest` into an :class:`~vyxops.session.Opened`
(credentials, transport, clock, labels); :func:`vyxops.session.open_session`
builds the clients over it. Openers are registered by dotted path and imported
only when chosen, so the simulator (the ``vyxops_sandbox`` package, an optional
extra) is never imported by a live run. This module is the only place in the
product that names ``vyxops_sandbox``.

The rule (:func:`choose_opener`):

1. ``--target live`` → ``live``: the real APIs, credentials from the environment.
2. ``--target bundle:PATH`` → ``bundle``: a captured evidence bundle, replayed.
3. ``--target sandbox`` → ``sandbox-served`` when ``$VYXOPS_SANDBOX_URL`` is set
   and the caller passed neither ``sandbox_dir`` nor ``faults``; otherwise
   ``sandbox``, the simulator in this process. An argument beats the environment.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from vyxops import config
from vyxops.errors import ConfigError

if TYPE_CHECKING:
    from vyxops.http import RetryPolicy
    from vyxops.session import Opened

__all__ = [
    "OpenRequest",
    "OPENERS",
    "SANDBOX_URL_ENV",
    "register_opener",
    "choose_opener",
    "open_target",
    "sandbox_plugin",
    "sandbox_control",
]

#: Where a session finds a served sandbox (set by the CLI for its kernel, or by a user
#: pointing JupyterLab at ``vyxops sandbox serve``).
SANDBOX_URL_ENV = "VYXOPS_SANDBOX_URL"
#: The simulator's package: an optional extra, imported only through this module.
SANDBOX_PACKAGE = "vyxops_sandbox"


@dataclass(frozen=True)
class OpenRequest:
    """What a caller asked for; each opener reads the fields it needs."""

    target: config.Target
    scenario: str | Path | None = None
    sandbox_dir: Path | None = None
    faults: object | None = None
    environ: Mapping[str, str] | None = None
    retry: RetryPolicy | None = None

    @property
    def env(self) -> Mapping[str, str]:
        return os.environ if self.environ is None else self.environ


Opener = Callable[[OpenRequest], "Opened"]

#: opener name -> "module:function", imported when chosen.
OPENERS: dict[str, str] = {}


def register_opener(name: str, path: str) -> None:
    """Register the opener ``name`` as ``"package.module:function"``."""
    module, sep, function = path.partition(":")
    if not sep or not module or not function:
        raise ValueError(f"opener path {path!r} is not 'module:function'")
    OPENERS[name] = path


register_opener("live", "vyxops.targets:open_live")
register_opener("bundle", "vyxops.bundle:open_bundle")
register_opener("sandbox", f"{SANDBOX_PACKAGE}.target:open_in_process")
register_opener("sandbox-served", f"{SANDBOX_PACKAGE}.client:open_served")


def choose_opener(request: OpenRequest) -> str:
    """The opener's name for ``request``, by the rule in this module's docstring."""
    kind = request.target.kind
    if kind in ("live", "bundle"):
        return kind
    served = (request.env.get(SANDBOX_URL_ENV) or "").strip()
    if served and request.sandbox_dir is None and request.faults is None:
        return "sandbox-served"
    return "sandbox"


def open_target(request: OpenRequest) -> Opened:
    """Run the chosen opener."""
    name = choose_opener(request)
    opener = _load(name)
    return opener(request)


def _load(name: str) -> Opener:
    module_name, _, function = OPENERS[name].partition(":")
    if module_name.startswith(SANDBOX_PACKAGE):
        sandbox_plugin()  # a clear error when the extra is not installed
    module = importlib.import_module(module_name)
    opener: Opener = getattr(module, function)
    return opener


def sandbox_plugin() -> ModuleType:
    """The simulator's package, or a ConfigError saying how to install it."""
    try:
        return importlib.import_module(SANDBOX_PACKAGE)
    except ImportError as exc:
        if exc.name not in (SANDBOX_PACKAGE, "duckdb", "sqlglot"):
            raise
        raise ConfigError(
            "the sandbox is not installed",
            hint="install the extra: pip install 'vyxops[sandbox]' (the README's `make` commands do), "
            "or use --target live | bundle:PATH",
        ) from None


def sandbox_control() -> ModuleType:
    """The sandbox's control module for the CLI (load and check a world, host it, the ``sandbox`` verb)."""
    sandbox_plugin()
    return importlib.import_module(f"{SANDBOX_PACKAGE}.control")


def open_live(request: OpenRequest) -> Opened:
    """The real APIs: credentials from the environment only (SPEC.md "Targets")."""
    from vyxops.http import WallClock
    from vyxops.session import Credentials, Opened

    env = dict(request.env)
    urls = config.live_urls(env)  # bad base URLs fail here, before any call
    creds = config.live_credentials(env)
    moved = [f"{key} at {url}" for key, url in urls.items() if url != config.LIVE_URLS[key]]
    return Opened(
        opener="live",
        label="live",
        description=f"live: Fly.io and Supabase project {creds.project_ref} (credentials from the environment"
        + "".join(f"; {m}" for m in moved)
        + ")",
        credentials=Credentials(
            creds.fly_token, creds.supabase_service_role_key, creds.supabase_access_token, creds.project_ref
        ),
        clock=WallClock(),
        supabase_url=creds.supabase_url,
        urls=urls,
        org=env.get("FLY_ORG", "personal"),
    )

"""Targets: one registered opener per way of reaching the platforms, and the rule that picks one.

An opener turns an :class:`OpenRequest` into an :class:`Opened`
(credentials, transport, clock, labels); :func:`vyxops.fetch.session.open_session`
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
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from vyxops.core import config
from vyxops.core.errors import ConfigError

if TYPE_CHECKING:
    import httpx

    from vyxops.core.function_auth import FunctionBearer
    from vyxops.fetch.http import Clock, RetryPolicy

__all__ = [
    "Credentials",
    "Opened",
    "incarnation_of",
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
class Credentials:
    """The credentials a session sends; registered for redaction when a session opens."""

    fly_token: str
    supabase_service_role_key: str
    supabase_access_token: str
    project_ref: str

    def __repr__(self) -> str:
        return f"Credentials(project_ref={self.project_ref!r}, <tokens redacted>)"


@dataclass
class Opened:
    """What an opener hands back: everything a session needs besides the clients themselves."""

    opener: str  # the registered opener's name, e.g. "sandbox" or "live"
    label: str  # the target as reports name it, e.g. sandbox:stub-image
    description: str  # one line saying which opener was chosen and where it points
    credentials: Credentials
    clock: Clock
    supabase_url: str
    transport: httpx.BaseTransport | None = None
    urls: dict[str, str] = field(default_factory=lambda: dict(config.LIVE_URLS))
    org: str = "personal"
    closers: list[Callable[[], None]] = field(default_factory=list)  # run when the session closes
    handles: dict[str, object] = field(default_factory=dict)  # opener-specific objects, for testing hooks
    # Which world the target is: a sandbox's changes at every reset (its state says which); "" for a target that is
    # one world as long as it is itself (live: the label and the project, :func:`incarnation_of`).
    incarnation: str = ""
    # What the session sends Edge Functions as a bearer, when the opener knows better than the credentials (a bundle:
    # the capture's, which it recorded); None: derived from the credentials (vyxops.core.function_auth.bearer_of).
    function_bearer: FunctionBearer | None = None


def incarnation_of(label: str, project_ref: str, given: str = "") -> str:
    """The target's incarnation: the one the opener read (a sandbox's), else the target and its project."""
    return given or f"{label}:{project_ref}"


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


register_opener("live", "vyxops.fetch.targets:open_live")
register_opener("bundle", "vyxops.fetch.bundle:open_bundle")
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
    from vyxops.fetch.http import WallClock

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

"""A session: the clients for one target, and the clock that target runs on.

The sandbox is reached through the same clients as live; only the transport and
base URLs differ (SPEC.md "Targets"). Which target is opened, and how, is decided
by :mod:`vyxops.fetch.targets`: each way of opening one is an *opener* there, and
:func:`open_session` only builds the clients from what the opener hands back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd

from vyxops.core import config
from vyxops.core.errors import register_secret
from vyxops.core.flytokens import FlyTokens
from vyxops.fetch.clients.fly import FlyClient
from vyxops.fetch.clients.supabase import SupabaseClient
from vyxops.fetch.direct import DirectDb, direct_db
from vyxops.fetch.http import (
    Api,
    AttemptHook,
    Clock,
    RetryPolicy,
    RetryTransport,
    bearer,
    fly,
    make_client,
    registry_basic,
    retry_layer,
    supabase_key,
)
from vyxops.fetch.pools import PooledTransport
from vyxops.fetch.recording import RecordingTransport
from vyxops.fetch.targets import Opened, OpenRequest, incarnation_of, open_target

log = logging.getLogger("vyxops.fetch.session")


@dataclass
class Session:
    """Clients for Fly and Supabase on one target, plus its clock and labels."""

    target: config.Target
    label: str
    fly: FlyClient
    supabase: SupabaseClient
    clock: Clock
    project_ref: str
    org: str = "personal"
    opened_by: str = ""  # which opener made this session (see vyxops.fetch.targets)
    description: str = ""
    recorder: RecordingTransport | None = None  # the exchanges, when recording a bundle
    incarnation: str = ""  # which world the target is (Opened.incarnation); the audit log's lines carry it
    handles: dict[str, object] = field(default_factory=dict, repr=False)
    # The project's database read directly ($SUPABASE_DB_URL), when given: the table's rows and shape come from it,
    # and a fix that writes a row writes it there (vyxops.fetch.direct).
    db: DirectDb | None = None
    _clients: list[httpx.Client] = field(default_factory=list, repr=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def now(self) -> pd.Timestamp:
        """The target's current time (virtual on the sandbox, captured on a bundle)."""
        return pd.Timestamp(int(self.clock.now() * 1000), unit="ms", tz="UTC")

    def watch(self, hook: AttemptHook) -> None:
        """Call ``hook`` after every request attempt any of this session's clients makes (the retry
        layer's hooks, :class:`vyxops.fetch.http.RetryTransport`): how a benchmark counts requests."""
        for c in self._clients:
            layer = retry_layer(c)
            if layer is not None:
                layer.watch(hook)

    def close(self) -> None:
        for c in self._clients:
            c.close()
        for closer in self._closers:
            closer()
        self._closers = []

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(
    target: str | config.Target | None = "sandbox",
    *,
    scenario: str | Path | None = None,
    sandbox_dir: Path | None = None,
    faults: object | None = None,
    environ: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
    record: bool = False,
    base_url: str | None = None,
) -> Session:
    """Open the clients for ``target`` (``sandbox`` | ``live`` | ``bundle:PATH``).

    The opener is chosen by :func:`vyxops.fetch.targets.choose_opener`, whose rule is:
    ``live`` → live; ``bundle:PATH`` → bundle; ``sandbox`` → the served sandbox
    when ``$VYXOPS_SANDBOX_URL`` is set and neither ``sandbox_dir`` nor ``faults``
    is passed (an argument beats the environment), else the sandbox in-process.
    The choice is logged and kept in ``session.opened_by`` / ``session.description``.

    ``base_url`` sends every API to one origin. With ``record``, every exchange
    is kept on ``session.recorder`` for an evidence bundle.
    """
    t = target if isinstance(target, config.Target) else config.parse_target(target)
    request = OpenRequest(
        target=t, scenario=scenario, sandbox_dir=sandbox_dir, faults=faults, environ=environ, retry=retry
    )
    function_jwt = config.function_jwt(request.env)  # a malformed one is exit 2, before any call
    # A malformed $SUPABASE_DB_URL is exit 2, before any call; a bundle answers from its recording alone.
    db = direct_db(request.env) if t.kind != "bundle" else None
    opened = open_target(request)
    log.info("session: %s%s", opened.description, f"; the database directly at {db.where}" if db else "")
    session = build_session(t, opened, retry=retry, record=record, base_url=base_url, function_jwt=function_jwt)
    if db is not None:
        session.db = db
        session._closers.append(db.close)
    return session


def build_session(
    target: config.Target,
    opened: Opened,
    *,
    retry: RetryPolicy | None = None,
    record: bool = False,
    base_url: str | None = None,
    function_jwt: str | None = None,
) -> Session:
    """The platform clients over what an opener handed back; ``function_jwt`` (``$VYXOPS_FUNCTION_JWT``)
    is the Edge Functions' bearer when given (:mod:`vyxops.core.function_auth`)."""
    creds = opened.credentials
    for secret in (creds.fly_token, creds.supabase_service_role_key, creds.supabase_access_token):
        register_secret(secret)
    transport = opened.transport
    recorder = None
    if record:
        recorder = RecordingTransport(transport or PooledTransport(retries=1))
        transport = recorder
    urls, supabase_url = dict(opened.urls), opened.supabase_url
    if base_url:
        urls = {k: base_url for k in urls}
        supabase_url = base_url
    clock = opened.clock

    def client(platform: str, url: str, auth: httpx.Auth | None) -> httpx.Client:
        return make_client(platform, url, auth, transport=transport)

    fly_tokens = FlyTokens.parse(creds.fly_token)  # parsed once; each service gets its own part (fly-go)
    machines_c = client("fly-machines", urls["fly_machines"], fly(fly_tokens, "machines"))
    api_c = client("fly-api", urls["fly_api"], fly(fly_tokens, "api"))
    registry_c = client("fly-registry", urls["fly_registry"], registry_basic(fly_tokens))
    mgmt_c = client("supabase-mgmt", urls["supabase_mgmt"], bearer(creds.supabase_access_token))
    fn_c = client("supabase-functions", supabase_url, supabase_key(creds.supabase_service_role_key, function_jwt))
    # supabase-py sends through this client itself, so its retries live in the transport.
    rest_wire = transport or PooledTransport()
    rest_transport = RetryTransport(rest_wire, retry or RetryPolicy(), clock)
    rest_c = make_client("supabase-rest", supabase_url, None, transport=rest_transport)

    def api(c: httpx.Client, platform: str) -> Api:
        return Api(c, platform, clock=clock, retry=retry)

    fly_client = FlyClient(api(machines_c, "fly-machines"), api(api_c, "fly-api"), api(registry_c, "fly-registry"))
    supa = SupabaseClient(
        supabase_url,
        creds.supabase_service_role_key,
        rest_c,
        api(mgmt_c, "supabase-mgmt"),
        api(fn_c, "supabase-functions"),
        creds.project_ref,
        function_jwt=function_jwt,
        function_bearer=opened.function_bearer,
    )
    return Session(
        target=target,
        label=opened.label,
        fly=fly_client,
        supabase=supa,
        clock=clock,
        project_ref=creds.project_ref,
        org=opened.org,
        opened_by=opened.opener,
        description=opened.description,
        recorder=recorder,
        incarnation=incarnation_of(opened.label, creds.project_ref, opened.incarnation),
        handles=dict(opened.handles),
        _clients=[machines_c, api_c, registry_c, mgmt_c, fn_c, rest_c],
        _closers=list(opened.closers),
    )

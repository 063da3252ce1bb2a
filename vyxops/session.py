"""A session: the clients for one target, and the clock that target runs on.

The sandbox is reached through the same clients as live; only the transport and
base URLs differ (SPEC.md "Targets").
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from vyxops import config
from vyxops.clients.fly import FlyClient
from vyxops.clients.supabase import SupabaseClient
from vyxops.errors import ConfigError, register_secret
from vyxops.http import (
    Api,
    Clock,
    RetryPolicy,
    RetryTransport,
    WallClock,
    bearer,
    fly,
    make_client,
    registry_basic,
    supabase_key,
)
from vyxops.sandbox.hosted import ENV as SANDBOX_URL_ENV
from vyxops.sandbox.hosted import FAULT_HEADER


class SandboxClock:
    """The in-process sandbox's virtual clock: sleeping moves it, no wall time passes."""

    def __init__(self, world: Any) -> None:
        self.world = world

    def now(self) -> float:
        return self.world.now_ms / 1000

    def sleep(self, seconds: float) -> None:
        self.world.sleep(seconds)


class ServedSandboxClock:
    """A served sandbox's clock: read from the server; a wait moves its virtual time.

    Against ``vyxops sandbox serve`` (real time) a wait is a real sleep, since
    wall time moves that server's clock by itself.
    """

    def __init__(self, control: httpx.Client, realtime: bool) -> None:
        self.control = control
        self.realtime = realtime

    def now(self) -> float:
        return _control(self.control, "GET", "clock")["now_ms"] / 1000

    def sleep(self, seconds: float) -> None:
        if self.realtime:
            time.sleep(max(0.0, seconds))
        else:
            _control(self.control, "POST", "clock", json={"sleep_s": max(0.0, seconds)})


class ServedSandboxTransport(httpx.HTTPTransport):
    """HTTP to a served sandbox; its injected timeouts arrive as a header and leave as ReadTimeout."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if response.headers.get(FAULT_HEADER) == "timeout":
            response.close()
            raise httpx.ReadTimeout("sandbox: injected timeout", request=request)
        return response


def check_served_url(url: str) -> None:
    """A served sandbox listens on 127.0.0.1 over plain HTTP; refuse anything else by name."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or not parts.port:
        raise ConfigError(
            f"VYXOPS_SANDBOX_URL={url!r} is not a served sandbox's address",
            hint="it is http://127.0.0.1:PORT, as `vyxops sandbox serve` prints; unset it to open the sandbox in-process",
        )


def _control(client: httpx.Client, method: str, name: str, **kw: Any) -> Any:
    try:
        response = client.request(method, f"/_sandbox/{name}", **kw)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ConfigError(
            f"the sandbox at {client.base_url} did not answer {method} /_sandbox/{name}: {type(exc).__name__}",
            hint="start one with `vyxops sandbox serve`, or unset VYXOPS_SANDBOX_URL to open the sandbox in-process",
        ) from None


class FixedClock:
    """A bundle's clock: its capture time, moved only by sleeps."""

    def __init__(self, start_s: float) -> None:
        self.t = start_s

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


@dataclass
class Session:
    """Clients for Fly and Supabase on one target, plus its clock and labels."""

    target: config.Target
    label: str
    fly: FlyClient
    supabase: SupabaseClient
    clock: Clock
    project_ref: str
    machines_table: str = "machines"
    org: str = "personal"
    world: Any = None  # the sandbox World, for sandbox targets only (tests and `sandbox status`)
    recorder: Any = None
    _clients: list[httpx.Client] = field(default_factory=list, repr=False)

    def now(self) -> pd.Timestamp:
        """The target's current time (virtual on the sandbox, captured on a bundle)."""
        return pd.Timestamp(int(self.clock.now() * 1000), unit="ms", tz="UTC")

    def close(self) -> None:
        for c in self._clients:
            c.close()
        if self.world is not None and self.world.dirty:
            self.world.save()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(
    target: str | config.Target | None = "sandbox",
    *,
    scenario: str | Path | None = None,
    sandbox_dir: Path | None = None,
    faults: Any = None,
    environ: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
    record: bool = False,
    base_url: str | None = None,
) -> Session:
    """Open the clients for ``target`` (``sandbox`` | ``live`` | ``bundle:PATH``).

    ``base_url`` sends every API to one origin (a served sandbox). With ``record``,
    every exchange is kept on ``session.recorder`` for an evidence bundle.

    The sandbox opens in-process, from ``sandbox_dir`` (default
    ``$VYXOPS_SANDBOX_DIR``), unless ``$VYXOPS_SANDBOX_URL`` names a served one
    (the CLI sets it for its notebook kernel; ``vyxops sandbox serve`` is the
    other): then every call goes there over HTTP, and ``scenario`` must be the
    one it holds.
    """
    t = target if isinstance(target, config.Target) else config.parse_target(target)
    world = None
    machines_table, org = "machines", "personal"
    clock: Clock
    transport: httpx.BaseTransport | None = None
    own: list[httpx.Client] = []  # clients the session closes besides the platform ones
    env = os.environ if environ is None else environ
    served = (
        (env.get(SANDBOX_URL_ENV) or "").strip().rstrip("/")
        if t.kind == "sandbox" and sandbox_dir is None and faults is None
        else ""
    )
    if served:
        check_served_url(served)
        # Plain HTTP on loopback: no TLS, so no CA bundle to load (0.06 s a transport).
        transport = ServedSandboxTransport(verify=False)
        control = httpx.Client(base_url=served, timeout=30.0, transport=transport)
        own.append(control)
        meta = _control(control, "GET", "session")
        if scenario is not None and str(scenario) not in (meta["scenario"], meta.get("loaded_as")):
            control.close()
            raise ConfigError(
                f"the sandbox at {served} ($VYXOPS_SANDBOX_URL) holds scenario {meta['scenario']!r}, not {str(scenario)!r}",
                hint=f"reset it with `vyxops sandbox reset --scenario {scenario}`, or unset VYXOPS_SANDBOX_URL to open the sandbox in-process",
            )
        creds = meta["credentials"]
        fly_token, service_key, access_token = (
            creds["fly_api_token"],
            creds["supabase_service_role_key"],
            creds["supabase_access_token"],
        )
        ref = creds["project_ref"]
        clock = ServedSandboxClock(control, bool(meta["realtime"]))
        label = f"sandbox:{meta['scenario']}"
        machines_table, org = meta["machines_table"], meta["org"]
        urls = dict(config.LIVE_URLS)
        base_url = base_url or served
        supabase_url = served
    elif t.kind == "sandbox":
        from vyxops.sandbox.faults import Faults
        from vyxops.sandbox.router import SandboxApp, SandboxTransport
        from vyxops.sandbox.world import World

        directory = Path(sandbox_dir) if sandbox_dir else config.sandbox_dir(environ)
        world = World.load(scenario, directory)
        app = SandboxApp(world, faults if faults is not None else Faults.load(directory))
        transport = SandboxTransport(app)
        creds = world.credentials
        fly_token, service_key, access_token = (
            creds["fly_api_token"],
            creds["supabase_service_role_key"],
            creds["supabase_access_token"],
        )
        ref = creds["project_ref"]
        supabase_url = f"https://{ref}.supabase.co"
        clock = SandboxClock(world)
        label = f"sandbox:{world.scenario_name}"
        machines_table = world.state["supabase"]["machines_table"]
        org = world.state["fly"]["org"]
        urls = dict(config.LIVE_URLS)
    elif t.kind == "bundle":
        from vyxops.bundle import ReplayTransport, read_bundle_meta

        meta = read_bundle_meta(Path(t.path or ""))
        transport = ReplayTransport(Path(t.path or ""))
        fly_token = service_key = access_token = "bundle-replay-no-credentials"
        ref = meta["project_ref"]
        supabase_url = f"https://{ref}.supabase.co"
        clock = FixedClock(pd.Timestamp(meta["now"]).timestamp())
        label = f"bundle:{t.path}"
        machines_table = meta.get("machines_table", "machines")
        org = meta.get("org", "personal")
        urls = dict(config.LIVE_URLS)
    else:
        creds_live = config.live_credentials(environ)
        fly_token, service_key, access_token = (
            creds_live.fly_token,
            creds_live.supabase_service_role_key,
            creds_live.supabase_access_token,
        )
        ref, supabase_url = creds_live.project_ref, creds_live.supabase_url
        clock = WallClock()
        label = "live"
        urls = dict(config.LIVE_URLS)
        machines_table = env.get("VYXOPS_MACHINES_TABLE", "machines")
        org = env.get("FLY_ORG", "personal")
    for secret in (fly_token, service_key, access_token):
        register_secret(secret)
    recorder = None
    if record:
        from vyxops.bundle import RecordingTransport

        recorder = RecordingTransport(transport or httpx.HTTPTransport(retries=1))
        transport = recorder
    if base_url:
        urls = {k: base_url for k in urls}
        supabase_url = base_url

    def client(platform: str, url: str, auth: httpx.Auth | None) -> httpx.Client:
        return make_client(platform, url, auth, transport=transport)

    machines_c = client("fly-machines", urls["fly_machines"], fly(fly_token))
    api_c = client("fly-api", urls["fly_api"], fly(fly_token))
    registry_c = client("fly-registry", urls["fly_registry"], registry_basic(fly_token))
    mgmt_c = client("supabase-mgmt", urls["supabase_mgmt"], bearer(access_token))
    fn_c = client("supabase-functions", supabase_url, supabase_key(service_key))
    # supabase-py sends through this client itself, so its retries live in the transport.
    rest_c = make_client(
        "supabase-rest",
        supabase_url,
        None,
        transport=RetryTransport(transport or httpx.HTTPTransport(), retry or RetryPolicy(), clock),
    )

    def api(c: httpx.Client, platform: str) -> Api:
        return Api(c, platform, clock=clock, retry=retry)

    fly_client = FlyClient(api(machines_c, "fly-machines"), api(api_c, "fly-api"), api(registry_c, "fly-registry"))
    supa = SupabaseClient(
        supabase_url, service_key, rest_c, api(mgmt_c, "supabase-mgmt"), api(fn_c, "supabase-functions"), ref
    )
    return Session(
        target=t,
        label=label,
        fly=fly_client,
        supabase=supa,
        clock=clock,
        project_ref=ref,
        machines_table=machines_table,
        org=org,
        world=world,
        recorder=recorder,
        _clients=[machines_c, api_c, registry_c, mgmt_c, fn_c, rest_c, *own],
    )

"""The ``sandbox-served`` opener: a sandbox served over HTTP on 127.0.0.1, found by ``$VYXOPS_SANDBOX_URL``.

Served by the CLI for its notebook kernel (:mod:`vyxops_sandbox.hosted`, on the
virtual clock) or by ``vyxops sandbox serve`` (real time). Only httpx is needed
here: the simulator runs in the serving process.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from vyxops.core import config
from vyxops.core.errors import ConfigError
from vyxops.fetch.pools import PooledTransport
from vyxops.fetch.targets import SANDBOX_URL_ENV, Credentials, Opened, OpenRequest
from vyxops_sandbox.served import FAULT_HEADER


class ServedSandboxClock:
    """A served sandbox's clock: read from the server; a wait moves its virtual time.

    Against ``vyxops sandbox serve`` (real time) a wait is a real sleep, since
    wall time moves that server's clock by itself; and that clock is read once a
    second, not per call: between reads it runs with this process's monotonic
    clock, as the server's does (``Router._sync``). Every request's rate budget
    reads the clock, and a control request per read had doubled the requests.
    """

    def __init__(self, control: httpx.Client, realtime: bool, resync_s: float = 1.0) -> None:
        self.control = control
        self.realtime = realtime
        self.resync_s = resync_s
        self._read: tuple[float, float] | None = None  # (server seconds, local monotonic) at the last read
        self._resync = threading.Lock()

    def now(self) -> float:
        read = self._read
        if not self.realtime or read is None:
            return self._sync()
        # One thread reads the server's clock again when it is due; the others meanwhile run on the last read
        # (an audit's threads all found it due at once, and each sent its own control request).
        if time.monotonic() - read[1] < self.resync_s or not self._resync.acquire(blocking=False):
            return read[0] + (time.monotonic() - read[1])
        try:
            return self._sync()
        finally:
            self._resync.release()

    def _sync(self) -> float:
        at = time.monotonic()
        server = float(_control(self.control, "GET", "clock")["now_ms"]) / 1000
        self._read = (server, at)
        return server

    def sleep(self, seconds: float) -> None:
        if self.realtime:
            time.sleep(max(0.0, seconds))
        else:
            _control(self.control, "POST", "clock", json={"sleep_s": max(0.0, seconds)})


def lane_of(path: str) -> str:
    """The API a served path belongs to: its first two segments (``/v1/apps``, ``/api/v1``,
    ``/rest/v1``, ``/graphql``), but the registry's ``/v2`` whatever repository follows: live it
    is one host (registry.fly.io), not one per app."""
    return "/v2" if path.startswith("/v2/") else "/".join(path.split("/")[:3])


class ServedSandboxTransport(httpx.BaseTransport):
    """HTTP to a served sandbox; its injected timeouts arrive as a header and leave as ReadTimeout.

    Live, each API is its own host and each client its own connection pool; served, they all
    share one address. One pool per API (:func:`lane_of`) keeps it as live: a pool's
    bookkeeping grows with the square of its connections (vyxops.fetch.budget), and one pool for
    every API made an audit's CPU half as much again.
    """

    def __init__(self) -> None:
        self._lanes: dict[str, PooledTransport] = {}
        self._lock = threading.Lock()

    def _lane(self, path: str) -> PooledTransport:
        key = lane_of(path)
        with self._lock:
            if key not in self._lanes:
                # Plain HTTP on loopback: no TLS, so no CA bundle to load (0.06 s a transport).
                self._lanes[key] = PooledTransport(tls=False)
            return self._lanes[key]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._lane(request.url.path).handle_request(request)
        if response.headers.get(FAULT_HEADER) == "timeout":
            response.close()
            raise httpx.ReadTimeout("sandbox: injected timeout", request=request)
        return response

    def close(self) -> None:
        with self._lock:
            lanes, self._lanes = list(self._lanes.values()), {}
        for lane in lanes:
            lane.close()


def check_served_url(url: str) -> None:
    """A served sandbox listens on 127.0.0.1 over plain HTTP; refuse anything else by name."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or not parts.port:
        raise ConfigError(
            f"{SANDBOX_URL_ENV}={url!r} is not a served sandbox's address",
            hint="it is http://127.0.0.1:PORT, as `vyxops sandbox serve` prints; "
            "unset it to open the sandbox in-process",
        )


def _control(client: httpx.Client, method: str, name: str, **kw: Any) -> Any:
    """One control call. A read is tried three times: among an audit's hundreds of connections a
    pooled keep-alive one can be found reset, which says nothing of the sandbox. A write goes once."""
    tries = 3 if method == "GET" else 1
    for attempt in range(1, tries + 1):
        try:
            response = client.request(method, f"/_sandbox/{name}", **kw)
            response.raise_for_status()
            return response.json()
        except httpx.TransportError as exc:
            if attempt < tries:
                continue
            failure: Exception = exc
        except (httpx.HTTPError, ValueError) as exc:
            failure = exc
        break
    raise ConfigError(
        f"the sandbox at {client.base_url} did not answer {method} /_sandbox/{name}: {type(failure).__name__}",
        hint=f"start one with `vyxops sandbox serve`, or unset {SANDBOX_URL_ENV} to open the sandbox in-process",
    )


def open_served(request: OpenRequest) -> Opened:
    """Open the sandbox at ``$VYXOPS_SANDBOX_URL``; ``scenario``, when given, must be the one it holds."""
    served = (request.env.get(SANDBOX_URL_ENV) or "").strip().rstrip("/")
    check_served_url(served)
    transport = ServedSandboxTransport()
    control = httpx.Client(base_url=served, timeout=30.0, transport=transport)
    meta = _control(control, "GET", "session")
    scenario = request.scenario
    if scenario is not None and str(scenario) not in (meta["scenario"], meta.get("loaded_as")):
        control.close()
        raise ConfigError(
            f"the sandbox at {served} (${SANDBOX_URL_ENV}) holds scenario {meta['scenario']!r}, not {str(scenario)!r}",
            hint=f"reset it with `vyxops sandbox reset --scenario {scenario}`, "
            f"or unset {SANDBOX_URL_ENV} to open the sandbox in-process",
        )
    creds = meta["credentials"]
    realtime = bool(meta["realtime"])
    return Opened(
        opener="sandbox-served",
        label=f"sandbox:{meta['scenario']}",
        description=f"sandbox served at {served}: scenario {meta['scenario']} "
        f"({'real time' if realtime else 'virtual clock'})",
        credentials=Credentials(
            creds["fly_api_token"],
            creds["supabase_service_role_key"],
            creds["supabase_access_token"],
            creds["project_ref"],
        ),
        clock=ServedSandboxClock(control, realtime),
        supabase_url=served,
        transport=transport,
        urls={k: served for k in config.LIVE_URLS},
        org=meta["org"],
        closers=[control.close],
        incarnation=str(meta.get("incarnation") or ""),
    )

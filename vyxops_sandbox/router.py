"""One sandbox application for every API, reached in-process or over 127.0.0.1.

Routing is by path only, so the in-process transport (real hostnames) and
``vyxops sandbox serve`` (one origin) share it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from vyxops_sandbox.faults import FaultRule, Faults
from vyxops_sandbox.refusals import RATE_LIMITED
from vyxops_sandbox.world import World

Handler = Callable[[World, httpx.Request], "httpx.Response | None"]


class InjectedTimeout(Exception):
    """A timeout fault: the caller gets no answer (the transport raises ReadTimeout)."""

    def __init__(self, rule: FaultRule) -> None:
        self.rule = rule
        super().__init__("injected timeout")


def _routes() -> list[tuple[str, Handler]]:
    # Imported here so that importing the router stays light for the CLI.
    from vyxops_sandbox import fly_api, management_api, registry_api, supabase_api

    return [
        ("/v1/apps", fly_api.handle_machines),
        ("/graphql", fly_api.handle_graphql),
        ("/api/v1/apps", fly_api.handle_fly_rest),
        ("/v2", registry_api.handle_registry),
        ("/rest/v1/", supabase_api.handle_postgrest),
        ("/functions/v1/", supabase_api.handle_functions),
        ("/v1/projects/", management_api.handle_management),
        ("/v1/organizations/", management_api.handle_management),
    ]


def not_found() -> httpx.Response:
    """What Go's default mux answers for a path that matches no route."""
    return httpx.Response(404, content=b"404 page not found\n", headers={"content-type": "text/plain; charset=utf-8"})


class SandboxApp:
    """Routes a request to the platform model that serves its path, with faults applied."""

    def __init__(
        self, world: World, faults: Faults | None = None, *, realtime: bool = False, autosave: bool = True
    ) -> None:
        self.world = world
        self.faults = faults or Faults()
        self.realtime = realtime  # served mode: wall time moves the virtual clock too
        self.autosave = autosave
        self.lock = threading.RLock()
        self.routes = _routes()
        self._last_wall = time.monotonic()
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with self.lock:
            self.calls += 1
            self.sync()
            rule = self.faults.pick(request.method, path, "before")
            if rule is not None and not self._wall_latency(rule):
                early = self._fault_response(rule)
                if early is not None:
                    return early
                rule = None
        if rule is not None:
            # Served: the delay is wall time and is spent outside the lock, so that
            # concurrent requests are each delayed but overlap instead of queueing.
            time.sleep(rule.latency_ms / 1000)
        with self.lock:
            if rule is not None:
                self.sync()
            response = self._dispatch(request)
            # Saved when a request changed the state. A move of the clock alone (every request of
            # a real-time server) is not worth writing the whole world for; the next real change,
            # a clock control call or the session's close writes it.
            if self.autosave and self.world.changed:
                self.world.save()
            after = self.faults.pick(request.method, path, "after")
            if after is not None and not self._wall_latency(after):
                hidden = self._fault_response(after)
                if hidden is not None:
                    return hidden
                after = None
        if after is not None:
            time.sleep(after.latency_ms / 1000)
        return response

    def sync(self) -> None:
        """Catch up with other processes' saves and, served in realtime, with the wall clock (under the lock)."""
        self.world.refresh()  # another process (the CLI applying a fix, a served copy) may have saved
        if self.realtime:
            wall = time.monotonic()
            self.world.advance_to(self.world.now_ms + int((wall - self._last_wall) * 1000))
            self._last_wall = wall

    def _wall_latency(self, rule: FaultRule) -> bool:
        """Whether ``rule`` is a latency to sleep in wall time (served in realtime), outside the lock."""
        return rule.kind == "latency" and self.realtime

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        for prefix, handler in self.routes:
            if (
                path == prefix
                or path.startswith(prefix if prefix.endswith("/") else prefix + "/")
                or path == prefix.rstrip("/")
            ):
                response = handler(self.world, request)
                if response is not None:
                    return response
        return not_found()

    def _fault_response(self, rule: FaultRule) -> httpx.Response | None:
        if rule.kind == "latency":  # virtual clock; a served one sleeps in handle(), outside the lock
            self.world.sleep(rule.latency_ms / 1000)
            return None
        if rule.kind == "timeout":
            raise InjectedTimeout(rule)
        if rule.kind == "429":
            headers = {"content-type": "application/json"}
            if rule.retry_after is not None:
                headers["retry-after"] = str(
                    int(rule.retry_after) if float(rule.retry_after).is_integer() else rule.retry_after
                )
            return httpx.Response(429, json=RATE_LIMITED, headers=headers)
        if rule.kind == "5xx":
            return httpx.Response(
                rule.status, content=b"<html><body>upstream error</body></html>", headers={"content-type": "text/html"}
            )
        if rule.kind == "malformed":
            return httpx.Response(200, content=b'{"data": [{"id": "trunc', headers={"content-type": "application/json"})
        return None


class SandboxTransport(httpx.BaseTransport):
    """An httpx transport that answers from the sandbox, like ``httpx.MockTransport``."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        try:
            response = self.app.handle(request)
        except InjectedTimeout:
            raise httpx.ReadTimeout("sandbox: injected timeout", request=request) from None
        # Hand back a fresh response so httpx can stream it like a network answer.
        return httpx.Response(response.status_code, headers=response.headers, content=response.content, request=request)

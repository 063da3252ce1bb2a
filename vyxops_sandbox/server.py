"""The sandbox over HTTP on 127.0.0.1: ``vyxops sandbox serve``, and the CLI's own.

The same :class:`~vyxops_sandbox.router.SandboxApp` as the in-process transport.
Two clocks:

- **realtime** (``vyxops sandbox serve``): wall time moves the virtual clock too,
  since a remote client's sleeps cannot be seen.
- **virtual** (the sandbox the CLI serves to its notebook kernel, see
  :class:`~vyxops_sandbox.hosted.HostedSandbox`): time moves only when the client says it waits, by
  ``POST /_sandbox/clock``, exactly as an in-process session's sleeps move it.
  An injected timeout is answered at once with ``x-vyxops-sandbox-fault: timeout``
  for the client's transport to raise as a read timeout, as in-process.

Both answer ``GET /_sandbox/session`` (scenario, credentials, table, org, clock)
so that a session can be opened against them from ``$VYXOPS_SANDBOX_URL``. The
sandbox's credentials are its own fake ones, the same that
``vyxops sandbox status --json`` prints; nothing here logs a header.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from vyxops_sandbox.faults import Faults
from vyxops_sandbox.router import InjectedTimeout, SandboxApp
from vyxops_sandbox.served import FAULT_HEADER
from vyxops_sandbox.world import World

CONTROL = "/_sandbox/"


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a client opening dozens of connections at
    # once (a 50-app audit fetching side by side opens a few hundred) would see SYNs dropped
    # and retried a second later, or a connection stall for the 30 s timeout.
    request_queue_size = 1024

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up (a killed kernel mid-request) is not an error to print; anything else still is."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


def make_server(
    world: World,
    port: int = 0,
    faults: Faults | None = None,
    *,
    realtime: bool = True,
    sock: socket.socket | None = None,
    loaded_as: str | None = None,
    quiet: bool = False,
    after: Callable[[World], None] | None = None,
) -> ThreadingHTTPServer:
    """A server on 127.0.0.1:``port`` (0 picks a free port), or on ``sock`` already bound there. ``after`` is
    called with the world, under its lock, after each platform request is handled and before its answer is sent
    (the world changes only then): how ``serve --postgres`` keeps its database in step by the next answer."""
    app = SandboxApp(
        world,
        faults if faults is not None else Faults.load(world.sandbox_dir) if world.sandbox_dir else None,
        realtime=realtime,
    )

    def control(request: httpx.Request) -> httpx.Response:
        with app.lock:
            app.sync()  # in realtime, the clock a client reads is the one the next answer will use
            if request.url.path == CONTROL + "session" and request.method == "GET":
                return httpx.Response(
                    200,
                    json={
                        "scenario": world.scenario_name,
                        "incarnation": world.incarnation,
                        "loaded_as": loaded_as,
                        "realtime": realtime,
                        "now_ms": world.now_ms,
                        "machines_table": world.state["supabase"]["machines_table"],
                        "org": world.state["fly"]["org"],
                        "credentials": world.credentials,
                    },
                )
            if request.url.path == CONTROL + "clock" and request.method == "GET":
                return httpx.Response(200, json={"now_ms": world.now_ms})
            if request.url.path == CONTROL + "clock" and request.method == "POST" and not realtime:
                try:
                    seconds = float(json.loads(request.content)["sleep_s"])
                except (ValueError, KeyError, TypeError):
                    return httpx.Response(400, json={"error": 'body must be {"sleep_s": <seconds>}'})
                # Not saved here: a wait moves only the clock (and applies what was already scheduled
                # for it), and writing the whole world for that made every rate-limited wait of a busy
                # day cost a full save. A request that changes the world is saved as it answers
                # (SandboxApp.handle), and the clock when serving stops (HostedSandbox.stop, serve).
                # A crash between saves therefore loses only clock moves: the state on disk is the
                # world at an earlier instant, its pending events still pending, never a lost change.
                world.sleep(seconds)
                return httpx.Response(200, json={"now_ms": world.now_ms})
            return httpx.Response(404, json={"error": f"no sandbox control {request.method} {request.url.path}"})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle's algorithm the second
        # waits for the client's delayed ACK, 40 ms a request on Linux loopback.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            host, p = self.server.server_address[:2]
            request = httpx.Request(
                self.command, f"http://{host}:{p}{self.path}", headers=list(self.headers.items()), content=body
            )
            try:
                response = control(request) if request.url.path.startswith(CONTROL) else app.handle(request)
            except InjectedTimeout as exc:
                if not realtime:
                    self._answer(httpx.Response(504, headers={FAULT_HEADER: "timeout"}))
                    return
                threading.Event().wait(exc.rule.latency_ms / 1000)
                self.close_connection = True
                return
            if after is not None and not request.url.path.startswith(CONTROL):
                with app.lock:  # before the answer goes out: a client that reads next sees the change
                    after(world)
            self._answer(response)

        def _answer(self, response: httpx.Response) -> None:
            payload = b"" if self.command == "HEAD" else response.content
            self.send_response(response.status_code)
            for k, v in response.headers.items():
                if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(k, v)
            self.send_header("content-length", str(len(response.content) if self.command == "HEAD" else len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            if not quiet:
                sys.stderr.write("sandbox %s\n" % (format % args))  # no headers are logged, so no tokens

    if sock is None:
        server = _Server(("127.0.0.1", port), Handler)
    else:
        server = _Server(sock.getsockname()[:2], Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.server_address = sock.getsockname()[:2]
    server.daemon_threads = True
    return server


def serve(world: World, port: int = 8787, *, postgres: bool = False) -> None:
    """Serve until interrupted, printing where; with ``postgres``, the world's tables also in a throwaway
    PostgreSQL server (:func:`vyxops_sandbox.pg_load.world_database`), kept in step with the world, whose URL
    is printed on the next line."""
    with contextlib.ExitStack() as stack:
        after = None
        if postgres:
            from vyxops_sandbox.pg_load import TableKeeper, world_database

            pg, url = stack.enter_context(world_database(world))
            after = TableKeeper(pg.admin_conninfo("postgres"), world)
        server = make_server(world, port, after=after)
        host, p = server.server_address[:2]
        from vyxops_sandbox import logsql

        logsql.warm_up()  # sqlglot's and DuckDB's first use, before the address is printed: the
        # first logs query then takes its own time, not a 0.4 s import on the client's critical path
        print(f"vyxops sandbox {world.scenario_name} serving on http://{host}:{p} (Ctrl-C stops)", flush=True)
        if postgres:
            # The password is this throwaway server's own, made for this run and gone with it (like the sandbox's
            # tokens, which `vyxops sandbox status --json` prints): printed whole so that it can be pasted.
            print(f"postgres: {url} (its own throwaway password; stops with the sandbox)", flush=True)
            print(f"  export SUPABASE_DB_URL='{url}'", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            world.save()

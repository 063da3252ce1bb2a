"""``vyxops sandbox serve``: every sandbox API on one origin, on 127.0.0.1 only.

The same :class:`~vyxops.sandbox.router.SandboxApp` as the in-process transport;
here wall time moves the virtual clock too, since a remote client's sleeps cannot
be seen.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from vyxops.sandbox.faults import Faults
from vyxops.sandbox.router import InjectedTimeout, SandboxApp
from vyxops.sandbox.world import World


def make_server(world: World, port: int = 0, faults: Faults | None = None) -> ThreadingHTTPServer:
    """A server bound to 127.0.0.1:``port`` (0 picks a free port) serving ``world``."""
    app = SandboxApp(world, faults if faults is not None else Faults.load(world.sandbox_dir) if world.sandbox_dir else None, realtime=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            host, p = self.server.server_address[:2]
            request = httpx.Request(self.command, f"http://{host}:{p}{self.path}", headers=list(self.headers.items()), content=body)
            try:
                response = app.handle(request)
            except InjectedTimeout as exc:
                threading.Event().wait(exc.rule.latency_ms / 1000)
                self.close_connection = True
                return
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
            sys.stderr.write("sandbox %s\n" % (format % args))  # no headers are logged, so no tokens

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def serve(world: World, port: int = 8787) -> None:
    """Serve until interrupted, printing where."""
    server = make_server(world, port)
    host, p = server.server_address[:2]
    print(f"vyxops sandbox {world.scenario_name} serving on http://{host}:{p} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        world.save()

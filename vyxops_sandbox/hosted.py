"""The sandbox the CLI serves to its own notebook kernel (light to import: socket only)."""

from __future__ import annotations

import socket
import threading
from typing import Any

from vyxops.fetch.targets import SANDBOX_URL_ENV as ENV  # where a session finds a served sandbox


class HostedSandbox:
    """The sandbox the CLI serves to its notebook kernel, on the virtual clock.

    The address is taken first (:meth:`reserve` needs only :mod:`socket`, so the
    kernel can be started with ``$VYXOPS_SANDBOX_URL`` at once); the world is
    served once the inputs are checked (:meth:`start`). The platforms' work (the
    world, PostgREST filters, the logs endpoint's SQL on DuckDB) then runs in the
    CLI's process beside the kernel, as the real platforms run elsewhere, instead
    of inside the kernel that also renders the report. :meth:`stop` saves the world.
    """

    ENV = ENV

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.world: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @classmethod
    def reserve(cls) -> HostedSandbox:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        return cls(sock)

    def start(self, world: Any, loaded_as: str | None) -> None:
        """Serve ``world`` (a :class:`~vyxops_sandbox.world.World`) from a thread."""
        from vyxops_sandbox.server import make_server

        self.world = world
        self._server = make_server(world, realtime=False, sock=self.sock, loaded_as=loaded_as, quiet=True)
        self._thread = threading.Thread(target=self._serve, name="vyxops-sandbox", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        assert self._server is not None
        try:
            from vyxops_sandbox import logsql

            logsql.warm_up()  # sqlglot's and DuckDB's first use, before the first logs query
        finally:
            self._server.serve_forever(poll_interval=0.01)  # how long stop() may wait

    def stop(self) -> None:
        """Stop serving and save what the notebook changed. Safe to call twice.

        Called before the server loop has started (a run that failed at once), it
        waits for the logs engine's warm-up, and the loop then ends at once.
        """
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        else:
            self.sock.close()
        if self.world is not None and self.world.dirty:
            self.world.save()

    def __enter__(self) -> HostedSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Connection pools (vyxops.fetch.pools): every connection kept, and one host's spread over several pools.

Both tests pin a fact about httpcore 1.0's pool that vyxops.fetch.pools works around; if one
fails, httpcore has changed and the workaround may go."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore
import httpx
import pytest

from vyxops.fetch.pools import SHARDS, PooledTransport, pool_limits

ROUND = 40  # requests at once, each round


class _Server:
    """A local server that answers each round's requests together (so all are open at once)."""

    def __init__(self) -> None:
        self.opened: list[int] = []
        together = threading.Barrier(ROUND)
        opened = self.opened

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                opened.append(1)
                socketserver.StreamRequestHandler.setup(self)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/round":
                    together.wait(timeout=10)
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def round(self, http: httpx.Client) -> None:
        with ThreadPoolExecutor(ROUND) as pool:
            assert set(pool.map(lambda _: http.get(f"{self.url}/round").status_code, range(ROUND))) == {200}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.stop()


def _opened_in_second_round(server: _Server, client: Callable[[], httpx.Client]) -> int:
    with client() as http:
        server.round(http)
        first = len(server.opened)
        server.round(http)
        return len(server.opened) - first


def test_pools_keep_every_connection_they_open_where_httpx_defaults_close_and_reopen_them(server: _Server) -> None:
    """httpcore 1.0 closes a connection going idle whenever its pool holds more than
    max_keepalive_connections (20 by default), counting busy ones too: two rounds of 40 requests
    at once open new connections in the second round. pool_limits() keeps them, and so does a
    PooledTransport: no reconnects (live, each is a TCP and TLS handshake the run does not need)."""
    ours = _opened_in_second_round(server, lambda: httpx.Client(limits=pool_limits()))
    pooled = _opened_in_second_round(server, lambda: httpx.Client(transport=PooledTransport(tls=False)))
    # httpx's documented defaults (https://www.python-httpx.org/advanced/resource-limits/)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    defaults = _opened_in_second_round(server, lambda: httpx.Client(limits=limits))
    assert ours == 0 and pooled == 0, (ours, pooled)
    assert defaults >= 20, defaults  # the churn pool_limits() is there for; if this fails, httpcore fixed it


def test_a_pooled_transport_spreads_a_hosts_connections_so_each_pools_bookkeeping_stays_small(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpcore asks every connection of a pool whether it is idle once for each idle one, each
    time a request comes or goes: quadratic in the connections it holds. After a burst of 40,
    one more request costs one pool some 40 x 40 questions; spread over SHARDS pools, a fraction."""
    asked: list[int] = []
    is_idle = httpcore.HTTPConnection.is_idle

    def counted(self: httpcore.HTTPConnection) -> bool:
        asked.append(1)
        return is_idle(self)

    def questions_for_one_more(transport: httpx.BaseTransport) -> int:
        with httpx.Client(transport=transport) as http:
            server.round(http)  # ROUND connections, now idle
            asked.clear()
            assert http.get(f"{server.url}/one").status_code == 200
            return len(asked)

    monkeypatch.setattr(httpcore.HTTPConnection, "is_idle", counted)
    one_pool = questions_for_one_more(httpx.HTTPTransport(limits=pool_limits()))
    pooled = questions_for_one_more(PooledTransport(tls=False))
    assert one_pool >= ROUND * ROUND, one_pool  # if this fails, httpcore's pool is no longer quadratic
    assert pooled * SHARDS * 2 <= one_pool, (pooled, one_pool)

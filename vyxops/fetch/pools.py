"""Connection pools: how many connections each keeps, and how one host's are spread over several.

Two facts about httpcore's pool (1.0.x, ``ConnectionPool._assign_requests_to_connections``,
run under the pool's lock each time a request arrives or an answer is closed) shape it:

- It closes a connection going idle whenever the pool holds more than
  ``max_keepalive_connections``, counting busy ones too, so with httpx's defaults (20) a burst
  of requests reconnects all through a run, a TCP and TLS handshake each live.
  :func:`pool_limits` keeps every connection the pool may open.
- Its bookkeeping is quadratic in the connections it holds: for each idle connection it
  builds a list of all of them, and asks each idle one whether its socket is readable (a
  ``poll``). A 50-app audit holds some hundred connections to the registry alone, and one
  pool for them was a large share of the audit's CPU (bench/FIGURES.md).

:class:`PooledTransport` is what every client of a host sends through: its connections
spread over :data:`SHARDS` pools, each request to the next pool in turn, so each pool holds
an eighth of them and its bookkeeping a sixty-fourth. The pools share one TLS context (a
CA bundle loaded once, not once a pool). ``tests/test_pools.py`` pins both facts about
httpcore: if they fail, httpcore has changed, and this module may be simplified.
"""

from __future__ import annotations

import functools
import itertools
import ssl

import httpx

from vyxops.fetch.budget import IN_FLIGHT

#: Pools per host. Round robin gives each about IN_FLIGHT / SHARDS of a burst's connections.
SHARDS = 8


def pool_limits() -> httpx.Limits:
    """Every pool's limits: as many connections as requests may be in flight, all kept alive,
    so httpcore never queues a request nor closes a connection the run will reuse."""
    return httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context, as httpx makes its default (certifi, or $SSL_CERT_FILE)."""
    return httpx.create_ssl_context()


@functools.cache
def _no_tls() -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=False)


class PooledTransport(httpx.BaseTransport):
    """One host's transport: :data:`SHARDS` connection pools, each request to the next in turn.

    ``tls=False`` is for plain HTTP on loopback (the served sandbox): no CA bundle is loaded.
    ``retries``: how often each pool retries a connection that could not be made."""

    def __init__(self, *, shards: int = SHARDS, tls: bool = True, retries: int = 0) -> None:
        context = tls_context() if tls else _no_tls()
        self._pools = [
            httpx.HTTPTransport(verify=context, limits=pool_limits(), retries=retries) for _ in range(shards)
        ]
        self._turn = itertools.count()  # next() on a count is atomic under the interpreter lock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._pools[next(self._turn) % len(self._pools)].handle_request(request)

    def close(self) -> None:
        for pool in self._pools:
            pool.close()

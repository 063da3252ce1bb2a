"""Can the live platforms' hosts be reached at all? Asked once, before a kernel starts.

Offline, a live run used to spend 30 s finding out: a kernel started, then each client
retried its connect errors with backoff. A name that does not resolve or a port that
refuses does not answer a few seconds later either, so the hosts are tried up front, in
parallel, with a short deadline: the run fails in a few seconds with a network hint
(exit 3), before any work. Through a proxy (``HTTPS_PROXY``/``ALL_PROXY``, as httpx reads
them, ``NO_PROXY`` honoured), the proxy is what must answer.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from vyxops.core.errors import TransportError, VyxopsError

#: Seconds the whole check may take: DNS and a TCP connect to every host, in parallel.
DEADLINE_S = 3.0
HINT = (
    "check the network: DNS, a VPN or firewall, and a proxy (HTTPS_PROXY, NO_PROXY); "
    "and the base URL variables (FLY_API_BASE_URL, FLY_FLAPS_BASE_URL, FLY_REGISTRY_HOST, SUPABASE_API_URL, "
    "SUPABASE_URL)"
)


class Unreachable(TransportError):
    """No platform call was made: a host (or the proxy) cannot be reached at all (exit 3, as TransportError)."""

    def __init__(self, message: str) -> None:
        self.platform, self.method, self.path = "live", "CONNECT", ""
        VyxopsError.__init__(self, message, hint=HINT)


@dataclass(frozen=True)
class Endpoint:
    """A host and port to connect to, and the platform (or the proxy) it is."""

    name: str
    host: str
    port: int


def endpoints(urls: dict[str, str]) -> list[Endpoint]:
    """Each URL's host and port (``name -> url``), or its proxy's when one applies; each pair once."""
    proxies = urllib.request.getproxies()
    seen: dict[tuple[str, int], Endpoint] = {}
    for name, url in urls.items():
        parts = urlsplit(url if "://" in url else f"https://{url}")
        host = parts.hostname or ""
        port = parts.port or (80 if parts.scheme == "http" else 443)
        proxy = proxies.get(parts.scheme) or proxies.get("all")
        if proxy and not urllib.request.proxy_bypass(host):
            p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            name, host, port = f"the proxy for {name}", p.hostname or "", p.port or 8080
        seen.setdefault((host, port), Endpoint(name, host, port))
    return list(seen.values())


def problem(endpoint: Endpoint, timeout: float) -> str | None:
    """Why ``endpoint`` cannot be reached (name not resolved, connection refused or timed out), or None."""
    try:
        infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"{endpoint.host} does not resolve ({exc})"
    last = "no address"
    for family, kind, proto, _, address in infos:
        try:
            with socket.socket(family, kind, proto) as s:
                s.settimeout(timeout)
                s.connect(address)
            return None
        except OSError as exc:
            last = str(exc) or type(exc).__name__
    return f"{endpoint.host}:{endpoint.port} does not accept a connection ({last})"


def check_reachable(urls: dict[str, str], deadline: float = DEADLINE_S) -> None:
    """Raise TransportError (exit 3) naming every endpoint of ``urls`` that cannot be reached within ``deadline``."""
    found: dict[Endpoint, str | None] = {}
    threads = []
    for endpoint in endpoints(urls):

        def attempt(e: Endpoint = endpoint) -> None:
            found[e] = problem(e, deadline)

        thread = threading.Thread(target=attempt, name=f"vyxops-reach-{endpoint.host}", daemon=True)
        thread.start()
        threads.append((endpoint, thread))
    problems = []
    end = time.monotonic() + deadline
    for endpoint, thread in threads:
        thread.join(timeout=max(0.0, end - time.monotonic()))
        why = found.get(endpoint, f"{endpoint.host}:{endpoint.port} did not answer within {deadline:g} s")
        if why:
            problems.append(f"{endpoint.name}: {why}")
    if problems:
        raise Unreachable("cannot reach the platforms: " + "; ".join(problems))

"""A socket-level HTTP/1.1 proxy on 127.0.0.1 that misbehaves on purpose, per rule.

It stands between vyxops (``--target live`` with its base-URL variables pointed here) and a served
sandbox, and forwards every request as it came. A :class:`Rule` that matches a request (method and
path regexes, which attempts) instead resets the socket, truncates the answer mid-body, hangs (reads
the request and never answers), answers an error status with a body of its own, or rewrites the JSON
answer through a function (a wrong shape, hostile text in a field, a planted credential). Each
request line is kept (``seen``) exactly as it reached the proxy, before any normalisation, so a test
can tell which paths the client really sent.

Used by ``tests/fault_matrix_hostile.py``; the sandbox's own fault injection (vyxops_sandbox.faults)
works above HTTP and cannot produce a reset, a short body or a silent server.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["reset", "truncate", "hang", "status", "rewrite"]
JsonValue = Any  # a parsed JSON document: its shape is what the rules vary


@dataclass
class Rule:
    """What to do to the requests it matches; ``times`` 0 means every one from the ``nth`` on."""

    kind: Kind
    path: str = ".*"
    method: str = ".*"
    nth: int = 1
    times: int = 0
    rewrite: Callable[[JsonValue], JsonValue] | None = None
    status: int = 500
    body: bytes = b""
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if not (re.search(self.method, method) and re.search(self.path, path.split("?")[0])):
            return False
        self.seen += 1
        if self.seen < self.nth or (self.times and self.seen >= self.nth + self.times):
            return False
        return True


@dataclass
class Request:
    method: str
    target: str  # the request target as sent: path and query, unnormalised
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Proxy:
    """``with Proxy(upstream_port, rules) as p:`` listens on ``p.url`` until the block ends."""

    upstream_port: int
    rules: list[Rule] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> Proxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                _close(conn)

    def fired(self) -> int:
        return sum(r.fired for r in self.rules)

    # ------------------------------------------------------------------ connections

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while not self._stop.is_set():
                request = _read_request(reader)
                if request is None:
                    break
                self.seen.append(f"{request.method} {request.target}")
                if not self._answer(conn, reader, request):
                    break
        except (OSError, ValueError) as exc:
            if not self._stop.is_set():
                self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            _close(conn)

    def _rule_for(self, request: Request) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(request.method, request.target):
                    rule.fired += 1
                    return rule
        return None

    def _answer(self, conn: socket.socket, reader: Any, request: Request) -> bool:
        """Answer one request; False when the connection is done with."""
        rule = self._rule_for(request)
        if rule is not None and rule.kind == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if rule is not None and rule.kind == "hang":
            while not self._stop.is_set() and reader.read(1):
                pass  # never answer; wait for the client to give up (or the proxy to stop)
            return False
        if rule is not None and rule.kind == "status":
            conn.sendall(_response(rule.status, "Error", [("content-type", "application/json")], rule.body))
            return True
        status, reason, headers, body = _forward(self.upstream_port, request)
        if rule is not None and rule.kind == "truncate":
            head = _response(status, reason, [*headers, ("Content-Length", str(len(body)))], b"")
            conn.sendall(head + body[: len(body) // 2])
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if rule is not None and rule.kind == "rewrite" and rule.rewrite is not None:
            body = _rewrite(body, rule.rewrite)
        conn.sendall(_response(status, reason, headers, body))
        return True


def _rewrite(body: bytes, how: Callable[[JsonValue], JsonValue]) -> bytes:
    try:
        doc = json.loads(body) if body.strip() else None
    except ValueError:
        doc = body.decode("utf-8", "replace")
    # ensure_ascii: a lone surrogate goes out as the JSON escape \ud800, as a platform's JSON would carry it.
    return json.dumps(how(doc), ensure_ascii=True).encode()


def _read_request(reader: Any) -> Request | None:
    line = reader.readline(65536)
    if not line:
        return None
    method, target, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers = _read_headers(reader)
    length = int(dict((k.lower(), v) for k, v in headers).get("content-length", "0"))
    return Request(method, target, headers, reader.read(length) if length else b"")


def _read_headers(reader: Any) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        line = reader.readline(65536).decode("latin-1").rstrip("\r\n")
        if not line:
            return headers
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))


def _forward(port: int, request: Request) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """One request to the upstream on a connection of its own; its whole answer, de-chunked."""
    skip = {"connection", "accept-encoding", "keep-alive"}
    lines = [f"{request.method} {request.target} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in request.headers if k.lower() not in skip]
    lines += ["Connection: close", "", ""]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as up:
        up.sendall("\r\n".join(lines).encode("latin-1") + request.body)
        reader = up.makefile("rb")
        version, status, *reason = reader.readline().decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers = _read_headers(reader)
        named = {k.lower(): v for k, v in headers}
        if request.method == "HEAD" or status in ("204", "304"):
            body = b""
        elif named.get("transfer-encoding", "").lower() == "chunked":
            body = _dechunk(reader)
        elif "content-length" in named:
            body = reader.read(int(named["content-length"]))
        else:
            body = reader.read()
    keep = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding", "connection")]
    if request.method == "HEAD" and "content-length" in named:
        keep.append(("Content-Length", named["content-length"]))
    return int(status), reason[0] if reason else "", keep, body


def _dechunk(reader: Any) -> bytes:
    out = b""
    while True:
        size = int(reader.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            reader.readline()
            return out
        out += reader.read(size)
        reader.readline()


def _response(status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    if not any(k.lower() == "content-length" for k, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join([*lines, "", ""]).encode("latin-1") + body


def _close(conn: socket.socket) -> None:
    try:
        conn.close()
    except OSError:
        pass

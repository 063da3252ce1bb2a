"""The recording transport: every exchange a session makes, kept for an evidence bundle (:mod:`vyxops.fetch.bundle`).

Request headers are never kept (they hold the credentials). Response bodies are
redacted after parsing: each JSON string value is redacted as the text a reader will see
(a ``\\u0066``-escaped token in the serialised body is a raw token once parsed), and a body
is rewritten only when something was masked (a manifest keeps its bytes, and its digest).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from typing import Any

import httpx

from vyxops.core.errors import redact

_KEEP_HEADERS = (
    "content-type",
    "fly-next-cursor",
    "content-range",
    "docker-content-digest",
    "retry-after",
    "x-ratelimit-remaining",
)


def exchange_key(request: httpx.Request) -> str:
    """What identifies a request in a bundle: method, path, sorted query and a body digest."""
    query = sorted(request.url.params.multi_items())
    body = hashlib.sha256(request.content or b"").hexdigest()[:16]
    return json.dumps([request.method, request.url.path, query, body])


class RecordingTransport(httpx.BaseTransport):
    """Passes requests on to ``inner`` and keeps each exchange for :func:`vyxops.fetch.bundle.write_bundle`."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        response = self.inner.handle_request(request)
        response.read()
        with self.lock:
            self.exchanges.append(
                {
                    "key": exchange_key(request),
                    "host": request.url.host,
                    "status": response.status_code,
                    "headers": {k: v for k, v in response.headers.items() if k.lower() in _KEEP_HEADERS},
                    "body_b64": base64.b64encode(redacted_body(response.content)).decode() if response.content else "",
                }
            )
        return httpx.Response(response.status_code, headers=response.headers, content=response.content, request=request)


JsonValue = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None


def redacted_body(content: bytes) -> bytes:
    """``content`` with every credential masked in what a client parses out of it: the values of a JSON
    body (or of each line of a JSON-lines body), else its text. Unchanged bytes when nothing was masked."""
    text = content.decode("utf-8", "replace")
    try:
        parsed = [json.loads(text)]
        lines = False
    except ValueError:
        try:
            parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
            lines = True
        except ValueError:
            masked = redact(text)
            return content if masked == text else masked.encode()
    masked_values = [_redact_json(value) for value in parsed]
    if masked_values == parsed and redact(text) == text:
        return content
    if lines:
        return "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in masked_values).encode()
    return json.dumps(masked_values[0], ensure_ascii=False).encode()


def _redact_json(value: JsonValue) -> JsonValue:
    """A parsed JSON value with every string (keys too) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    if isinstance(value, dict):
        return {redact(k): _redact_json(v) for k, v in value.items()}
    return value

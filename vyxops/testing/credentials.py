"""Credentials planted in every encoding, and the artefact scan that finds them however they are written.

:data:`CREDENTIAL_ENCODINGS` is the list of ways a platform may hand a credential back (issue 19:
hex, base64 of a blob holding it at any offset, a JWT payload, a Basic blob, one JSON-escaped
character, URL escapes). Tests plant each one; ``make faults`` tries each one.

:func:`leaked_credentials` is the scan of an artefact. It is written apart from
:mod:`vyxops.core.redaction` on purpose, so a bug there cannot hide a leak here: it unescapes JSON and
URL escapes, decodes every base64/base64url/hex run at every alignment (and what those decode to,
once more), and reads a Parquet file's cells rather than its compressed bytes.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

__all__ = ["CREDENTIAL_ENCODINGS", "encode_credential", "leaked_credentials", "artefact_text"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _blob(offset: int) -> Callable[[str], str]:
    """Base64 of a JSON blob holding the credential at byte ``offset`` (mod 3) of its encoding."""

    def encode(value: str) -> str:
        head = '{"user":"ops","note":"' + "x" * offset + '","token":"'
        head = head + " " * ((offset - len(head)) % 3)  # the credential starts at `offset` mod 3
        return _b64((head + value + '","exp":1767225600}').encode())

    return encode


def _jwt(value: str) -> str:
    header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    payload = _b64url(json.dumps({"sub": "ops", "token": value}).encode())
    return f"{header}.{payload}.{_b64url(b'not-a-real-signature-0123456789')}"


def _json_escaped(value: str) -> str:
    """One character written as a JSON \\u escape (the first letter: ``f`` of ``fm2_`` is ``\\u0066``)."""
    i = next((i for i, ch in enumerate(value) if ch.isalpha()), 0)
    return value[:i] + f"\\u{ord(value[i]):04x}" + value[i + 1 :]


def _url(value: str) -> str:
    """URL-encoded, its first character escaped too (a hex token has nothing else to escape)."""
    return f"%{ord(value[0]):02X}" + quote(value[1:], safe="")


#: name -> how a credential is written that way. Exposed for ``make faults`` (each credential encoding).
CREDENTIAL_ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda v: v,
    "hex": lambda v: v.encode().hex(),
    "base64": lambda v: _b64(v.encode()),
    "base64url": lambda v: _b64url(v.encode()),
    "blob-offset-0": _blob(0),
    "blob-offset-1": _blob(1),
    "blob-offset-2": _blob(2),
    "jwt": _jwt,
    "jwt-payload": lambda v: _jwt(v).split(".")[1],
    "basic": lambda v: "Basic " + _b64(f"x:{v}".encode()),
    "json-escaped": _json_escaped,
    "url": _url,
}


def encode_credential(value: str, encoding: str) -> str:
    """``value`` written in ``encoding`` (a key of :data:`CREDENTIAL_ENCODINGS`)."""
    return CREDENTIAL_ENCODINGS[encoding](value)


# ---------------------------------------------------------------------------------------------- the scan

_SHAPE = re.compile(
    rb"(sbp_[0-9A-Za-z]{16,}"  # Supabase access token
    rb"|fm[12][ra]?_[A-Za-z0-9+/=_\-]{16,}|FlyV1 [A-Za-z0-9]"  # Fly tokens
    rb"|sb_secret_[A-Za-z0-9]{16,}|sb_publishable_[A-Za-z0-9]{16,}"  # Supabase API keys
    rb"|eyJhbGciOi[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{20,})"  # a JWT (legacy API keys)
)
_RUN = re.compile(rb"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{11,}={0,2}")
_HEX = re.compile(rb"[0-9A-Fa-f]{16,}")
_JSON_ESCAPE = re.compile(rb"\\u([0-9A-Fa-f]{4})|\\/")
_TEXT = re.compile(rb"[\x20-\x7e]{8}")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def _json_unescape(data: bytes) -> bytes:
    return _JSON_ESCAPE.sub(lambda m: chr(int(m[1], 16)).encode("utf-8", "replace") if m[1] else b"/", data)


def _decoded_runs(data: bytes) -> Iterable[bytes]:
    for run in set(_RUN.findall(data)):
        b64 = run.rstrip(b"=").translate(_TO_STANDARD)
        for skip in range(4):
            part = b64[skip:]
            part = part[:-1] if len(part) % 4 == 1 else part
            try:
                yield binascii.a2b_base64(part + b"=" * (-len(part) % 4))
            except binascii.Error:
                pass
        for h in _HEX.findall(run):
            for start in (0, 1):
                body = h[start:]
                yield bytes.fromhex(body[: len(body) // 2 * 2].decode())


def _views(data: bytes, depth: int = 2) -> Iterable[bytes]:
    """``data``, unescaped, and decoded (to ``depth`` levels)."""
    yield data
    if b"\\" in data or b"%" in data:
        unescaped = _json_unescape(data)
        for text in {unescaped, unquote_to_bytes(unescaped), unquote_to_bytes(unescaped.replace(b"+", b" "))}:
            if text != data:
                yield text
    if depth:
        for decoded in _decoded_runs(data):
            if _TEXT.search(decoded):  # a credential is 8 printable bytes at least; most runs decode to noise
                yield from _views(decoded, depth - 1)


def leaked_credentials(data: bytes, credentials: Iterable[bytes]) -> bool:
    """Whether ``data`` holds any of ``credentials`` or a token shape, as is, escaped or encoded."""
    groups = _by_prefix(tuple(sorted(set(credentials))))
    return any(_view_holds(view, groups) for view in _views(data))


def _view_holds(view: bytes, groups: dict[bytes, tuple[bytes, ...]]) -> bool:
    if _SHAPE.search(view):
        return True
    return any(prefix in view and any(c in view for c in creds) for prefix, creds in groups.items())


@functools.lru_cache(maxsize=8)
def _by_prefix(credentials: tuple[bytes, ...]) -> dict[bytes, tuple[bytes, ...]]:
    """The credentials grouped by their first 3 bytes: a view is searched for a group's credentials only
    when it holds their prefix (hundreds of credentials, a dozen prefixes)."""
    groups: dict[bytes, list[bytes]] = {}
    for c in credentials:
        groups.setdefault(c[:3], []).append(c)
    return {prefix: tuple(cs) for prefix, cs in groups.items()}


def artefact_text(path: Path) -> bytes:
    """What a person or program reads of an artefact: a Parquet file's cells, else the file's bytes."""
    if path.suffix != ".parquet":
        return path.read_bytes()
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception:  # not a readable Parquet file: scan its bytes
        return path.read_bytes()
    cells = "\n".join(str(v) for column in table.to_pydict().values() for v in column)
    return path.read_bytes() + b"\n" + cells.encode("utf-8", "replace")

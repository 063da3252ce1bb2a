"""Redaction by decoding: credentials are masked however they are written, not in a list of forms.

A credential is registered once (:func:`register_secret`); :func:`redact` then masks

- the credential as is, and every token shape of both platforms (``_TOKEN_RE``);
- any run of base64, base64url (padded or not) or hex whose decoded bytes hold a credential
  or a token shape, wherever in the blob it sits (a JWT payload, a Basic ``x:token`` blob, a
  JSON document): the whole run is masked, not only the credential's part of it;
- any run written with JSON escapes (``\\u0066``, ``\\/``) or URL escapes (``%66``, ``+``)
  that holds one once unescaped: the whole escaped run is masked.

Decoded text is searched again (to :data:`MAX_DEPTH` levels), so base64 of hex of a token, or
a JWT whose payload holds a JSON-escaped one, are found too. A bundle replayed without its
credentials registers their SHA-256 digests (:func:`register_secret_digest`): a run that
holds a string with one of those digests is masked as if the credential were registered.

The common case stays cheap: one compiled regex finds candidate runs no shorter than the
shortest credential's encoding, and a run's verdict is cached (log lines repeat their ids).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from functools import lru_cache
from urllib.parse import parse_qs, quote, quote_plus, unquote, urlsplit

__all__ = [
    "MASK",
    "TOKEN_PATTERN",
    "MAX_DEPTH",
    "register_secret",
    "register_secret_digest",
    "register_db_url",
    "db_url_password",
    "registered_secrets",
    "registered_values",
    "secret_digest",
    "secret_forms",
    "may_hold_secret",
    "holds_secret",
    "redact",
]

MASK = "[REDACTED]"
#: How many times decoded or unescaped text is searched again (base64 of hex of a token is two).
MAX_DEPTH = 3

# Token shapes of both platforms (and a JWT); the sandbox's own tokens share them.
_TOKEN_RE = re.compile(
    r"(sbp_[0-9A-Za-z]{16,}"
    r"|fm[12][ra]?_[A-Za-z0-9+/=_\-,]{16,}"
    r"|FlyV1 [A-Za-z0-9+/=_\-,]+"
    r"|sb_(?:secret|publishable)_[A-Za-z0-9_\-]{16,}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"
    r"|(?i:bearer) [A-Za-z0-9+/=_\-.,]{8,})"
)
TOKEN_PATTERN = _TOKEN_RE.pattern
# A literal every branch of _TOKEN_RE must contain (its "bearer" in any case, checked apart).
_TOKEN_MARKERS = ("sbp_", "fm1", "fm2", "FlyV1 ", "sb_", "eyJ")
#: The shortest token shape, in bytes ("FlyV1 " and 8 more is the shortest worth decoding for).
_SHAPE_BYTES = 12
_MIN_SECRET = 8

# Registered credentials (as given), their literal forms, and digests of credentials not known here.
_values: set[str] = set()
_forms: set[str] = set()
_digests: dict[int, set[str]] = {}  # length in characters -> sha256 hex digests
# Sessions may open while other threads fetch and redact (vyxops.fetch.fanout): the sets are only
# changed and copied under this lock, so no reader iterates them while they grow.
_lock = threading.Lock()
_generation = 0  # bumped on every change: keys the cache of run verdicts


def register_secret(value: str | None) -> None:
    """Remember a credential so that :func:`redact` masks it wherever and however it appears."""
    global _generation
    if value and len(value) >= _MIN_SECRET:
        forms = {f for f in secret_forms(value) if len(f) >= _MIN_SECRET}
        with _lock:
            if value in _values:
                return
            _values.add(value)
            _forms.update(forms)
            _generation += 1


def db_url_password(url: str) -> str | None:
    """The password a libpq connection string holds, or None: ``postgresql://user:PASSWORD@host/db`` (also
    ``postgres://``, and ``?password=`` in its query) or the keyword form's ``password=…`` (quoted or not).
    Read without libpq, so that a string libpq refuses is masked all the same."""
    text = url.strip()
    if "://" in text:
        try:
            parts = urlsplit(text)
            secret = parts.password
            query = parse_qs(parts.query).get("password")
        except ValueError:  # e.g. an unbalanced [ in the host: the userinfo is still before the last @
            head = text.split("://", 1)[1].rsplit("@", 1)
            secret, query = (head[0].split(":", 1)[1] if len(head) == 2 and ":" in head[0] else None), None
        if query:
            return query[-1]
        return unquote(secret) if secret else None
    found = re.search(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", text)
    if found is None:
        return None
    value = found[1]
    return re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith("'") else value


def register_db_url(url: str | None) -> None:
    """Register the password of a database URL (``SUPABASE_DB_URL``, ``--db-url``) as a credential: as given
    and as the URL writes it (percent-encoded), so :func:`redact` masks it in either form."""
    secret = db_url_password(url or "")
    if secret:
        register_secret(secret)
        register_secret(quote(secret, safe=""))


def secret_digest(value: str) -> str:
    """The SHA-256 (hex) a bundle keeps of a credential instead of the credential."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def register_secret_digest(digest: str, length: int) -> None:
    """Mask any string of ``length`` characters whose :func:`secret_digest` is ``digest``
    (a bundle's credentials, replayed where the credentials themselves are not known)."""
    global _generation
    if length >= _MIN_SECRET and re.fullmatch(r"[0-9a-f]{64}", digest):
        with _lock:
            _digests.setdefault(length, set()).add(digest)
            _generation += 1


def secret_forms(value: str) -> set[str]:
    """Literal ways a credential may be written: as is, base64 in both alphabets with or without
    padding, URL-encoded. :func:`redact` finds every other encoding by decoding."""
    raw = value.encode("utf-8", "surrogatepass")
    forms = {value, quote(value, safe=""), quote_plus(value)}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        b64 = encode(raw).decode("ascii")
        forms |= {b64, b64.rstrip("=")}
    return forms


def registered_secrets() -> frozenset[str]:
    """Every literal credential form :func:`redact` masks."""
    with _lock:
        return frozenset(_forms)


def registered_values() -> frozenset[str]:
    """The credentials registered, as given (what a bundle keeps the digests of)."""
    with _lock:
        return frozenset(_values)


class _Known:
    """A snapshot of what is registered, with what the scans need precomputed."""

    def __init__(self) -> None:
        with _lock:
            self.generation = _generation
            self.values = tuple(sorted(_values, key=len, reverse=True))
            self.forms = tuple(sorted(_forms, key=len, reverse=True))
            self.digests = {n: frozenset(d) for n, d in _digests.items()}
        self.value_bytes = tuple(v.encode("utf-8", "surrogatepass") for v in self.values)
        shortest = min([len(b) for b in self.value_bytes] + list(self.digests) + [_SHAPE_BYTES])
        # A run that encodes `shortest` bytes has at least this many characters.
        self.run = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{%d,}={0,2}" % max(4 * shortest // 3, 8))
        self.hex = re.compile(r"[0-9A-Fa-f]{%d,}" % (2 * shortest))
        low = min(self.digests, default=0)
        self.digest_run = re.compile(r"(?<![A-Za-z0-9+/=_\-,.:~])[A-Za-z0-9+/=_\-,.:~]{%d,}" % low) if low else None


_known_cache: list[_Known] = []


def _known() -> _Known:
    if not _known_cache or _known_cache[0].generation != _generation:
        _known_cache[:] = [_Known()]
    return _known_cache[0]


# ---------------------------------------------------------------------------------------------- search


def _holds_literal(text: str, known: _Known) -> bool:
    """A credential, a token shape, or a string with a registered digest, as is in ``text``."""
    if any(v in text for v in known.values) or (_has_marker(text) and _TOKEN_RE.search(text)):
        return True
    return known.digest_run is not None and any(
        _run_has_digest(run, known.generation) for run in set(known.digest_run.findall(text))
    )


def _has_marker(text: str) -> bool:
    """False only when no branch of ``_TOKEN_RE`` can match ``text`` (a literal scan, C speed)."""
    return any(marker in text for marker in _TOKEN_MARKERS) or "bearer" in text.lower()


def _runs_hold(text: str, known: _Known, depth: int) -> bool:
    """Whether a base64/hex run of ``text`` decodes to a credential (each distinct run decoded once)."""
    return any(_run_holds(run, known.generation, depth) for run in set(known.run.findall(text)))


@lru_cache(maxsize=1 << 16)
def _run_has_digest(run: str, generation: int) -> bool:
    """Whether a window of ``run`` starting at its start or after a separator has a registered digest."""
    known = _known()
    starts = [0] + [i + 1 for i, ch in enumerate(run) if not ch.isalnum()]
    for length, digests in known.digests.items():
        for s in starts:
            if s + length <= len(run) and secret_digest(run[s : s + length]) in digests:
                return True
    return False


def _text_holds(text: str, known: _Known, depth: int) -> bool:
    """Whether ``text`` holds a credential as is, escaped or encoded (searched to MAX_DEPTH)."""
    if _holds_literal(text, known):
        return True
    if depth >= MAX_DEPTH:
        return False
    return _escapes_hold(text, known, depth + 1) or _runs_hold(text, known, depth + 1)


def _bytes_hold(data: bytes, known: _Known, depth: int) -> bool:
    if any(v in data for v in known.value_bytes):
        return True
    text = data.decode("latin-1")
    if _holds_literal(text, known):
        return True
    # Searched again (for an encoding inside the encoding) only when the bytes are text: 9 in 10 printable.
    # Most runs of an ordinary text, and an image's base64, decode to binary noise.
    return len(data.translate(None, _PRINTABLE)) * 10 <= len(data) and _text_holds(text, known, depth)


@lru_cache(maxsize=1 << 16)
def _run_holds(run: str, generation: int, depth: int) -> bool:
    """Whether a base64/base64url/hex run decodes (at any alignment) to bytes holding a credential."""
    known = _known()
    return any(_bytes_hold(data, known, depth) for data in _decodings(run, known))


def _decodings(run: str, known: _Known) -> list[bytes]:
    """``run`` decoded as base64 (either alphabet) at each of the 4 alignments, and each of its hex runs
    at both parities: a blob's run may start with characters that are not part of the blob."""
    out = []
    b64 = run.rstrip("=").translate(_URLSAFE)
    for skip in range(4):
        part = b64[skip:]
        part = part[: len(part) - 1] if len(part) % 4 == 1 else part
        try:
            out.append(binascii.a2b_base64(part + "=" * (-len(part) % 4)))
        except binascii.Error:
            continue
    for m in known.hex.finditer(run):
        h = m[0]
        out.append(bytes.fromhex(h[: len(h) // 2 * 2]))
        if len(h) > 2:
            out.append(bytes.fromhex(h[1 : 1 + (len(h) - 1) // 2 * 2]))
    return out


_URLSAFE = str.maketrans("-_", "+/")
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\t\n\r"

# ---------------------------------------------------------------------------------------------- escapes

_ESCAPE = re.compile(r"\\u[0-9A-Fa-f]{4}|\\/|%[0-9A-Fa-f]{2}")
_JSON_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\/")
_ESCAPED_CHAR = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-.,~:")
_RUN_RIGHT = re.compile(r"(?:[A-Za-z0-9+/=_\-.,~:]|\\u[0-9A-Fa-f]{4}|\\/|%[0-9A-Fa-f]{2})*")
_LEFT_LIMIT = 4096


def _unescapes(text: str) -> list[str]:
    """``text`` with JSON and URL escapes undone (repeatedly: ``%255C`` is ``%5C`` is ``\\``), and
    with ``+`` read as a space too (form encoding)."""
    for _ in range(MAX_DEPTH):
        undone = unquote(_JSON_ESCAPE.sub(_json_char, text), errors="surrogateescape")
        if undone == text:
            break
        text = undone
    return [text, text.replace("+", " ")] if "+" in text else [text]


def _json_char(m: re.Match[str]) -> str:
    return chr(int(m[1], 16)) if m[1] else "/"


def _unescaped_holds(text: str, known: _Known, depth: int) -> bool:
    return _holds_literal(text, known) or (depth < MAX_DEPTH and _runs_hold(text, known, depth + 1))


def _escaped_spans(text: str) -> list[tuple[int, int]]:
    """The token-like runs of ``text`` that hold a JSON or URL escape."""
    spans: list[tuple[int, int]] = []
    end = 0
    for m in _ESCAPE.finditer(text):
        if m.start() < end:
            continue
        left = m.start()
        while left > 0 and m.start() - left < _LEFT_LIMIT and text[left - 1] in _ESCAPED_CHAR:
            left -= 1
        right = _RUN_RIGHT.match(text, m.start())
        end = right.end() if right else m.end()
        spans.append((left, end))
    return spans


def _escapes_hold(text: str, known: _Known, depth: int) -> bool:
    """Whether a token-like run of ``text`` written with escapes holds a credential once unescaped."""
    if "\\" not in text and "%" not in text:
        return False
    return any(_unescaped_holds(t, known, depth) for s, e in _escaped_spans(text) for t in _unescapes(text[s:e]))


def _mask_escaped(text: str, known: _Known) -> str:
    if "\\" not in text and "%" not in text:
        return text
    pieces, last = [], 0
    for start, end in _escaped_spans(text):
        if any(_unescaped_holds(t, known, 1) for t in _unescapes(text[start:end])):
            pieces += [text[last:start], MASK]
            last = end
    return "".join([*pieces, text[last:]]) if pieces else text


# ---------------------------------------------------------------------------------------------- API


def may_hold_secret(text: str) -> bool:
    """False only when ``text`` holds no token shape nor registered credential form as is: a scan for
    literals (C speed). Encoded and escaped forms need :func:`holds_secret`."""
    return _has_marker(text) or any(secret in text for secret in registered_secrets())


def holds_secret(text: str) -> bool:
    """Whether :func:`redact` would mask anything in ``text``."""
    known = _known()
    if any(form in text for form in known.forms) or _holds_literal(text, known):
        return True
    return _escapes_hold(text, known, 1) or _runs_hold(text, known, 1)


def redact(text: str) -> str:
    """Return ``text`` with every credential masked: as is, token-shaped, escaped or encoded."""
    if not text:
        return text
    known = _known()
    text = _mask_escaped(text, known)
    if _runs_hold(text, known, 1):
        text = known.run.sub(lambda m: MASK if _run_holds(m[0], known.generation, 1) else m[0], text)
    for form in known.forms:
        if form in text:
            text = text.replace(form, MASK)
    if _has_marker(text):
        text = _TOKEN_RE.sub(MASK, text)
    if known.digest_run is not None:
        text = known.digest_run.sub(lambda m: MASK if _run_has_digest(m[0], known.generation) else m[0], text)
    return text

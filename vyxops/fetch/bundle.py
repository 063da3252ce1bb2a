"""Evidence bundles: HTTP exchanges captured from a target, replayed offline.

A bundle is a directory holding ``bundle.json`` (what was captured, from which
target, at what time) and ``exchanges.jsonl`` (one request → response per line).
Replaying it is a transport, like the sandbox: nothing above HTTP knows. Capturing is
:mod:`vyxops.fetch.recording`'s transport, which redacts what it keeps.
``bundle.json`` keeps the SHA-256 of each credential the capture ran with (never the value):
replaying registers them, so a credential a bundle still holds in a form capture missed
(a bundle from an older vyxops) is masked where the replay runs without any credentials.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from vyxops.core.errors import InputError
from vyxops.core.redaction import register_secret_digest, registered_values, secret_digest
from vyxops.core.timeutil import parse_rfc3339_ms
from vyxops.fetch.recording import RecordingTransport, exchange_key
from vyxops.fetch.targets import Credentials, Opened, OpenRequest

if TYPE_CHECKING:
    from vyxops.core.function_auth import FunctionBearer

BUNDLE_SCHEMA = "vyxops.fetch.bundle/1"
#: The bundle meta key that records the bearer the capture sent Edge Functions (vyxops.core.function_auth).
FUNCTION_BEARER_KEY = "function_bearer"


def forbidden_digests() -> list[dict[str, object]]:
    """What ``bundle.json`` keeps of the credentials the capture ran with: each one's SHA-256 and length.
    The credentials are high-entropy tokens, so a digest does not give them away."""
    return [{"sha256": secret_digest(v), "length": len(v)} for v in sorted(registered_values())]


def register_forbidden(meta: dict[str, Any]) -> None:
    """Register a bundle's credential digests with the redaction, so a replay masks those credentials."""
    entries = meta.get("forbidden")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("length"), int):
            register_secret_digest(entry["sha256"], entry["length"])


#: The declared pipeline contract the evidence was read with, kept beside it: a replay reads the same table and
#: function (a discovered one is discovered again on replay, from the same recorded answers).
CONTRACT_FILE = "contract.toml"
#: ``Opened.handles`` key naming a bundle's contract file, when it has one.
CONTRACT_HANDLE = "bundle.contract"


def write_bundle(path: Path, recorder: RecordingTransport, meta: dict[str, Any]) -> Path:
    """Write the recorded exchanges and ``meta`` (target, app, captured_at, now) to ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # Requests go out side by side (vyxops.fetch.fanout), so they are recorded in whatever order
    # they were answered; written sorted by key, a bundle does not depend on it. The sort is
    # stable: answers to one key (a retried request) keep the order they came in.
    with (path / "exchanges.jsonl").open("w", encoding="utf-8") as fh:
        for ex in sorted(recorder.exchanges, key=lambda ex: str(ex["key"])):
            fh.write(json.dumps(ex, sort_keys=True) + "\n")
    (path / "bundle.json").write_text(
        json.dumps(
            {"schema": BUNDLE_SCHEMA, **meta, "exchanges": len(recorder.exchanges), "forbidden": forbidden_digests()},
            indent=1,
            sort_keys=True,
        )
    )
    return path


def read_bundle_meta(path: Path) -> dict[str, Any]:
    """The bundle's ``bundle.json``; an InputError names the path when it is not a bundle."""
    meta_path = Path(path) / "bundle.json"
    if not meta_path.is_file():
        raise InputError(
            "--target",
            f"no evidence bundle at {path} (bundle.json missing)",
            allowed="bundle:PATH of a directory written by `vyxops capture`",
        )
    try:
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _not_a_bundle(meta_path, f"not JSON ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("schema") != BUNDLE_SCHEMA:
        raise InputError("--target", f"{path} is not a {BUNDLE_SCHEMA} bundle", hint=_BUNDLE_HINT)
    for key in _META_KEYS:
        if not isinstance(meta.get(key), str) or not meta[key]:
            raise _not_a_bundle(meta_path, f"{key} is {meta.get(key)!r}, not a string")
    for key in ("now", "since", "until"):
        if key != "now" and key not in meta:
            continue
        try:
            parse_rfc3339_ms(meta[key])
        except (ValueError, TypeError, OverflowError, AttributeError):
            raise _not_a_bundle(meta_path, f"{key} is {str(meta[key])[:40]!r}, not an RFC 3339 time") from None
    return meta


_BUNDLE_HINT = "capture it again with `vyxops capture --app APP --out DIR`"
#: What replaying reads from bundle.json (``app``, ``captured_from``, ``org`` and the window are optional).
_META_KEYS = ("project_ref", "now")


def _not_a_bundle(path: Path, problem: str) -> InputError:
    return InputError("--target", f"{path} is not a bundle's metadata: {problem}", hint=_BUNDLE_HINT)


def read_exchanges(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The bundle's ``exchanges.jsonl`` by key, each line checked; an InputError names the file and line."""
    file = Path(path) / "exchanges.jsonl"
    answers: dict[str, list[dict[str, Any]]] = {}
    try:
        lines = file.read_bytes().decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("--target", f"{file} cannot be read ({type(exc).__name__})", hint=_BUNDLE_HINT) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        problem, ex = _exchange(line)
        if problem:
            raise InputError("--target", f"{file}:{number}: not an exchange: {problem}", hint=_BUNDLE_HINT)
        answers.setdefault(ex["key"], []).append(ex)
    return answers


def names_machine(answers: dict[str, list[dict[str, Any]]], app: str, machine_id: str) -> bool:
    """Whether any answer the bundle holds about ``app``'s machines, or any table read, names ``machine_id``.

    A replay answers only what was captured, so a machine named by none of them is one the investigation
    cannot know (:func:`vyxops.core.checks.check_machine_of_app` refuses it in the kernel): the CLI refuses it
    before a kernel starts. The machines' own reads and the rows' (any table: the contract is found later).
    """
    needle = json.dumps(machine_id).encode()
    for key, exchanges in answers.items():
        path = json.loads(key)[1]
        if not (path.startswith(f"/v1/apps/{app}/machines") or path.startswith("/rest/v1/")):
            continue
        for ex in exchanges:
            if 200 <= ex["status"] < 300 and needle in base64.b64decode(ex["body_b64"]):
                return True
    return False


def _exchange(line: str) -> tuple[str | None, dict[str, Any]]:
    """One line of exchanges.jsonl and what is wrong with it (None when it is an exchange)."""
    try:
        ex = json.loads(line)
    except ValueError:
        return "not JSON", {}
    if not isinstance(ex, dict):
        return "not an object", {}
    if not isinstance(ex.get("key"), str) or not isinstance(ex.get("body_b64"), str):
        return "key and body_b64 must be strings", ex
    status = ex.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return f"status {status!r} is not an HTTP status", ex
    headers = ex.get("headers")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return "headers must be an object of strings", ex
    try:
        base64.b64decode(ex["body_b64"], validate=True)
    except ValueError:
        return "body_b64 is not base64", ex
    return None, ex


class ReplayTransport(httpx.BaseTransport):
    """Answers requests from a bundle; a request it never saw gets a 404 saying so."""

    def __init__(self, path: Path) -> None:
        read_bundle_meta(path)
        self.answers = read_exchanges(path)
        self.used: dict[str, int] = {}
        self.lock = threading.Lock()  # concurrent requests of one key take its answers in turn

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        key = exchange_key(request)
        answers = self.answers.get(key) or self.answers.get(_head_of(key, request))
        if not answers:
            return httpx.Response(404, json={"error": "not in the evidence bundle", "request": key}, request=request)
        with self.lock:
            i = self.used.get(key, 0)
            self.used[key] = i + 1
        ex = answers[min(i, len(answers) - 1)]  # the last answer repeats
        return httpx.Response(
            ex["status"], headers=ex["headers"], content=base64.b64decode(ex["body_b64"]), request=request
        )


def _head_of(key: str, request: httpx.Request) -> str:
    """The key a manifest's GET had as a HEAD: a bundle captured when a manifest was checked with a HEAD answers
    the GET with the HEAD's status and headers (no body: the GET of a 404 was captured too, with its body)."""
    if request.method != "GET" or "/manifests/" not in request.url.path:
        return ""
    method, *rest = json.loads(key)
    return json.dumps(["HEAD", *rest])


class FixedClock:
    """A bundle's clock: its capture time, moved only by sleeps."""

    def __init__(self, start_s: float) -> None:
        self.t = start_s

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


def open_bundle(request: OpenRequest) -> Opened:
    """The ``bundle`` opener: answers from the bundle, its capture time as the clock."""
    import pandas as pd

    path = Path(request.target.path or "")
    meta = read_bundle_meta(path)
    register_forbidden(meta)
    ref = meta["project_ref"]
    no_credentials = "bundle-replay-no-credentials"
    return Opened(
        opener="bundle",
        label=f"bundle:{path}",
        description=(
            f"bundle: evidence captured from {meta.get('captured_from', '?')} at {meta['now']}, replayed from {path}"
        ),
        credentials=Credentials(no_credentials, no_credentials, no_credentials, ref),
        clock=FixedClock(pd.Timestamp(meta["now"]).timestamp()),
        supabase_url=f"https://{ref}.supabase.co",
        transport=ReplayTransport(path),
        handles={CONTRACT_HANDLE: path / CONTRACT_FILE} if (path / CONTRACT_FILE).is_file() else {},
        org=meta.get("org", "personal"),
        function_bearer=_recorded_bearer(meta),
    )


def _recorded_bearer(meta: dict[str, Any]) -> FunctionBearer:
    """The bearer the capture sent Edge Functions (so a replay plans VERIFY as the capture did), else unknown."""
    value = meta.get(FUNCTION_BEARER_KEY)
    for bearer in ("function_jwt", "service_jwt", "none"):
        if value == bearer:
            return bearer
    return "unknown"

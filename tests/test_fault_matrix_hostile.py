"""The fault matrix, hostile slice (issue 19): what a socket-level proxy, a dying kernel and a hostile input do.

Every case runs the real ``vyxops`` command in a process of its own. The network cases use
``--target live`` with the base-URL variables pointed at a proxy on 127.0.0.1
(tests/loopback_proxy.py) in front of the seed world served in this process; the proxy resets,
truncates, hangs, or rewrites an answer. A case *holds* when the product does what issue 19
demands, and is *wrong* otherwise; the classes:

- **wrong shape**: every read answered with JSON of the wrong shape or empty (``{}``, ``null``,
  ``[]`` where an object is expected, an object where a list is). Right: a typed exit 3 with one
  ``vyxops:`` line, or the seed's own root cause with a new gap; on an optional source (Fly logs,
  function logs) a gap only. Never "empty" (exit 0 with no gap), a wrong root, or a traceback.
- **transport**: a socket reset and a body cut short, on the first attempt or on every one. Right:
  recovered (the seed's root), or a gap, or a typed exit 3.
- **hang**: the proxy reads the request and never answers. Right: as for transport, within a bound.
  The product's read timeout is 30 s (``vyxops.fetch.http.make_client``) and no setting shortens it, so
  the bound is the retries' worth of timeouts (``RetryPolicy().max_attempts`` x 30 s plus backoff).
- **hostile text**: a lone surrogate (as the JSON escape ``\\ud800``), ANSI, OSC-8, CR, U+202E,
  Markdown links and images and a path traversal, put in one field of one answer. Right: the run goes
  on (text is data, an invalid image reference is a gap), no control character reaches the terminal,
  ``postmortem.md`` keeps no live Markdown link, no request path carries ``..``, an audit writes
  ``audit.json`` with every good app in it.
- **credential**: a credential the run was given, planted in a text field in one encoding (raw,
  hex, base64 at each offset, base64url, a JWT payload, a Basic blob, one JSON escape, URL
  encoding). Right: no artefact (the ``--out`` folder, stdout, stderr, the audit log) holds it in the
  planted form, raw, or token-shaped (tests/conftest.py's scan).
- **kernel death**: the notebook kernel killed (SIGKILL, as an OOM kill) during ``investigate`` and
  ``remediate --apply``, and Ctrl-C during an apply. Right: the CLI exits within seconds, with a
  ``vyxops:`` line and no traceback; after an apply, the lock is free and the message says to rerun.
- **yaml bomb**: a 340-byte, 9-level alias bomb as the scenario file. Right: exit 2 within 2 s,
  nothing written.

``python tests/test_fault_matrix_hostile.py`` runs every case (``make faults``) and prints the
class | tried | held | wrong table and each wrong case with what was seen; it exits 1 if any is
wrong. Under pytest, a small sample (``QUICK``) runs.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conftest import find_leaks  # noqa: E402
from loopback_proxy import JsonValue, Proxy, Rule  # noqa: E402

from vyxops.fetch.http import RetryPolicy  # noqa: E402
from vyxops_sandbox.server import make_server  # noqa: E402
from vyxops_sandbox.world import World  # noqa: E402

VYXOPS = str(Path(sys.executable).parent / "vyxops")
APP = "vyx-app"
SCENARIO = "stub-image"
ROOT = "SECRET_IMAGE_NOT_CURRENT_RELEASE"
WINDOW = ["--since", "2025-10-02T00:00:00Z", "--until", "2025-10-02T17:25:00Z"]
RUN_BOUND_S = 60.0  # a run that is not meant to wait on a hang
READ_TIMEOUT_S = 30.0  # vyxops.fetch.http.make_client's default; no setting changes it
_POLICY = RetryPolicy()
HANG_ALWAYS_BOUND_S = _POLICY.max_attempts * READ_TIMEOUT_S + 4 * _POLICY.max_delay
HANG_ONCE_BOUND_S = READ_TIMEOUT_S + RUN_BOUND_S
KILL_BOUND_S = 10.0  # from the kill (or Ctrl-C) to the CLI's exit
BOMB_BOUND_S = 2.0
BOMB_KILL_S = 5.0  # a bomb still loading then is killed: expanding it takes memory as well as time
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


# --------------------------------------------------------------------------- running one command


@dataclass
class Run:
    code: int | None  # None: still running at the bound, then killed
    stdout: str
    stderr: str
    seconds: float
    out: Path
    seen: list[str] = field(default_factory=list)  # request lines as they reached the proxy
    fired: int = 0

    def findings(self) -> dict[str, Any] | None:
        path = self.out / "findings.json"
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None

    def terminal(self) -> str:
        return self.stdout + self.stderr


def base_env(tmp: Path) -> dict[str, str]:
    """This environment without any target or credential variable, with this case's own folders."""
    drop = ("FLY_", "SUPABASE_", "VYXOPS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        VYXOPS_SANDBOX_DIR=str(tmp / "sandbox"),
        VYXOPS_AUDIT_LOG=str(tmp / "audit" / "audit.jsonl"),
        VYXOPS_OPERATOR="fault-matrix",
        PYTHONUNBUFFERED="1",
    )
    return env


def live_env(tmp: Path, url: str, creds: dict[str, str]) -> dict[str, str]:
    """``--target live`` pointed by its base-URL variables (README, "Targets") at ``url``."""
    env = base_env(tmp)
    env.update(
        FLY_API_TOKEN=creds["fly_api_token"],
        FLY_API_BASE_URL=url,
        FLY_FLAPS_BASE_URL=url,
        FLY_REGISTRY_HOST=url,
        SUPABASE_API_URL=url,
        SUPABASE_URL=url,
        SUPABASE_SERVICE_ROLE_KEY=creds["supabase_service_role_key"],
        SUPABASE_ACCESS_TOKEN=creds["supabase_access_token"],
        SUPABASE_PROJECT_REF=creds["project_ref"],
    )
    return env


def run_cli(args: list[str], env: dict[str, str], out: Path, bound: float) -> Run:
    start = time.monotonic()
    proc = subprocess.Popen(
        [VYXOPS, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        stdout, stderr = proc.communicate(timeout=bound)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        stdout, stderr = proc.communicate()
        code = None
    return Run(code, _text(stdout), _text(stderr), time.monotonic() - start, out)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process under it (this harness started them all)."""
    for child in descendants(pid):
        _kill(child, signal.SIGKILL)
    _kill(pid, signal.SIGKILL)


def _kill(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def descendants(pid: int) -> list[int]:
    """Every process under ``pid``, from /proc (no psutil needed)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


@contextmanager
def served_world(tmp: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """The seed world served on 127.0.0.1 in real time (as `vyxops sandbox serve`): its port and credentials."""
    world = World.load(SCENARIO, tmp / "served")
    server = make_server(world, port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), dict(world.credentials)
    finally:
        server.shutdown()
        server.server_close()


def live_run(tmp: Path, rules: list[Rule], verb: list[str], bound: float = RUN_BOUND_S) -> Run:
    """``vyxops VERB --target live`` through a proxy applying ``rules`` to the served seed world."""
    out = tmp / "out"
    with served_world(tmp) as (port, creds), Proxy(port, rules) as proxy:
        run = run_cli([*verb, "--target", "live", "--out", str(out)], live_env(tmp, proxy.url, creds), out, bound)
        run.seen, run.fired = list(proxy.seen), proxy.fired()
    return run


def investigate_live(tmp: Path, rules: list[Rule], bound: float = RUN_BOUND_S) -> Run:
    return live_run(tmp, rules, ["investigate", "--app", APP, *WINDOW], bound)


# --------------------------------------------------------------------------- judging a run


def typed(run: Run, codes: tuple[int, ...], bound: float) -> str:
    """'' when the run ended in time with one of ``codes``, no traceback and, on failure, one `vyxops:` line."""
    if run.code is None:
        return f"still running after {bound:.0f} s (killed)"
    if "Traceback (most recent call last)" in run.terminal():
        return f"exit {run.code} with a traceback: {last_line(run.stderr)}"
    if run.code not in codes:
        return f"exit {run.code} (want {'/'.join(map(str, codes))}): {last_line(run.stderr) or last_line(run.stdout)}"
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("vyxops:")]
    if run.code != 0 and len(lines) != 1:
        return f"exit {run.code} with {len(lines)} `vyxops:` lines: {last_line(run.stderr)}"
    return ""


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


_BASELINE: dict[str, Any] = {}
_BASELINE_LOCK = threading.Lock()


def baseline_gaps() -> set[str]:
    """The gaps of the seed investigation through a proxy that changes nothing (retention gaps, live)."""
    with _BASELINE_LOCK:
        if "gaps" not in _BASELINE:
            with tempfile.TemporaryDirectory() as d:
                run = investigate_live(Path(d), [])
                doc = run.findings()
                if run.code != 0 or doc is None or (doc.get("root_cause") or {}).get("code") != ROOT:
                    raise RuntimeError(f"the unfaulted seed run failed: exit {run.code}: {run.stderr[-800:]}")
                _BASELINE["gaps"] = gap_keys(doc)
        return set(_BASELINE["gaps"])


def gap_keys(doc: dict[str, Any]) -> set[str]:
    return {json.dumps(g, sort_keys=True) for g in doc.get("gaps") or []}


def judge_read_fault(run: Run, optional: bool, recoverable: bool, bound: float) -> str:
    """A faulted read: recovered (``recoverable``), a new gap, or (on a deciding source) a typed exit 3."""
    if not run.fired:
        return "the fault never fired: the case tested nothing"
    problem = typed(run, (0, 3), bound)
    if problem:
        return problem
    if run.code == 3:
        return "exit 3 on an optional source, where a gap is right" if optional else ""
    doc = run.findings()
    if doc is None:
        return "exit 0 without a readable findings.json"
    root = (doc.get("root_cause") or {}).get("code")
    if root != ROOT:
        return f"wrong diagnosis with exit 0: {root or doc.get('verdict')} (complete: {doc.get('complete')})"
    if not recoverable and not gap_keys(doc) - baseline_gaps():
        return f"read as empty: the seed's root with no new gap (complete: {doc.get('complete')})"
    return ""


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    cls: str
    name: str
    run: Callable[[Path], str]
    slow: bool = False  # waits on a real timeout: started first, beside the others


@dataclass(frozen=True)
class Read:
    method: str
    path: str
    shapes: tuple[str, ...]
    optional: bool = False


LIST_SHAPES = ("{}", "null", '{"items": []}', "[{}]")
OBJECT_SHAPES = ("[]", "null", "{}")
READS = {
    "machines list": Read("GET", r"^/v1/apps/[^/]+/machines$", LIST_SHAPES),
    "GraphQL": Read(
        "POST",
        r"^/graphql$",
        ("{}", '{"data": null}', '{"data": {"app": null}}', "[]", '{"data": {"app": {"releases": {}}}}'),
    ),
    "Fly logs": Read("GET", r"^/api/v1/apps/[^/]+/logs$", ("{}", '{"data": {}}', "[]", "null"), optional=True),
    "PostgREST rows": Read("GET", r"^/rest/v1/machines$", LIST_SHAPES),
    "PostgREST schema": Read("GET", r"^/rest/v1/$", OBJECT_SHAPES),
    "secrets": Read("GET", r"/secrets$", LIST_SHAPES),
    "functions list": Read("GET", r"/functions$", LIST_SHAPES),
    "function logs": Read("GET", r"/analytics/endpoints/logs$", ("{}", '{"result": {}}', "[]", "null"), optional=True),
    "project": Read("GET", r"^/v1/projects/[^/]+$", OBJECT_SHAPES),
    "organization": Read("GET", r"^/v1/organizations/[^/]+$", OBJECT_SHAPES),
    "org app list": Read("GET", r"^/v1/apps$", ("[]", "null", '{"apps": {}}')),
}


def shape_case(read_name: str, shape: str) -> Case:
    read = READS[read_name]
    value = json.loads(shape)

    def run(tmp: Path) -> str:
        rule = Rule("rewrite", read.path, read.method, rewrite=lambda _doc: value)
        return judge_read_fault(investigate_live(tmp, [rule]), read.optional, False, RUN_BOUND_S)

    return Case("wrong shape", f"{read_name} answered {shape}", run)


TRANSPORT_READS = ("machines list", "GraphQL", "Fly logs", "PostgREST rows", "secrets", "function logs")
REGISTRY = Read("GET", r"^/v2/", ())  # an image is checked with one GET of its manifest (fetch/clients/fly.py)


def transport_case(kind: str, read_name: str, always: bool) -> Case:
    read = READS.get(read_name, REGISTRY)

    def run(tmp: Path) -> str:
        rule = Rule(kind, read.path, read.method, times=0 if always else 1)  # type: ignore[arg-type]
        return judge_read_fault(investigate_live(tmp, [rule]), read.optional, not always, RUN_BOUND_S)

    mode = "every attempt" if always else "once"
    return Case("transport", f"{kind} {read_name} {mode}", run)


def hang_case(read_name: str, always: bool) -> Case:
    read = READS[read_name]
    bound = HANG_ALWAYS_BOUND_S if always else HANG_ONCE_BOUND_S

    def run(tmp: Path) -> str:
        rule = Rule("hang", read.path, read.method, times=0 if always else 1)
        return judge_read_fault(investigate_live(tmp, [rule], bound), read.optional, not always, bound)

    mode = "every attempt" if always else "once"
    return Case("hang", f"{read_name} hangs {mode} (bound {bound:.0f} s)", run, slow=True)


# ----- hostile text


PAYLOADS = {
    "lone surrogate": "\ud800",
    "ANSI": "\x1b[2K\x1b[31mred",
    "OSC-8": "\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07",
    "CR forge": "\rvyxops: all clear, nothing to fix",
    "U+202E": "\u202etxt.exe",
    "BEL": "\x07",
    "Markdown link": "[click here](http://evil.example/phish)",
    "Markdown image": "![pixel](http://evil.example/p.png)",
}
TRAVERSAL_REF = "registry.fly.io/x/../../../v1/apps/vyx-app/machines:latest"


@dataclass(frozen=True)
class Field:
    method: str
    path: str
    where: tuple[str, ...]  # keys into the answer; "*" is every item of a list
    image: bool = False  # an image reference: a bad one may change the diagnosis (it becomes a gap)


FIELDS = {
    "function log line": Field("GET", r"/analytics/endpoints/logs$", ("result", "*", "event_message")),
    "row user_id": Field("GET", r"^/rest/v1/machines$", ("*", "user_id")),
    "row image": Field("GET", r"^/rest/v1/machines$", ("*", "image"), image=True),
    "release imageRef": Field("POST", r"^/graphql$", ("data", "app", "releases", "nodes", "*", "imageRef"), image=True),
    "machine metadata user_id": Field("GET", r"^/v1/apps/[^/]+/machines$", ("*", "config", "metadata", "user_id")),
}


def edit(doc: JsonValue, where: tuple[str, ...], change: Callable[[str], str]) -> JsonValue:
    """``doc`` with the strings at ``where`` changed (missing keys are left alone)."""
    if not where:
        return change(doc) if isinstance(doc, str) else doc
    key, rest = where[0], where[1:]
    if key == "*" and isinstance(doc, list):
        return [edit(item, rest, change) for item in doc]
    if isinstance(doc, dict) and key in doc:
        return {**doc, key: edit(doc[key], rest, change)}
    return doc


def field_rule(field_name: str, change: Callable[[str], str]) -> Rule:
    f = FIELDS[field_name]
    return Rule("rewrite", f.path, f.method, rewrite=lambda doc: edit(doc, f.where, change))


def terminal_problem(run: Run) -> str:
    bad = CONTROL.search(run.terminal())
    if bad:
        return f"a control character reached the terminal: {bad.group(0)!r}"
    forged = [ln for ln in run.stderr.splitlines() + run.stdout.splitlines() if ln.startswith("vyxops:")]
    if len(forged) > (0 if run.code == 0 else 1):
        return f"{len(forged)} lines begin `vyxops:`: {forged[-1][:80]!r}"
    return ""


def traversal_sent(run: Run) -> str:
    for line in run.seen:
        target = line.split(" ", 1)[1].split("?")[0].lower()
        if re.search(r"(^|/)(\.\.|%2e%2e|\.%2e|%2e\.)(/|$)", target):
            return f"a request path with `..` was sent: {line[:120]}"
    return ""


def artefacts_unreadable(out: Path) -> str:
    for path in sorted(out.rglob("*")) if out.is_dir() else []:
        if path.is_file() and path.suffix in (".json", ".md", ".html", ".ipynb"):
            try:
                path.read_bytes().decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"{path.name} is not UTF-8: {exc}"
    return ""


def text_case(field_name: str, payload_name: str) -> Case:
    f = FIELDS[field_name]
    payload = TRAVERSAL_REF if payload_name == "path traversal" else PAYLOADS[payload_name]

    def change(value: str) -> str:
        return payload if payload_name == "path traversal" else value + payload

    def run(tmp: Path) -> str:
        r = investigate_live(tmp, [field_rule(field_name, change)])
        if not r.fired:
            return "the field was never answered: the case tested nothing"
        problem = typed(r, (0,), RUN_BOUND_S) or terminal_problem(r) or traversal_sent(r) or artefacts_unreadable(r.out)
        if problem:
            return problem
        doc = r.findings() or {}
        if not f.image and (doc.get("root_cause") or {}).get("code") != ROOT:
            return f"wrong diagnosis: {(doc.get('root_cause') or {}).get('code') or doc.get('verdict')}"
        postmortem = r.out / "postmortem.md"
        if payload_name.startswith("Markdown") and postmortem.is_file() and payload in postmortem.read_text("utf-8"):
            return "postmortem.md keeps the Markdown as it came: it renders as a live link or image"
        return ""

    return Case("hostile text", f"{payload_name} in {field_name}", run)


def error_body_case(payload_name: str) -> Case:
    """A 403 whose body carries the payload: exit 3 with one clean `vyxops:` line."""

    def run(tmp: Path) -> str:
        body = json.dumps({"error": "forbidden " + PAYLOADS[payload_name]}, ensure_ascii=True).encode()
        rule = Rule("status", r"^/v1/apps/[^/]+/machines$", "GET", status=403, body=body)
        r = investigate_live(tmp, [rule])
        return typed(r, (3,), RUN_BOUND_S) or terminal_problem(r)

    return Case("hostile text", f"{payload_name} in an error body", run)


def odd_app_case(name: str, label: str) -> Case:
    """An org app list holding one odd name: `audit --all` reports the good app and writes audit.json."""

    def run(tmp: Path) -> str:
        def add(doc: JsonValue) -> JsonValue:
            if not isinstance(doc, dict) or not isinstance(doc.get("apps"), list):
                return doc
            odd = {**doc["apps"][0], "id": "0dd0dd0dd0dd", "name": name}
            return {**doc, "apps": [*doc["apps"], odd], "total_apps": len(doc["apps"]) + 1}

        r = live_run(tmp, [Rule("rewrite", r"^/v1/apps$", "GET", rewrite=add)], ["audit", "--all"])
        if not r.fired:
            return "the org's app list was never read: the case tested nothing"
        problem = typed(r, (0, 1, 3), RUN_BOUND_S)
        if problem:
            return problem
        if run_bad := CONTROL.search(r.terminal()):
            return f"a control character reached the terminal: {run_bad.group(0)!r}"
        try:
            doc = json.loads((r.out / "audit.json").read_text("utf-8"))
        except (OSError, ValueError) as exc:
            return f"no readable audit.json (exit {r.code}): {type(exc).__name__}"
        apps = {a.get("app"): a for a in doc.get("apps") or []}
        if APP not in apps or apps[APP].get("error"):
            return f"the good app was not reported on its own: {apps.get(APP)}"
        return traversal_sent(r)

    return Case("hostile text", f"org app list holds {label}", run)


# ----- credentials


def encodings(token: str) -> dict[str, str]:
    """The credential as a platform's text might carry it, each encoding as planted."""
    raw = token.encode()
    b64 = base64.b64encode
    claims = base64.urlsafe_b64encode(json.dumps({"sub": "x", "tok": token}).encode()).rstrip(b"=").decode()
    escaped = token[:4] + "\\u%04x" % ord(token[4]) + token[5:]
    return {
        "raw": token,
        "hex": raw.hex(),
        "base64": b64(raw).decode(),
        "base64 at offset 1": b64(b"x" + raw + b"!").decode(),
        "base64 at offset 2": b64(b"xy" + raw + b"!").decode(),
        "base64url": base64.urlsafe_b64encode(b"\xfb\xff" + raw).decode(),
        "JWT payload": "eyJhbGciOiJIUzI1NiJ9." + claims + ".c2lnbmF0dXJlLW5vdC1yZWFs",
        "Basic blob": "Basic " + b64(b"x:" + raw).decode(),
        "JSON-escaped": escaped,
        "URL-encoded": quote(token[:3], safe="") + "%" + token[3].encode().hex().upper() + quote(token[4:], safe=""),
    }


CREDENTIAL_FOR = {"function log line": "fly_api_token", "error body": "supabase_access_token"}


def forms(planted: str, token: str) -> list[bytes]:
    """How the planted text or the credential can show in an artefact: as is, JSON-escaped, HTML-escaped."""
    out = {planted, token, json.dumps(planted)[1:-1], html.escape(planted), json.dumps(html.escape(planted))[1:-1]}
    return [s.encode() for s in out if s]


def leaks(run: Run, audit_log: Path, needles: list[bytes]) -> list[str]:
    found = []
    texts: dict[str, bytes] = {"stdout": run.stdout.encode(), "stderr": run.stderr.encode()}
    for path in [*(run.out.rglob("*") if run.out.is_dir() else []), *audit_log.parent.rglob("*")]:
        if path.is_file():
            texts[path.name] = parquet_text(path) if path.suffix == ".parquet" else path.read_bytes()
    for name, data in texts.items():
        if any(n in data for n in needles):
            found.append(name)
    with tempfile.TemporaryDirectory() as d:  # conftest's token-shape scan, over the two streams too
        for name in ("stdout", "stderr"):
            (Path(d) / f"{name}.txt").write_bytes(texts[name])
        found += [Path(p).name for p in find_leaks(Path(d)) + find_leaks(run.out) if Path(p).name not in found]
    return sorted(set(found))


def parquet_text(path: Path) -> bytes:
    import pandas as pd

    try:
        return pd.read_parquet(path).to_csv().encode("utf-8", "backslashreplace")
    except Exception:  # noqa: BLE001 - an unreadable table is scanned as its bytes
        return path.read_bytes()


def credential_case(field_name: str, encoding: str) -> Case:
    def run(tmp: Path) -> str:
        creds = dict(World.load(SCENARIO, tmp / "peek").credentials)  # the credentials every served world hands out
        token = creds[CREDENTIAL_FOR.get(field_name, "fly_api_token")]
        planted = encodings(token)[encoding]
        if field_name == "error body":
            body = json.dumps({"message": f"denied for {planted} here"}).encode()
            rule = Rule("status", r"^/v1/apps/[^/]+/machines$", "GET", status=403, body=body)
            r, codes = investigate_live(tmp, [rule]), (3,)
        else:
            r, codes = investigate_live(tmp, [field_rule(field_name, lambda v: f"{v} auth={planted} end")]), (0,)
        if not r.fired:
            return "the field was never answered: the case tested nothing"
        leaked = leaks(r, tmp / "audit" / "audit.jsonl", forms(planted, token))
        problem = typed(r, codes, RUN_BOUND_S)
        if leaked:
            return f"leaked into {', '.join(leaked)}" + (f"; {problem}" if problem else "")
        return problem

    return Case("credential", f"{encoding} in {field_name}", run)


# ----- kernel death


def sandbox_cli(tmp: Path, verb: list[str]) -> tuple[list[str], dict[str, str], Path]:
    out = tmp / "out"
    return [VYXOPS, *verb, "--scenario", SCENARIO, "--out", str(out)], base_env(tmp), out


#: Where the kernel kills itself, mid-run, per verb (vyxops_sandbox.kernel_death: a real SIGKILL of the real
#: kernel process, at a point inside the work rather than whenever a saved notebook shows a cell: the seed's
#: cells finish in a fraction of a second, so a kill timed from outside may land after the work is done).
KILL_POINTS = {
    "investigate": ("vyxops.analysis.collect:collect_evidence", {"before": 1}),
    "remediate --apply": ("vyxops.act.fixes.audit_log:AuditLog.intent", {"after": 1}),
}


def kill_case(verb_name: str, verb: list[str], how: str) -> Case:
    """Kill the kernel (it SIGKILLs itself at a point mid-run) or press Ctrl-C (SIGINT to the CLI) once it runs."""

    def run(tmp: Path) -> str:
        from vyxops_sandbox.kernel_death import kernel_death_env

        cmd, env, out = sandbox_cli(tmp, verb)
        if how == "kernel SIGKILL":
            target, when = KILL_POINTS[verb_name]
            env = {**env, **kernel_death_env(tmp / "kill", target, **when)}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        kernel = wait_for_kernel(proc.pid, proc, deadline=time.monotonic() + 60)
        if kernel is None and how != "kernel SIGKILL":
            stdout, stderr = proc.communicate()
            return f"no kernel was seen (exit {proc.returncode}): {last_line(stderr)}"
        if how != "kernel SIGKILL":
            wait_for_a_cell(out / f"{verb[0]}.ipynb", proc, deadline=time.monotonic() + 30)
            _kill(proc.pid, signal.SIGINT)
        killed_at = time.monotonic()
        try:
            stdout, stderr = proc.communicate(timeout=KILL_BOUND_S)
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid)
            proc.communicate()
            return f"the CLI had not exited {KILL_BOUND_S:.0f} s after the {how} (killed)"
        r = Run(proc.returncode, stdout, stderr, time.monotonic() - killed_at, out)
        if "Traceback (most recent call last)" in r.terminal():
            return f"exit {r.code} with a traceback: {last_line(stderr)}"
        if r.code == 0:
            return "exit 0 after the kernel was lost"
        if how == "kernel SIGKILL" and not [ln for ln in stderr.splitlines() if ln.startswith("vyxops:")]:
            return f"exit {r.code} with no `vyxops:` line saying what happened"
        if "--apply" in verb:
            return apply_settled(tmp, r)
        return ""

    return Case("kernel death", f"{how} during {verb_name}", run)


def wait_for_kernel(pid: int, proc: subprocess.Popen[str], deadline: float) -> int | None:
    while time.monotonic() < deadline and proc.poll() is None:
        for child in descendants(pid):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"ipykernel" in cmdline or b"kernel" in cmdline:
                return child
        time.sleep(0.05)
    return None


def wait_for_a_cell(notebook: Path, proc: subprocess.Popen[str], deadline: float) -> None:
    """Until papermill has saved the notebook with a cell running or run: the kernel is mid-run, not booting."""
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            cells = json.loads(notebook.read_text("utf-8")).get("cells", [])
        except (OSError, ValueError):
            cells = []
        states = {(c.get("metadata", {}).get("papermill") or {}).get("status") for c in cells}
        if states & {"running", "completed"}:
            return
        time.sleep(0.02)


def apply_settled(tmp: Path, r: Run) -> str:
    """After a lost apply: the lock is free and the message says to rerun."""
    from vyxops.act.fixes.lock import acquire
    from vyxops.core.errors import VyxopsError

    try:
        acquire("sandbox", APP, audit_log=tmp / "audit" / "audit.jsonl").release()
    except VyxopsError as exc:
        return f"the app's lock is still held after the CLI exited: {exc}"
    if "rerun" not in r.stderr.lower() and "re-run" not in r.stderr.lower():
        return f"exit {r.code}, but nothing says to rerun the command to settle it: {last_line(r.stderr)}"
    return ""


# ----- YAML bomb


def yaml_bomb() -> str:
    """A 9-level alias bomb: 9**9 (387 million) strings once every alias is expanded."""
    lines = ["# 9 lv", 'a: &a ["lo","lo","lo","lo","lo","lo","lo","lo","lo"]']
    names = "abcdefghi"
    for prev, name in zip(names, names[1:]):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def bomb_case(verb_name: str, verb: list[str]) -> Case:
    def run(tmp: Path) -> str:
        bomb = tmp / "bomb.yaml"
        bomb.write_text(yaml_bomb())
        out = tmp / "out"
        args = [*verb, "--scenario", str(bomb)] + (["--out", str(out)] if verb[0] != "sandbox" else [])
        r = run_cli(args, base_env(tmp), out, bound=BOMB_KILL_S)
        if r.code is None:
            return f"still loading after {BOMB_KILL_S:.0f} s (killed)"
        problem = typed(r, (2,), BOMB_KILL_S)
        if problem:
            return problem
        if r.seconds > BOMB_BOUND_S:
            return f"exit 2, but after {r.seconds:.1f} s (bound {BOMB_BOUND_S:.0f} s)"
        written = [p.name for p in (out, tmp / "sandbox") if p.exists()]
        return f"exit 2, but {', '.join(written)} was written first" if written else ""

    return Case("yaml bomb", f"{len(yaml_bomb())}-byte alias bomb to {verb_name}", run)


# --------------------------------------------------------------------------- the matrix


def all_cases() -> list[Case]:
    cases = [shape_case(r, s) for r, read in READS.items() for s in read.shapes]
    for kind in ("reset", "truncate"):
        for read_name in (*TRANSPORT_READS, "registry"):
            cases += [transport_case(kind, read_name, always) for always in (False, True)]
    cases += [hang_case("machines list", True), hang_case("Fly logs", True), hang_case("GraphQL", False)]
    cases += [hang_case("function logs", False)]
    cases += [text_case(f, "lone surrogate") for f in FIELDS]
    cases += [text_case(f, p) for f in ("row image", "release imageRef") for p in ("ANSI", "BEL", "path traversal")]
    cases += [text_case("row image", p) for p in ("OSC-8", "CR forge", "U+202E")]
    md_fields = ("function log line", "row user_id", "machine metadata user_id")
    cases += [text_case(f, p) for f in md_fields for p in ("Markdown link", "Markdown image")]
    cases += [error_body_case(p) for p in ("lone surrogate", "ANSI", "OSC-8", "CR forge", "U+202E")]
    cases += [odd_app_case("odd\ud800app", "a lone surrogate"), odd_app_case("../../x", "a path traversal")]
    cases += [odd_app_case("bad name\x1b[31m", "ANSI and a space")]
    every = list(encodings("placeholder-token-0000"))
    cases += [credential_case("function log line", e) for e in every]
    cases += [credential_case("error body", e) for e in every]
    cases += [credential_case("row user_id", e) for e in ("hex", "base64 at offset 2", "JWT payload")]
    investigate = ["investigate", "--app", APP]
    apply = ["remediate", "--app", APP, "--apply", "--confirm", APP]
    cases += [
        kill_case("investigate", investigate, "kernel SIGKILL"),
        kill_case("remediate --apply", apply, "kernel SIGKILL"),
    ]
    cases += [kill_case("remediate --apply", apply, "Ctrl-C")]
    cases += [bomb_case("investigate", investigate), bomb_case("remediate --apply", apply)]
    cases += [bomb_case("sandbox reset", ["sandbox", "reset"])]
    return cases


def sample(cases: list[Case]) -> list[Case]:
    """What `make faults` runs on a 2-core machine: every read and field, fewer shapes and encodings per read.

    Kept: two wrong shapes per read (three for GraphQL), every-attempt transport faults (a single reset or cut
    is retried away), every hang, a surrogate in every field, every encoding in one field and four in an
    error body. ``VYXOPS_FAULT_MATRIX=full`` runs them all.
    """
    kept, per_read = [], dict.fromkeys(READS, 0)
    for c in cases:
        if c.cls == "wrong shape":
            read = c.name.split(" answered ")[0]
            per_read[read] += 1
            if per_read[read] > (3 if read == "GraphQL" else 2):
                continue
        if c.cls == "transport" and c.name.endswith(" once"):
            continue
        if c.cls == "credential" and "error body" in c.name and not c.name.startswith(SAMPLED_ENCODINGS):
            continue
        if c.cls == "credential" and "row user_id" in c.name and not c.name.startswith("JWT"):
            continue
        if c.cls in ("hostile text", "yaml bomb") and c.name in SAMPLED_OUT:
            continue
        kept.append(c)
    return kept


SAMPLED_ENCODINGS = ("hex ", "base64 at offset 1 ", "JSON-escaped ", "Basic blob ")
SAMPLED_OUT = {
    "ANSI in release imageRef",
    "BEL in row image",
    "OSC-8 in row image",
    "U+202E in row image",
    "path traversal in row image",
    "Markdown image in row user_id",
    "Markdown link in machine metadata user_id",
    "Markdown image in machine metadata user_id",
    "ANSI in an error body",
    "OSC-8 in an error body",
    "org app list holds ANSI and a space",
    f"{len(yaml_bomb())}-byte alias bomb to remediate --apply",
}


#: What pytest runs: one case of each class that runs in seconds.
QUICK = (
    "wrong shape: GraphQL answered {}",
    "wrong shape: secrets answered {}",
    "transport: reset machines list every attempt",
    "hostile text: lone surrogate in function log line",
    "credential: hex in function log line",
    "yaml bomb: 340-byte alias bomb to investigate",
)


def run_one(case: Case) -> str:
    with tempfile.TemporaryDirectory(prefix="hostile-") as d:
        try:
            return case.run(Path(d))
        except Exception as exc:  # noqa: BLE001 - a harness failure is reported, not hidden
            return f"the harness failed: {type(exc).__name__}: {exc}"


def run_all(cases: list[Case], workers: int = 2) -> list[tuple[Case, str]]:
    baseline_gaps()
    slow = [c for c in cases if c.slow]
    with ThreadPoolExecutor(max_workers=max(1, len(slow))) as waiting, ThreadPoolExecutor(workers) as busy:
        futures = [(c, waiting.submit(run_one, c)) for c in slow]
        futures += [(c, busy.submit(run_one, c)) for c in cases if not c.slow]
        return [(c, f.result()) for c, f in futures]


def table(results: list[tuple[Case, str]]) -> str:
    classes = list(dict.fromkeys(c.cls for c, _ in results))
    rows = ["| class | tried | held | wrong |", "|---|---|---|---|"]
    for cls in classes:
        mine = [p for c, p in results if c.cls == cls]
        rows.append(f"| {cls} | {len(mine)} | {sum(not p for p in mine)} | {sum(bool(p) for p in mine)} |")
    wrong = sum(bool(p) for _, p in results)
    rows.append(f"| **all** | {len(results)} | {len(results) - wrong} | {wrong} |")
    return "\n".join(rows)


def main() -> int:
    os.environ.setdefault("VYXOPS_OPERATOR", "fault-matrix")
    only = sys.argv[1:]  # substrings of case names: run just those (while working on one)
    every = all_cases()
    full = os.environ.get("VYXOPS_FAULT_MATRIX") == "full" or bool(only)
    cases = [c for c in (every if full else sample(every)) if not only or any(o in f"{c.cls}: {c.name}" for o in only)]
    names = [f"{c.cls}: {c.name}" for c in cases]
    assert len(set(names)) == len(names), "two cases share a name"
    start = time.monotonic()
    results = run_all(cases)
    print(table(results))
    how = "all of them" if full else f"sampled (tests/test_fault_matrix_hostile.py `sample`; {len(every)} with full)"
    print(f"\n{len(cases)} cases in {time.monotonic() - start:.0f} s, {how}.")
    if not full:
        print(f"left out: {', '.join(sorted(f'{c.cls}: {c.name}' for c in every if c not in cases))}")
    wrong = [(c, p) for c, p in results if p]
    if wrong:
        print("\nwrong:")
        for c, p in wrong:
            print(f"- {c.cls}: {c.name}: {p}")
    return 1 if wrong else 0


@pytest.mark.parametrize("name", QUICK)
def test_a_hostile_case_holds(name: str) -> None:
    """A sample of the hostile matrix: the product does what issue 19 demands under each class of fault."""
    case = next(c for c in all_cases() if f"{c.cls}: {c.name}" == name)
    problem = run_one(case)
    assert not problem, problem


if __name__ == "__main__":
    sys.exit(main())

"""Where a run gets its pipeline contract, and discovery of it from the platforms (SPEC.md, ``vyxops init``).

:func:`resolve_contract` takes ``--contract FILE``, else the project's declared one
(``vyxops.toml`` or ``[tool.vyxops.pipeline]``), else discovers it. Discovery reads
what the platforms say; of a function's own log lines, only what has a platform's
shape (an image reference, an environment variable's name), never their wording:

- the function: the Edge Function whose invocations frame the app's machine creations
  (or the project's only one);
- the image secret: the secret whose SHA-256 digest matches a known image reference
  (release images, machines' images, rows' images, each app's ``:latest``, references
  in the function logs); when none does, the one secret changed between the function's
  last 2xx and its first failure; else a name the function's failed requests give that
  is not among the secrets (an unset secret it needs);
- the table, its columns and status words: :mod:`vyxops.analysis.discover_table`.

Each value comes with its evidence (``Contract.evidence``), shown in the report header
and written beside each key by ``vyxops init``. Two candidates that fit equally stop
the run (:class:`~vyxops.core.contract.AmbiguousContract`, exit 2). A key nothing shows
stays unknown (empty), and the evidence says so; only the seed team's own pipeline
(its function and table found) keeps the seed's default for it.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from vyxops.analysis.discover_pg import read_tables_direct
from vyxops.analysis.discover_table import (
    Seen,
    TableShape,
    choose_table,
    order_column,
    table_contract,
    tables_of,
    user_key,
)
from vyxops.analysis.evidence import ProjectReads, latest_ref, parse_window, quietly, refs_in
from vyxops.core.contract import SEED, AmbiguousContract, Columns, Contract, Invoke, declared_contract
from vyxops.core.errors import ApiError, TransportError
from vyxops.core.images import FLY_REGISTRY, parse_image_ref, secret_digest
from vyxops.core.refusals import read_refusal
from vyxops.core.timeutil import to_utc
from vyxops.fetch import fanout, frames
from vyxops.fetch.bundle import CONTRACT_HANDLE
from vyxops.fetch.session import Session

#: Why discovery stops without a Management API, and what to do.
SELF_HOSTED_HINT = (
    "without a Management API (self-hosted Supabase) the functions and secrets cannot be listed: declare the "
    "contract (vyxops.toml's [pipeline]: function, image_secret; `vyxops init` on a copy with the API, or by hand)"
)
#: How far around an invocation a machine creation counts as its doing (the function calls Fly mid-run).
CREATE_SLACK = pd.Timedelta(seconds=2)
#: An environment variable's name, as a function's error may give one it needs (``WORKSPACE_IMAGE``).
ENV_NAME = re.compile(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")
#: Upper-case words platforms put in error bodies, which are not a function's variables.
PLATFORM_CODES = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN", "UNAUTHORIZED", "DENIED"})


def resolve_contract(
    session: Session,
    apps: list[str],
    *,
    declared: Contract | str | Path | None = None,
    project: ProjectReads | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
) -> Contract:
    """The contract a run uses: ``declared`` (a Contract, or a file: ``--contract``), else the one an evidence
    bundle was captured with, else the project's declared one, else discovered from the platforms over the
    window (every target alike)."""
    if isinstance(declared, Contract):
        return declared
    captured = session.handles.get(CONTRACT_HANDLE)
    if declared is None and isinstance(captured, Path):
        declared = captured
    found = declared_contract(declared)
    if found is not None:
        return found
    return discover(session, apps, project=project, since=since, until=until)


def discover(
    session: Session,
    apps: list[str],
    *,
    project: ProjectReads | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
) -> Contract:
    """The team's pipeline, learnt from the platforms for ``apps`` over the window (24 h by default)."""
    project = project or ProjectReads(session, apps)
    start, end = parse_window(session.now(), since, until)
    got = fanout.gather(_reads(session, project, apps, start, end))
    tables: list[TableShape] = got["tables"]
    seen = _seen(got, apps)
    chosen, why_table = choose_table(tables, seen)
    if not session.supabase.management:  # self-hosted: nothing lists the functions or the secrets
        raise AmbiguousContract("function", [], hint=SELF_HOSTED_HINT)
    function, why_function = _function(got["functions"], got["logs"], seen)
    table, status, evidence = table_contract(chosen, seen, seed_like=function == SEED.function)
    evidence["table"], evidence["function"] = why_table, why_function
    # A key no platform shows keeps the seed team's default only in the seed team's own pipeline (its function
    # and table as the seed's): another team's unknown stays unknown, never the seed's name.
    seed_like = function == SEED.function and table.columns.machine_id == SEED.columns.machine_id
    logs = got["logs"][got["logs"]["function"] == function] if not got["logs"].empty else got["logs"]
    refs = _known_refs(got, apps, chosen, table.columns)
    secret, fallback, evidence["image_secret"], evidence["image_fallback"] = _secret(
        got["secrets"], refs, logs, apps, seed_like
    )
    invoke, evidence["invoke"] = _invoke(table.columns, user_key(chosen, table.columns, seen))
    return Contract(function, secret, fallback, invoke, table, status, "discovered", tuple(evidence.items()))


def _reads(
    session: Session, project: ProjectReads, apps: list[str], start: pd.Timestamp, end: pd.Timestamp
) -> dict[str, Callable[[], Any]]:
    reads: dict[str, Callable[[], Any]] = {
        "functions": project.functions,
        "secrets": project.secrets,
        "logs": lambda: _logs(project, start, end),
        "tables": lambda: read_tables(session, project),
        "org_apps": project.org_apps,
    }
    # One app that cannot be read (not found, unreachable) is left out of discovery's evidence, not the end of
    # discovery: its own investigation reports what failed.
    for app in apps:
        reads[f"machines:{app}"] = quietly(functools.partial(project.listed, app), [])
        reads[f"releases:{app}"] = functools.partial(_releases_or_none, project, app)
    return reads


def _releases_or_none(project: ProjectReads, app: str) -> pd.DataFrame:
    """``app``'s releases, or none when they cannot be read (:func:`quietly`); the empty frame is built only then:
    one per app built ahead cost an audit as much as reading the releases."""
    got = quietly(functools.partial(project.releases, app))()
    return got if got is not None else frames.empty_frame("releases")


def _logs(project: ProjectReads, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The project's function logs over the window (their rows: discovery does not wait for the plan's retention);
    none (not an error) when the logs cannot be read."""
    try:
        return project.function_log_rows(start, end)
    except (ApiError, TransportError):
        return frames.empty_frame("function_logs")


def read_tables(session: Session, project: ProjectReads) -> list[TableShape]:
    """The tables PostgREST describes, each with its newest rows (read as soon as the description is in); the
    reads are the run's (``project``): an audit starts them while it lists the org's apps. With the database
    URL, the catalog describes them instead (columns, types, enum labels: :mod:`vyxops.analysis.discover_pg`)."""
    if session.db is not None:
        return read_tables_direct(session.db.reader(), SAMPLE_ROWS)
    tables = tables_of(project.openapi())
    rows = fanout.gather({t.name: _rows_of(project, t) for t in tables})
    for t in tables:
        t.rows = rows[t.name] or []
    return tables


#: Rows discovery reads of each table, newest first: one PostgREST page. A table with fewer is read whole, and
#: its rows serve every app's evidence (one request instead of one per app).
SAMPLE_ROWS = 1000


def _rows_of(project: ProjectReads, t: TableShape) -> Callable[[], list[dict[str, Any]] | None]:
    """The read of ``t``'s newest rows; a view the key may not read says nothing of the pipeline (no rows)."""
    column = order_column(t)
    if column is None:
        return lambda: []
    return quietly(functools.partial(project.newest_rows, t.name, column, SAMPLE_ROWS), [])


def _seen(got: dict[str, Any], apps: list[str]) -> Seen:
    machines: dict[str, dict[str, Any]] = {}
    for app in apps:
        for m in got[f"machines:{app}"] or []:
            if isinstance(m, dict) and isinstance(m.get("id"), str):
                machines[m["id"]] = m
    metadata = {}
    for mid, m in machines.items():
        given = (m.get("config") or {}).get("metadata") or {}
        metadata[mid] = {str(k): v for k, v in given.items() if isinstance(v, str) and not str(k).startswith("fly_")}
    return Seen(set(machines), metadata, set(apps) | set(got["org_apps"] or []), machines)


def _function(functions: pd.DataFrame, logs: pd.DataFrame, seen: Seen) -> tuple[str, str]:
    """The function whose invocations frame the apps' machine creations, with the evidence."""
    slugs = functions["slug"].dropna().astype(str).tolist()
    if not slugs:
        raise AmbiguousContract("function", [], hint="the project has no Edge Function: deploy it, or declare one")
    # to_utc: Go's zero time is "not reported", no creation to frame
    created = [t for t in (to_utc(m.get("created_at")) for m in seen.machines.values()) if t is not None]
    scores = {slug: _creations_framed(logs[logs["function"] == slug], created) for slug in slugs}
    if len(slugs) == 1:
        n = scores[slugs[0]]
        why = f"{slugs[0]}: the project's only Edge Function ({n} machine creation(s) inside its invocations)"
        return slugs[0], why
    top = max(scores.values())
    winners = [s for s, n in scores.items() if n == top]
    if top == 0 or len(winners) > 1:
        raise AmbiguousContract("function", [(s, f"{scores[s]} machine creation(s) inside its invocations")
                                             for s in (winners if top else slugs)])  # fmt: skip
    return winners[0], f"{winners[0]}: {top} of the apps' machine creations happened inside its invocations"


def _creations_framed(logs: pd.DataFrame, created: list[pd.Timestamp]) -> int:
    """How many of the apps' machines (created at ``created``) were made while one of these invocations ran."""
    edge = logs[logs["source"] == "function_edge_logs"]
    spans = sorted(
        (end - pd.Timedelta(milliseconds=int(ms) if pd.notna(ms) else 0) - CREATE_SLACK, end + CREATE_SLACK)
        for end, ms in zip(edge["time"].tolist(), edge["duration_ms"].tolist())
    )
    ends = list(itertools.accumulate((hi for _, hi in spans), max))  # the latest end among the spans so far
    # A creation is inside a span when some span starting at or before it ends at or after it.
    starts = [lo for lo, _ in spans]
    return sum(1 for at in created if (i := bisect.bisect_right(starts, at)) and ends[i - 1] >= at)


def _known_refs(
    got: dict[str, Any], apps: list[str], table: TableShape, columns: Columns
) -> tuple[list[str], list[str]]:
    """(every image reference the image secret could name, those provisioning was seen to use)."""
    used = [
        str((m.get("config") or {}).get("image"))
        for m in _all_machines(got, apps)
        if (m.get("config") or {}).get("image")
    ]
    if columns.image:
        used += [str(v) for v in table.values(columns.image)]
    used += refs_in(got["logs"]["message"]) if not got["logs"].empty else []
    refs: list[str] = []
    for app in apps:
        refs += got[f"releases:{app}"]["image"].dropna().astype(str).tolist() + [latest_ref(app)]
    refs += _pinned(_all_machines(got, apps))
    return list(dict.fromkeys(r for r in refs + used if r)), list(dict.fromkeys(used))


def _pinned(machines: list[dict[str, Any]]) -> list[str]:
    """Each machine's image pinned to the digest its ``image_ref`` records (`fly machine status` shows it; for a
    multi-platform or attested image it is the platform child's, not the tag's index digest)."""
    out = []
    for m in machines:
        ref = m.get("image_ref") or {}
        if isinstance(ref, dict) and ref.get("repository") and ref.get("digest"):
            image = (m.get("config") or {}).get("image")
            registry = parse_image_ref(image).registry if isinstance(image, str) and image else FLY_REGISTRY
            out.append(f"{registry}/{ref['repository']}@{ref['digest']}")
    return out


def _all_machines(got: dict[str, Any], apps: list[str]) -> list[dict[str, Any]]:
    return [m for app in apps for m in got[f"machines:{app}"] or [] if isinstance(m, dict)]


def _secret(
    secrets: pd.DataFrame, refs: tuple[list[str], list[str]], logs: pd.DataFrame, apps: list[str], seed_like: bool
) -> tuple[str, str, str, str]:
    """(image secret, fallback, evidence for each): by digest, else a name the failed requests need."""
    known, used = refs
    app_digests = {secret_digest(a) for a in apps}
    digests = {secret_digest(r): r for r in known}
    matches = [
        (str(name), digests[str(d)])
        for name, d in zip(secrets["name"].tolist(), secrets["digest"].tolist())
        if isinstance(d, str) and d in digests and d not in app_digests
    ]
    fallback, why_fallback = _fallback(used, apps, seed_like)
    if len(matches) == 1:
        name, ref = matches[0]
        return name, fallback, f"{name}: its SHA-256 digest is that of {ref}", why_fallback
    if len(matches) > 1:
        raise AmbiguousContract("image_secret", [(n, f"its digest is that of {r}") for n, r in matches])
    changed = _changed_before_failures(secrets, logs, app_digests)
    if changed is not None:
        name, why = changed
        return name, fallback, why, why_fallback
    needed = _needed_names(logs, set(secrets["name"].dropna().astype(str)))
    if len(needed) == 1:
        why = (
            f"{needed[0]}: no secret's digest matches an image reference, and the function's failed requests "
            f"name {needed[0]}, which is not among the project's secrets"
        )
        return needed[0], "", why, "none: the function failed those requests without asking Fly for a machine"
    if seed_like:
        why = (
            f"{SEED.image_secret}: the seed team's name (this is its function and table) — no secret's digest "
            "matches a known image reference (it may be unset); declare image_secret if the function reads another"
        )
        return SEED.image_secret, fallback, why, why_fallback
    why = (
        "none found: no secret's digest matches a known image reference and none changed as provisioning broke; "
        "declare image_secret if the function reads one"
    )
    return "", fallback, why, why_fallback


def _changed_before_failures(
    secrets: pd.DataFrame, logs: pd.DataFrame, app_digests: set[str]
) -> tuple[str, str] | None:
    """The one secret changed after the function's last 2xx and by its first 4xx/5xx since (a value no image
    reference matches, set just before provisioning broke), with the evidence; None when not exactly one."""
    edge = logs[logs["source"] == "function_edge_logs"]
    answers = sorted(
        (at, int(code)) for at, code in zip(edge["time"].tolist(), edge["status_code"].tolist()) if pd.notna(code)
    )
    oks = [at for at, code in answers if code < 400]
    failures = [at for at, code in answers if code >= 400 and (not oks or at > oks[-1])]
    if not oks or not failures:
        return None
    last_ok, first_failed = oks[-1], failures[0]
    hits = [
        (str(name), at)
        for name, at, digest in zip(
            secrets["name"].tolist(), secrets["updated_at"].tolist(), secrets["digest"].tolist()
        )
        if pd.notna(at) and last_ok < at <= first_failed and digest not in app_digests
    ]
    if len(hits) != 1:
        return None
    name, at = hits[0]
    return name, (
        f"{name}: no secret's digest matches a known image reference; {name} alone changed "
        f"({at:%Y-%m-%d %H:%M:%S} UTC) between the function's last 2xx ({last_ok:%H:%M:%S}) and its first "
        f"failure since ({first_failed:%H:%M:%S})"
    )


def _fallback(used: list[str], apps: list[str], seed_like: bool) -> tuple[str, str]:
    """The fallback: each app's ``:latest`` when provisioning was seen to use one; else the seed team's own in its
    pipeline, and none in another team's (a fallback nothing shows is not assumed: it could raise a missing
    :latest for a team that never uses one)."""
    seen = [latest_ref(app) for app in apps if latest_ref(app) in used]
    if seen:
        return SEED.image_fallback, f"{SEED.image_fallback}: provisioning used {', '.join(seen)}"
    if seed_like:
        return SEED.image_fallback, f"{SEED.image_fallback}: the seed team's fallback (this is its function and table)"
    return "", "none seen: no machine, row or log used an app's :latest; declare image_fallback if the function has one"


def _needed_names(logs: pd.DataFrame, secrets: set[str]) -> list[str]:
    """Variable names the function's failed requests give, not among the secrets: one it needs and lacks."""
    console = logs[logs["source"] == "function_logs"]
    edge = logs[logs["source"] == "function_edge_logs"]
    failed = {e for e, code in zip(edge["execution_id"], edge["status_code"]) if pd.notna(code) and code >= 400}
    names: dict[str, int] = {}
    for execution, text in zip(console["execution_id"], console["message"]):
        if execution not in failed or not isinstance(text, str) or read_refusal(text).kind is not None:
            continue
        for name in ENV_NAME.findall(text):
            if name not in secrets and name not in PLATFORM_CODES:
                names[name] = names.get(name, 0) + 1
    return sorted(names)


def _invoke(columns: Columns, metadata_key: str | None) -> tuple[Invoke | None, str]:
    """A probe's body: the user under the key the function copies into the machines' metadata (else the
    table's user column), the region under the region column's name; none without a user column. Inferred:
    a function may name its body keys otherwise — declare invoke then."""
    if not columns.user:
        return None, "none: the table has no user column, so a probe's body cannot be inferred; declare invoke"
    user = metadata_key or columns.user
    body = [(user, "{canary_user}")] + ([(columns.region, "{region}")] if columns.region else [])
    where = f"the machines' metadata key {user} holds the row's user" if metadata_key else "the user column's name"
    return Invoke(tuple(body), "machine_id"), (
        f"inferred: the user under {user} ({where}), the region under {columns.region or '(none)'}; declare "
        "invoke if the function takes other keys"
    )

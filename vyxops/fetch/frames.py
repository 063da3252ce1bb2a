"""Fetchers: both platforms into pandas DataFrames with schemas declared once, here.

Every frame's ``attrs`` holds ``source`` (what was read), ``complete`` (False when a
fetcher stopped before the end) and ``note`` (why). Every time column is
``datetime64[ns, UTC]`` whatever the source format (ms, µs, ns, RFC 3339).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import re
from collections.abc import Callable, Collection, Iterable
from typing import Any, Final, cast

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.extensions import ExtensionArray, ExtensionDtype

from vyxops.core import facts
from vyxops.core.contract import Contract
from vyxops.core.coverage import Gap
from vyxops.core.errors import ApiError, InputError, NotFoundError, holds_secret, redact
from vyxops.core.images import FLY_REGISTRY, BadImageRef, ImageRef, is_index, parse_image_ref, reference_problem
from vyxops.core.redaction import may_hold_secret
from vyxops.core.text import clean_column, one_line, sanitised_note
from vyxops.core.timeutil import (
    FLY_EVENT_UNIT,
    FLY_EXITED_AT_UNIT,
    GO_ZERO_TIME,
    SUPABASE_FUNCTION_UNIT,
    SUPABASE_LOG_UNIT,
    go_zero_count,
    iso,
    time_array,
    to_utc,
)
from vyxops.fetch import fanout
from vyxops.fetch.clients.supabase import NO_MANAGEMENT_API
from vyxops.fetch.logreads import read_source
from vyxops.fetch.session import Session

log = logging.getLogger("vyxops.fetch.frames")

TIME = "datetime64[ns, UTC]"
STR: Final = "string"  # Final: pandas-stubs accept pd.array(dtype=...) by literal name

# name -> {column: dtype}; a row of each frame means what the comment says.
SCHEMAS: dict[str, dict[str, str]] = {
    # one Fly app
    "apps": {"app": STR, "app_id": STR, "org": STR, "status": STR, "machine_count": "Int64"},
    # one machine (destroyed ones included), as the Machines API last showed it
    "machines": {
        "app": STR,
        "machine_id": STR,
        "name": STR,
        "state": STR,
        "region": STR,
        "image": STR,
        "image_repository": STR,
        "image_tag": STR,
        "image_digest": STR,
        "auto_destroy": "boolean",
        "restart_policy": STR,
        "restart_max_retries": "Int64",
        "process_group": STR,  # metadata fly_process_group: flyctl's own machines (release command, console)
        "user_id": STR,
        "instance_id": STR,
        "created_at": TIME,
        "updated_at": TIME,
        "destroyed": "boolean",
    },
    # one machine event; exit details unpacked
    "machine_events": {
        "app": STR,
        "machine_id": STR,
        "event_id": STR,
        "time": TIME,
        "type": STR,
        "status": STR,
        "source": STR,
        "exit_code": "Int64",
        "oom_killed": "boolean",
        "requested_stop": "boolean",
        "restart_count": "Int64",
        "exited_at": TIME,
        "error": STR,
    },
    # one release
    "releases": {
        "app": STR,
        "version": "Int64",
        "image": STR,
        "status": STR,
        "stable": "boolean",
        "user": STR,
        "description": STR,
        "created_at": TIME,
        # Fly's currentReleaseUnprocessed, or when it did not say, the newest complete release
        # (vyxops.core.facts.chosen_current_index); attrs["current_from"] says which
        "current": "boolean",
        "runs_image": "boolean",  # the release whose image machines run now (vyxops.core.facts.current_image_index)
    },
    # one image reference checked against the registry
    "manifests": {
        "ref": STR,
        "registry": STR,
        "repository": STR,
        "tag": STR,
        "exists": "boolean",
        "digest": STR,
        "media_type": STR,
        "checked_at": TIME,
        "check": STR,  # how the registry answered: "200", "404 MANIFEST_UNKNOWN", "401 denied", ...
        "platform_digest": STR,  # an index's linux/amd64 child: the digest machines record (images.ImageIdentity)
    },
    # one Fly log line
    "fly_logs": {
        "app": STR,
        "time": TIME,
        "instance": STR,
        "region": STR,
        "level": STR,
        "provider": STR,
        "message": STR,
    },
    # one row of the provisioning table, its columns named by what they hold (the pipeline contract's
    # columns: vyxops.core.contract), times converted; a column the table lacks is null throughout
    "machine_rows": {
        "table": STR,
        "id": STR,  # the row's key
        "user_id": STR,
        "machine_id": STR,
        "app": STR,
        "region": STR,
        "image": STR,
        "status": STR,  # the team's own word
        "role": STR,  # what the word means: starting | running | stopped | failed | terminal (vyxops.core.contract)
        "error": STR,
        "created_at": TIME,
        "updated_at": TIME,
        "updated_at_raw": STR,  # as stored, for a fix's guard
    },
    # one Supabase secret: its SHA-256 digest, never its value
    "secrets": {"name": STR, "digest": STR, "updated_at": TIME},
    # one Edge Function
    "functions": {
        "function_id": STR,
        "slug": STR,
        "name": STR,
        "status": STR,
        "version": "Int64",
        "created_at": TIME,
        "updated_at": TIME,
        "verify_jwt": "boolean",
    },
    # one function log record: an invocation (function_edge_logs) or console output (function_logs)
    "function_logs": {
        "time": TIME,
        "source": STR,
        "log_id": STR,
        "function_id": STR,
        "function": STR,
        "execution_id": STR,
        "level": STR,
        "event_type": STR,
        "status_code": "Int64",
        "duration_ms": "Int64",
        "message": STR,
    },
}
TIME_UNITS = {"ms", "us", "ns", "s"}


def make_frame(
    name: str,
    records: Iterable[dict[str, Any]],
    *,
    units: dict[str, str] | None = None,
    source: str = "",
    complete: bool = True,
    note: str = "",
    gaps: list[Gap] | None = None,
) -> pd.DataFrame:
    """Build frame ``name`` from records, converting to its declared schema.

    ``units`` says how numeric time columns are encoded (``{"time": "ms"}``); strings
    are RFC 3339 (no zone means UTC). Unknown record keys are dropped, missing ones
    are null.
    """
    rows = list(records)
    cells = {column: [r.get(column) for r in rows] for column in SCHEMAS[name]}
    return columns_frame(name, cells, len(rows), units=units, source=source, complete=complete, note=note, gaps=gaps)


def columns_frame(
    name: str,
    cells: dict[str, list[Any]],
    length: int,
    *,
    units: dict[str, str] | None = None,
    source: str = "",
    complete: bool = True,
    note: str = "",
    gaps: list[Gap] | None = None,
) -> pd.DataFrame:
    """:func:`make_frame` of cells already in columns (``length`` each; a schema column not given is null):
    a big read builds its columns without a dict per row."""
    cells = {column: cells.get(column) or [None] * length for column in SCHEMAS[name]}
    df = _build(name, cells, length, units or {})
    sanitised: dict[str, int] = df.attrs.pop("sanitised", {})
    gap_list = [g.as_json() for g in gaps or []]
    complete = complete and not gap_list
    note = "; ".join(n for n in (note, _not_reported_note(name, cells), sanitised_note(sanitised)) if n)
    df.attrs.update({"frame": name, "source": source, "complete": complete, "note": note, "gaps": gap_list})
    # values not kept as sent, per column (vyxops.core.text.clean): the evidence that the platform's text differed
    df.attrs["sanitised"] = sum(sanitised.values())
    df.attrs["sanitised_columns"] = sanitised
    if not complete:
        # Said where a person reads it: the frame's gaps and note reach the report's "Incomplete evidence" and
        # findings.json. A Python warning here was a red box with a source path atop the report, and stderr noise
        # from `vyxops capture` on success (issue 20).
        log.info("%s: incomplete: %s", name, note)
    return df


def app_frame(
    name: str,
    records: Iterable[dict[str, Any]],
    *,
    units: dict[str, str] | None = None,
    source: str = "",
    complete: bool = True,
    note: str = "",
    gaps: list[Gap] | None = None,
) -> pd.DataFrame:
    """:func:`make_frame` of one app's own frame (its machines, releases, logs, rows, manifests), built in the
    process's one turn at CPU work (:func:`vyxops.fetch.fanout.turn`), as its analysis is.

    With one interpreter lock, fifty apps' pandas work only switches between itself every few milliseconds,
    which costs CPU and starves the thread every app waits for: the project's frames (functions, secrets,
    function logs, the org's apps) are built with :func:`make_frame` itself and never queue for the turn."""
    rows = list(records)  # read before the turn: records may still be arriving
    with fanout.turn():
        return make_frame(name, rows, units=units, source=source, complete=complete, note=note, gaps=gaps)


def _not_reported_note(name: str, cells: dict[str, list[Any]]) -> str:
    """What the frame's times do not say: each time column's cells that held Go's zero time (NaT now)."""
    counts = {c: _go_zero_cells(cells[c]) for c, dtype in SCHEMAS[name].items() if dtype == TIME}
    said = [f"{c} in {n} row(s)" for c, n in counts.items() if n]
    if not said:
        return ""
    return f"not reported: {', '.join(said)} (Go's zero time {GO_ZERO_TIME}, read as unknown, not as a date)"


def _go_zero_cells(values: list[Any]) -> int:
    """:func:`vyxops.core.timeutil.go_zero_count` of a column, read cell by cell only when its text mentions year
    1 (a number is never Go's zero time; text is only when it starts with ``0001-01-01``)."""
    kinds = set(map(type, values))
    if kinds <= {int, type(None)}:
        return 0
    if kinds <= {str, type(None)} and "0001-01-01" not in "\x00".join(filter(None, values)):
        return 0
    return go_zero_count(values)


@functools.cache
def _extension_dtype(name: str) -> ExtensionDtype:
    """A schema's dtype name as pandas' dtype (every SCHEMAS dtype but TIME is an extension dtype)."""
    dtype = pd.api.types.pandas_dtype(name)
    if not isinstance(dtype, ExtensionDtype):
        raise TypeError(f"{name}: not an extension dtype")
    return dtype


def _build(name: str, cells: dict[str, list[Any]], length: int, units: dict[str, str]) -> pd.DataFrame:
    """Frame ``name``'s columns from their cells, each kind converted in one step to an array (no index
    to align): a frame of a dozen rows costs pandas' per-call overhead, not its per-cell work, so
    text, integer and boolean columns skip pandas' per-cell conversion, and all RFC 3339 time columns are
    converted in one call."""
    schema = SCHEMAS[name]
    cells = dict(cells)  # cleaning and masking replace columns, never the caller's lists
    strings = [c for c, dtype in schema.items() if dtype == STR]
    distinct: dict[str, list[Any]] = {}
    sanitised = _clean_cells(cells, strings, distinct)
    _redact_cells(cells, strings, distinct)
    columns: dict[str, ExtensionArray] = {c: _strings(cells[c]) for c in strings}
    texts = [c for c, dtype in schema.items() if dtype == TIME and units.get(c) is None]
    columns |= converted_together(cells, texts, length, lambda values: _to_time(values, None))
    for column, dtype in schema.items():
        if column in columns:
            continue
        values = cells[column]
        if dtype == TIME:
            columns[column] = _to_time(values, units.get(column))
        else:
            columns[column] = _typed(values, dtype)
    df = pd.DataFrame({column: columns[column] for column in schema}, index=pd.RangeIndex(length), copy=False)
    df.attrs["sanitised"] = sanitised
    return df


def _strings(values: list[Any]) -> ExtensionArray:
    """A string column: text and None straight into Arrow (what ``pd.array(dtype="string")`` holds), a quarter
    of pandas' cost; any other cell the way pandas converts it."""
    if set(map(type, values)) <= {str, type(None)}:
        with contextlib.suppress(ValueError, TypeError, UnicodeError):  # pyarrow's errors are these too
            return pd.arrays.ArrowStringArray(pa.array(values, type=pa.large_string()))
    return pd.array(values, dtype=STR)


def _typed(values: list[Any], dtype: str) -> ExtensionArray:
    """An Int64 or boolean column: ints (or bools) and None as numpy values and a mask, with no per-cell pandas;
    any other cell (a float, a string) the way pandas converts it."""
    kinds = set(map(type, values))
    n = len(values)
    if (dtype == "Int64" and kinds <= {int, type(None)}) or (dtype == "boolean" and kinds <= {bool, type(None)}):
        mask = np.fromiter((v is None for v in values), dtype=bool, count=n)
        with contextlib.suppress(OverflowError):  # an int past int64: pandas says why
            if dtype == "Int64":
                return pd.arrays.IntegerArray(
                    np.fromiter((0 if v is None else v for v in values), dtype=np.int64, count=n), mask
                )
            return pd.arrays.BooleanArray(np.fromiter((v is True for v in values), dtype=bool, count=n), mask)
    return pd.array(values, dtype=object).astype(_extension_dtype(dtype))


#: Text columns that are a person's or a program's message: they keep tabs and newlines (vyxops.core.text.clean).
MESSAGE_COLUMNS = frozenset({"message", "error", "description"})


def _clean_cells(cells: dict[str, list[Any]], names: list[str], distinct: dict[str, list[Any]]) -> dict[str, int]:
    """Text from the platforms made safe to keep (the frame boundary, issue 19): lone surrogates, control and
    bidi characters become U+FFFD (:func:`vyxops.core.text.clean_column`); returns how many values held any, per
    column that had some. A column's distinct values are looked at first: a big read repeats most of them;
    ``distinct`` gets those of each text column left as it was, for the search for credentials."""
    counts = {}
    for c in names:
        seen = _distinct(cells[c])
        if seen is not None and not clean_column(seen, multiline=c in MESSAGE_COLUMNS)[1]:
            distinct[c] = seen
            continue
        cells[c], changed = clean_column(cells[c], multiline=c in MESSAGE_COLUMNS)
        if changed:
            counts[c] = changed
    return counts


def _distinct(values: list[Any]) -> list[Any] | None:
    """The column's distinct cells when they are text or missing (None when some other cell is there)."""
    if not set(map(type, values)) <= {str, type(None)}:
        return None
    return list(dict.fromkeys(values))


def converted_together(
    cells: dict[str, list[Any]], names: list[str], rows: int, convert: Callable[[list[Any]], ExtensionArray]
) -> dict[str, ExtensionArray]:
    """Columns ``names`` (each ``rows`` long) converted in one call over all their cells, then cut
    apart (the slices share one array): pandas costs per call on columns of a dozen cells."""
    whole = convert([value for name in names for value in cells[name]])
    return {name: whole[i * rows : (i + 1) * rows] for i, name in enumerate(names)}


def _redact_cells(cells: dict[str, list[Any]], names: list[str], distinct: dict[str, list[Any]]) -> None:
    """Mask credentials in the string columns ``names`` while their cells are still Python values:
    one search over all of them (most often no hit), then one per column, then each distinct cell of a
    column hit. A cell that is not a string is searched as the text its column will hold (``str``).
    NUL joins the cells: it is in no token shape nor credential, so no match spans two.

    A canonical UUID is searched for a credential as is (:func:`vyxops.core.redaction.may_hold_secret`), not
    decoded: its 32 hex digits in fixed groups spell no token and carry no encoded credential a platform
    could have put there, and decoding each of a big table's keys was most of the frame's time."""
    texts = {c: [v for v in distinct[c] if v is not None] if c in distinct else _texts(cells[c]) for c in names}
    keys = {c: [t for t in texts[c] if len(t) == _UUID_LENGTH and _UUID.fullmatch(t)] for c in names}
    if any(keys.values()) and not may_hold_secret("\x00".join(t for c in names for t in keys[c])):
        for c in names:
            if keys[c]:
                plain = frozenset(keys[c])
                texts[c] = [t for t in texts[c] if t not in plain]
    if not _holds_secret("\x00".join(text for c in names for text in texts[c])):
        return
    for c in names:
        if _holds_secret("\x00".join(texts[c])):
            masked = {t: redact(t) for t in texts[c] if _holds_secret(t)}
            cells[c] = [v if _missing(v) else masked.get(_text(v), v) for v in cells[c]]


#: A UUID as PostgreSQL writes its uuid type (and PostgREST's JSON carries it): 8-4-4-4-12 hex digits.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UUID_LENGTH = 36


def _texts(values: list[Any]) -> list[str]:
    """A string column's distinct present cells, as the text the column will hold."""
    if set(map(type, values)) <= {str, type(None)}:
        return [v for v in dict.fromkeys(values) if v is not None]
    return list(dict.fromkeys(_text(v) for v in values if not _missing(v)))


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _holds_secret(text: str) -> bool:
    return holds_secret(text)  # as is, token-shaped, escaped or encoded (vyxops.core.redaction)


def _missing(value: object) -> bool:
    """A cell a string column holds as missing (None, NA, NaT, NaN)."""
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def is_na(cell: object) -> bool:
    """``pd.isna`` of one cell read back as ``object`` (a row's dict, an itertuples field): pandas-stubs type
    ``pd.isna`` by its scalar union, which such a cell has lost; the answer for a scalar is a plain bool."""
    return bool(pd.isna(cast(Any, cell)))


def empty_frame(name: str, note: str = "") -> pd.DataFrame:
    return make_frame(name, [], note=note)


def _to_time(values: list[Any], unit: str | None) -> ExtensionArray:
    """A time column from its cells: numbers in ``unit`` (ms, us, ns, s), else RFC 3339 strings;
    Go's zero time is NaT (:func:`vyxops.core.timeutil.time_array`)."""
    if unit is not None and unit not in TIME_UNITS:
        raise ValueError(unit)
    return time_array(values, unit)


# --------------------------------------------------------------------------- Fly


def machine_records(app: str, machines: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Flatten Machines API objects into machine rows and event rows (exit details unpacked).

    Go encodes an empty slice or map as ``null``: every list or map read here may be null.
    """
    rows, events = [], []
    for m in machines or []:
        config = m.get("config") or {}
        image_ref = m.get("image_ref") or {}
        metadata = config.get("metadata") or {}
        restart = config.get("restart") or {}
        rows.append(
            {
                "app": app,
                "machine_id": m.get("id"),
                "name": m.get("name"),
                "state": m.get("state"),
                "region": m.get("region"),
                "image": config.get("image") or _ref_from_image_ref(image_ref),
                "image_repository": image_ref.get("repository"),
                "image_tag": image_ref.get("tag"),
                "image_digest": image_ref.get("digest"),
                "auto_destroy": config.get("auto_destroy"),
                "restart_policy": restart.get("policy") or None,
                "restart_max_retries": restart.get("max_retries"),
                "process_group": metadata.get(facts.PROCESS_GROUP_KEY),
                "user_id": metadata.get("user_id"),
                "instance_id": m.get("instance_id"),
                "created_at": m.get("created_at"),
                "updated_at": m.get("updated_at"),
                "destroyed": m.get("state") == "destroyed",
            }
        )
        events.extend(event_records(app, m.get("id", ""), m.get("events") or []))
    return rows, events


def event_records(app: str, machine_id: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event rows, exit details read by :func:`vyxops.core.facts.read_exit_event` (absent fields stay null)."""
    out = []
    for e in events or []:
        x = facts.read_exit_event(e)
        exited_at = x.exited_at if x else None
        given = e.get("request")
        request: dict[str, Any] = given if isinstance(given, dict) else {}
        out.append(
            {
                "app": app,
                "machine_id": machine_id,
                "event_id": e.get("id"),
                "time": e.get("timestamp"),
                "type": e.get("type"),
                "status": e.get("status"),
                "source": e.get("source"),
                "exit_code": x.exit_code if x else None,
                "oom_killed": x.oom_killed if x else None,
                "requested_stop": x.requested_stop if x else None,
                "restart_count": x.restart_count if x else None,
                # a number in old samples (FLY_EXITED_AT_UNIT), RFC 3339 or Go's zero time in newer code
                "exited_at": exited_at if isinstance(exited_at, str) else to_utc(exited_at, FLY_EXITED_AT_UNIT),
                "error": request.get("error"),
            }
        )
    return out


def _ref_from_image_ref(image_ref: dict[str, Any]) -> str | None:
    if not image_ref.get("repository"):
        return None
    base = f"{image_ref.get('registry', 'registry.fly.io')}/{image_ref['repository']}"
    return f"{base}:{image_ref['tag']}" if image_ref.get("tag") else f"{base}@{image_ref.get('digest')}"


def fetch_apps(session: Session) -> pd.DataFrame:
    """The org's apps (Machines API ``GET /v1/apps?org_slug=``)."""
    apps = session.fly.list_apps(session.org)
    records = [
        {
            "app": a["name"],
            "app_id": a.get("id"),
            "org": session.org,
            "status": a.get("status"),
            "machine_count": a.get("machine_count"),
        }
        for a in apps
    ]
    return make_frame("apps", records, source=f"fly GET /v1/apps?org_slug={session.org}")


def fetch_machines(
    session: Session, app: str, *, include_deleted: bool = True, also_ids: Iterable[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Machines (destroyed ones too, by default) and their events, from one paged list.

    ``also_ids`` are machines known from elsewhere (DB rows, logs): any the list did
    not return is read by id, because a destroyed machine stays readable by id.
    """
    listed = session.fly.list_machines(app, include_deleted=include_deleted)
    return machine_frames(session, app, listed, include_deleted=include_deleted, also_ids=also_ids)


def machine_frames(
    session: Session,
    app: str,
    listed: list[dict[str, Any]],
    *,
    include_deleted: bool = True,
    also_ids: Iterable[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`fetch_machines` after the list: the ids it did not return are read by id, side by side."""
    machines = list(listed)
    seen = {m["id"] for m in machines}
    wanted = [mid for mid in dict.fromkeys(also_ids) if mid and mid not in seen]

    def by_id(mid: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = session.fly.get_machine(app, mid)
        except NotFoundError:
            return None
        return found

    found = fanout.map_ordered(by_id, wanted)
    machines += [m for m in found if m is not None]
    missing_note = [mid for mid, m in zip(wanted, found) if m is None]
    rows, events = machine_records(app, machines)
    source = f"fly GET /v1/apps/{app}/machines?include_deleted={str(include_deleted).lower()}"
    note = f"not found by id: {', '.join(missing_note)}" if missing_note else ""
    m_df = app_frame("machines", rows, source=source, note=note)
    e_df = app_frame("machine_events", events, units={"time": FLY_EVENT_UNIT}, source=source)
    return m_df, e_df


def release_records(
    app: str, nodes: list[dict[str, Any]], platform_current: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Release rows, newest first, marking the current release and the one whose image runs now,
    and where ``current`` came from (``facts.CURRENT_FROM_PLATFORM`` or ``facts.CURRENT_INFERRED``).

    ``platform_current`` is the platform's ``currentReleaseUnprocessed`` (None: it did not say).
    """
    ordered = sorted(nodes or [], key=lambda n: n.get("version") or 0, reverse=True)
    versions = [n.get("version") for n in ordered]
    statuses = [n.get("status") for n in ordered]
    said = None if platform_current is None else platform_current.get("version")
    current, current_from = facts.chosen_current_index(versions, statuses, said)
    images = [n.get("imageRef") for n in ordered]
    by_platform = current if current_from == facts.CURRENT_FROM_PLATFORM else None
    runs = facts.current_image_index(versions, statuses, images, by_platform)
    records = []
    for i, n in enumerate(ordered):
        user = n.get("user") or {}
        records.append(
            {
                "app": app,
                "version": n.get("version"),
                "image": n.get("imageRef"),
                "status": n.get("status"),
                "stable": n.get("stable"),
                "user": user.get("email") if isinstance(user, dict) else user,
                "description": n.get("description"),
                "created_at": n.get("createdAt"),
                "current": i == current,
                "runs_image": i == runs,
            }
        )
    return records, current_from


def fetch_releases(session: Session, app: str, limit: int = 50) -> pd.DataFrame:
    """Releases, newest first; ``current`` marks the platform's current release (``attrs["current_from"]``
    is "platform"), or when it did not say, the newest complete one ("inferred"); ``runs_image`` the one
    whose image runs. ``attrs["current_note"]`` says why the platform's word was not used."""
    history = session.fly.release_history(app, limit=limit)
    complete = len(history.nodes) < limit
    records, current_from = release_records(app, history.nodes, history.current)
    note = history.current_note
    if current_from == facts.CURRENT_INFERRED and history.current is not None:
        note = f"the platform's current release v{history.current.get('version')} is not among those read"
    df = app_frame(
        "releases",
        records,
        source="fly POST /graphql releasesUnprocessed, currentReleaseUnprocessed",
        complete=complete,
        note="" if complete else f"only the newest {limit} releases were read",
    )
    df.attrs.update({"current_from": current_from, "current_note": note})
    return df


Ask = Callable[[str], dict[str, Any]]


def head_answer(session: Session, ref: str) -> dict[str, Any]:
    """What the registry says of one reference: ``{"exists", "digest", …, "check"}``; an error status is the check.

    When the answer is an image index, its platform child is read from the index the answer carried (a GET by
    its digest only when those bytes are not that index; a run asks once per reference): ``platform_digest`` is
    its linux/amd64 child, the digest a machine created from ``ref`` records (PLATFORM.md "Image identity").
    An index that cannot be read leaves it None, and says so in ``check``.
    """
    try:
        answer, body = session.fly.manifest_and_body(ref)
    except BadImageRef as exc:
        return {"exists": None, "check": f"not sent: not an image reference ({exc.why})"}
    except ApiError as exc:
        return {"exists": None, "check": f"{exc.status} {exc.code or ''}".strip()}
    if answer.get("exists") and is_index(answer.get("media_type")):
        try:
            answer["platform_digest"] = session.fly.index_platform(ref, str(answer["digest"]), body)
        except BadImageRef as exc:  # the registry's Docker-Content-Digest is not a digest: not sent back to it
            answer["check"] = f"{answer['check']}; index not read: {exc.why}"
        except ApiError as exc:
            answer["check"] = f"{answer['check']}; index not read: {exc.status} {exc.code or ''}".strip()
    return answer


def fetch_manifests(
    session: Session, refs: Iterable[str], *, ask: Ask | None = None, own_apps: Collection[str] | None = None
) -> pd.DataFrame:
    """Ask the registry about every image reference: exists, digest, media type, and how it answered (``check``).

    ``exists`` is None when the registry could not tell (``check`` says why: "401
    denied" for a repository the token may not see, a 200 without a digest, a 404
    that is not the registry's, any other error status): each such reference is a
    Gap with source ``fly.registry``, never an error that ends the investigation.
    Only a failure to reach the registry at all raises (TransportError).

    The references are asked side by side; ``ask`` replaces the HEAD (an audit passes
    one that asks the registry once per reference for all its apps).

    ``own_apps`` are the token's apps (:func:`foreign_name_unknown`): a NAME_UNKNOWN for a
    repository outside them may mean "not yours to see" as much as "does not exist"
    (PLATFORM.md "Registry NAME_UNKNOWN"), so it is a gap, never "missing". None: every
    repository is read as the token's own.
    """
    asking: Ask = ask or (lambda ref: head_answer(session, ref))
    wanted = list(dict.fromkeys(r for r in refs if r))
    parsed = {ref: parse_image_ref(ref) for ref in wanted}
    # The reference grammar first (images.reference_problem): a reference it refuses is never sent, whatever
    # registry it seems to name; it is a gap, and no path segment of it reaches a request.
    refused = {ref: why for ref in wanted if (why := reference_problem(ref)) is not None}
    fly_refs = [ref for ref in wanted if parsed[ref].registry == FLY_REGISTRY and ref not in refused]
    answers = dict(zip(fly_refs, fanout.map_ordered(asking, fly_refs)))
    checked_at = session.now()
    records, gaps = [], []
    for ref in wanted:
        record = {
            "ref": ref,
            "registry": parsed[ref].registry,
            "repository": parsed[ref].repository,
            "tag": parsed[ref].tag,
            "checked_at": checked_at,
        }
        answer = answers.get(ref) or {"exists": None, "check": "not checked: not registry.fly.io"}
        if ref in refused:
            answer = {"exists": None, "check": f"not sent: not an image reference ({refused[ref]})"}
            gaps.append(_refused_ref_gap(ref, refused[ref]))
        if foreign_name_unknown(answer, parsed[ref], own_apps):
            answer = {**answer, "exists": None, "check": f"{answer['check']} {NOT_THE_TOKENS}"}
        records.append({**record, **answer})
        if ref in answers and answer["exists"] is None:
            gaps.append(_registry_gap(ref, answer["check"]))
    note = f"{len(gaps)} image reference(s) could not be checked" if gaps else ""
    return app_frame("manifests", records, source="registry GET /v2/<repo>/manifests/<ref>", note=note, gaps=gaps)


NOT_THE_TOKENS = "(not one of the token's apps)"


def foreign_name_unknown(answer: dict[str, Any], ref: ImageRef, own_apps: Collection[str] | None) -> bool:
    """Whether the registry said NAME_UNKNOWN for a repository that is none of ``own_apps``.

    registry.fly.io names a repository after its app (``registry.fly.io/<app>[/…]``). What vyxops knows of
    the token's apps: the app under investigation, the apps of the run, and the org's apps when the token
    may list them (evidence passes them). Outside those, NAME_UNKNOWN cannot tell "no such repository" from
    "another org's, not yours to see".
    """
    if own_apps is None or answer.get("exists") is not False:
        return False
    return str(answer.get("check", "")).endswith("NAME_UNKNOWN") and ref.repository.split("/")[0] not in own_apps


def _refused_ref_gap(ref: str, why: str) -> Gap:
    return Gap(
        "fly.registry",
        f"{one_line(ref)}: not an image reference by the distribution grammar ({why}), so it was not sent to "
        "the registry and whether such an image exists is unknown; correct the reference where it was written",
    )


def _registry_gap(ref: str, check: str) -> Gap:
    if check.endswith(NOT_THE_TOKENS):
        why = (
            f"{ref}: the registry answered NAME_UNKNOWN for a repository that is none of the token's apps: "
            "it may not exist, or belong to an app the token may not see (another org's); check it with a "
            "token of the org that owns it"
        )
    elif check.endswith("denied"):
        why = (
            f"{ref}: the registry answered {check}: the token may not see this repository (another app's or "
            "another org's), so whether the image exists is unknown; check it with a token of the app's org"
        )
    else:
        why = (
            f"{ref}: the registry answered {check}, which says neither that the image exists nor that it is "
            "missing (a proxy or another service may have answered); check again, e.g. `docker manifest inspect`"
        )
    return Gap("fly.registry", why)


FLY_LOG_PAGE = facts.FLY_LOG_PAGE
#: Lines one window's read may take (20 pages of 100). Fly's app logs corroborate and never decide health
#: (SPEC.md "Findings"), so a busy window is not worth more requests: past the budget, the rest is a gap.
FLY_LOG_BUDGET = 20 * FLY_LOG_PAGE
FLY_LOG_RETENTION = pd.Timedelta(facts.FLY_LOG_RETENTION_NS, unit="ns")
_FLY_LOG_KEEP = "ship logs to a sink (fly-log-shipper) to keep them"


def fetch_fly_logs(
    session: Session,
    app: str,
    *,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    instance: str | None = None,
    budget: int = FLY_LOG_BUDGET,
    asked_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """App logs of the window [``since``, ``until``], oldest first, read from its start forward.

    Fly's docs (superfly/docs monitoring/logs-api-options.mdx) say ``next_token`` is "a nanosecond
    Unix timestamp … Returns logs after this time, used either as a paging cursor or to backfill
    from a specific moment", and that the API keeps "about 7 days". So the first request backfills
    from just before ``since`` (the token is exclusive: "after this time"), and each answer's
    ``meta.next_token`` leads on, until a page is empty, its lines pass the window's end, or the
    token stops moving. ``until`` defaults to the clock read once, here: nothing after is
    measured against a later clock (a retry's wait, or real time passing, moves it).

    What could not be read is a ``fly.logs`` Gap, which does not decide health (SPEC.md): the part
    of the window older than the retention, and, past ``budget`` lines, the rest of the window.
    The retention is counted back from ``asked_at``, the run's clock read once (the API keeps 7 days
    before the moment it is asked, not before the window's end: a postmortem of a window that ended
    days ago reaches less far back); without it, from the window's end.

    Without ``since`` there is no window to cover: one request without a token answers the API's
    default, its most recent 100 lines of the last 24 h, as a sample, with no gap claimed.
    """
    source = f"fly GET /api/v1/apps/{app}/logs"
    if since is None:
        entries, _ = session.fly.logs_page(app, instance=instance)
        df = app_frame("fly_logs", [_fly_log_record(app, e) for e in entries], source=source)
        return df if until is None else _within(df, None, until)
    end = until if until is not None else session.now()
    kept_from = max(end, asked_at if asked_at is not None else end) - FLY_LOG_RETENTION
    start = max(since, kept_from)
    gaps = [_fly_retention_gap(since, kept_from)] if since < kept_from else []
    records, stop = _read_fly_logs_forward(session, app, start, end, instance, budget)
    if stop is not None:
        gaps.append(_fly_unread_gap(*stop, end))
    note = "; ".join(g.why for g in gaps)
    df = app_frame("fly_logs", records, source=source, note=note, gaps=gaps)
    return _within(df, since, end)


def fly_log_token(t: pd.Timestamp) -> str:
    """The ``next_token`` that backfills from ``t`` on, ``t`` included: the API answers lines after the token."""
    return str(t.value - 1)


def _read_fly_logs_forward(
    session: Session, app: str, start: pd.Timestamp, end: pd.Timestamp, instance: str | None, budget: int
) -> tuple[list[dict[str, Any]], tuple[pd.Timestamp, str] | None]:
    """Lines from ``start`` on, page by page; and, when the read stopped short of ``end``, how far it got and why."""
    token = fly_log_token(start)
    records: list[dict[str, Any]] = []
    read_to = start
    while True:
        entries, nxt = session.fly.logs_page(app, next_token=token, instance=instance)
        records += [_fly_log_record(app, e) for e in entries]
        read_to = max([read_to, *_line_times(entries)])
        if not entries or read_to > end:
            return records, None  # caught up, or past the window's end
        if len(records) >= budget:
            return records, (read_to, f"{budget} lines at most are read per window")
        if not nxt or nxt == token:
            return records, (read_to, "the API's next_token stopped moving")
        token = nxt


def _line_times(entries: list[dict[str, Any]]) -> list[pd.Timestamp]:
    """The lines' times that read as RFC 3339 (a line without one does not move the read's reach)."""
    out = []
    for e in entries:
        with contextlib.suppress(ValueError, TypeError, OverflowError):
            t = to_utc(e.get("timestamp"))
            if t is not None and not pd.isna(t):
                out.append(t)
    return out


def _fly_retention_gap(since: pd.Timestamp, kept_from: pd.Timestamp) -> Gap:
    why = f"the Fly logs API keeps about 7 days, so lines before {iso(kept_from)} could not be read; {_FLY_LOG_KEEP}"
    return Gap("fly.logs", why, iso(since), iso(kept_from))


def _fly_unread_gap(read_to: pd.Timestamp, reason: str, end: pd.Timestamp) -> Gap:
    why = (
        f"Fly's app logs were read up to {iso(read_to)} ({reason}; they corroborate and do not decide health); "
        f"read the rest with `fly logs` or {_FLY_LOG_KEEP}"
    )
    return Gap("fly.logs", why, iso(read_to), iso(end))


def _within(df: pd.DataFrame, since: pd.Timestamp | None, until: pd.Timestamp | None) -> pd.DataFrame:
    """``df``'s lines in [since, until] (lines without a time are dropped), with its attrs."""
    keep = pd.Series(True, index=df.index)
    if since is not None:
        keep &= df["time"] >= since
    if until is not None:
        keep &= df["time"] <= until
    out = df[keep.fillna(False).astype(bool)].reset_index(drop=True)
    out.attrs.update(df.attrs)
    return out


def _fly_log_record(app: str, e: dict[str, Any]) -> dict[str, Any]:
    return {
        "app": app,
        "time": e.get("timestamp"),
        "instance": e.get("instance"),
        "region": e.get("region"),
        "level": e.get("level"),
        "provider": ((e.get("meta") or {}).get("event") or {}).get("provider"),
        "message": e.get("message"),
    }


# --------------------------------------------------------------------------- Supabase


def fetch_machine_rows(
    session: Session, contract: Contract, *, app: str | None = None, page_size: int = 1000
) -> pd.DataFrame:
    """Every row of the contract's provisioning table (``app``'s only, when the table has an app column),
    paged past PostgREST's silent 1000-row cap, each column read under the name the contract gives it.

    A column the contract names that the table lacks, or a table that does not exist, is an
    InputError naming the contract key (a declared contract that does not fit the project).
    """
    t = contract.table
    named = t.columns.named()
    filters = [(named["app"], "eq", app)] if app and "app" in named else None
    try:
        page = session.supabase.select_all(
            t.name,
            columns=",".join(dict.fromkeys(named.values())),
            filters=filters,
            order=named.get("key") or named["created_at"],
            page_size=page_size,
        )
    except ApiError as exc:
        if exc.code not in ("42703", "PGRST205", "PGRST200"):
            raise
        raise InputError(
            "pipeline.table",
            f"the contract's table {t.name} ({', '.join(named.values())}) does not fit the project: {exc.message}",
            hint="fix vyxops.toml (or --contract FILE), or run `vyxops init` to discover the contract",
        ) from None
    return rows_frame(page.rows, contract, complete=page.complete, note=page.note)


def rows_frame(
    rows: list[dict[str, Any]],
    contract: Contract,
    *,
    app: str | None = None,
    complete: bool = True,
    note: str = "",
    source: str | None = None,
) -> pd.DataFrame:
    """The machine_rows frame of table rows as PostgREST returns them; with ``app``, only its rows (the filter
    the read would have sent, applied here to rows read whole), in the read's order (by key). ``source``: what
    was read, when not PostgREST (the direct database read renders its rows as PostgREST's JSON would)."""
    t = contract.table
    named = t.columns.named()
    if app is not None and "app" in named:
        rows = [r for r in rows if r.get(named["app"]) == app]
    if app is not None:
        key = named.get("key") or named["created_at"]
        rows = sorted(rows, key=lambda r: _sort_key(r.get(key)))
    table_columns = {column: list(map(dict.get, rows, itertools.repeat(column))) for column in set(named.values())}
    source = source or f"supabase GET /rest/v1/{t.name}"
    return table_columns_frame(table_columns, len(rows), contract, complete=complete, note=note, source=source)


def table_columns_frame(
    table_columns: dict[str, list[Any]],
    length: int,
    contract: Contract,
    *,
    complete: bool = True,
    note: str = "",
    source: str,
) -> pd.DataFrame:
    """The machine_rows frame of a table read by column (``length`` rows: each column the contract names, as
    PostgREST's JSON renders it), in the order read."""
    t = contract.table
    cells = row_cells(table_columns, length, t.columns.named(), t.name, contract.status.role)
    with fanout.turn():
        return columns_frame("machine_rows", cells, length, source=source, complete=complete, note=note)


def _sort_key(value: object) -> tuple[int, float, str]:
    """PostgREST's order by a key: numbers as numbers, missing last, anything else as its text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (2, 0.0, "") if value is None else (1, 0.0, str(value))


#: The machine_rows frame's fields filled from the table's columns (vyxops.core.contract.Columns' keys).
_ROW_FIELDS = {"key": "id", "user": "user_id", "machine_id": "machine_id", "app": "app", "region": "region",
               "image": "image", "status": "status", "error": "error", "created_at": "created_at",
               "updated_at": "updated_at"}  # fmt: skip


def row_record(
    row: dict[str, Any], named: dict[str, str], table: str, role: Callable[[object], str | None]
) -> dict[str, Any]:
    """One machine_rows record from a table row whose columns ``named`` maps by what they hold."""
    out: dict[str, Any] = {"table": table}
    for key, column in named.items():
        value = row.get(column)
        out[_ROW_FIELDS[key]] = value if value is None or isinstance(value, str) else str(value)
    out["role"] = role(out.get("status"))
    out["updated_at_raw"] = out.get("updated_at")
    return out


def row_cells(
    table_columns: dict[str, list[Any]],
    length: int,
    named: dict[str, str],
    table: str,
    role: Callable[[object], str | None],
) -> dict[str, list[Any]]:
    """:func:`row_record` of every row, in columns, from the table's columns (``length`` rows each): a value
    that is not text read as its text, a status's role asked once per distinct status."""
    cells: dict[str, list[Any]] = {"table": [table] * length}
    for key, column in named.items():
        values = table_columns.get(column) or [None] * length
        if not set(map(type, values)) <= {str, type(None)}:
            values = [v if v is None or isinstance(v, str) else str(v) for v in values]
        cells[_ROW_FIELDS[key]] = values
    statuses = cells.get("status") or [None] * length
    roles = {status: role(status) for status in set(statuses)}
    cells["role"] = [roles[status] for status in statuses]
    cells["updated_at_raw"] = cells.get("updated_at") or [None] * length
    return cells


def fetch_secrets(session: Session) -> pd.DataFrame:
    """Secret names with their SHA-256 digests (the Management API never returns values); without a Management
    API (self-hosted), none, and a gap saying why."""
    if not session.supabase.management:
        return _unreadable("secrets", "supabase.secrets", "supabase GET /v1/projects/{ref}/secrets")
    secrets = session.supabase.list_secrets()
    return make_frame(
        "secrets",
        [{"name": s["name"], "digest": s.get("value"), "updated_at": s.get("updated_at")} for s in secrets],
        source="supabase GET /v1/projects/{ref}/secrets",
    )


def _unreadable(name: str, source: str, path: str) -> pd.DataFrame:
    """Frame ``name`` empty, with a gap: the Management API that holds it is not there to ask (self-hosted)."""
    why = f"{NO_MANAGEMENT_API}; see them where the functions run (their environment, their logs)"
    return make_frame(name, [], source=path, gaps=[Gap(source, why)])


def function_records(fns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``functions`` frame's records of the Management API's FunctionResponse list (also a world's, in tests)."""
    return [
        {
            "function_id": f["id"],
            "slug": f["slug"],
            "name": f.get("name"),
            "status": f.get("status"),
            "version": f.get("version"),
            "created_at": f.get("created_at"),
            "updated_at": f.get("updated_at"),
            "verify_jwt": f.get("verify_jwt"),
        }
        for f in fns
    ]


def fetch_functions(session: Session) -> pd.DataFrame:
    if not session.supabase.management:
        return _unreadable("functions", "supabase.functions", "supabase GET /v1/projects/{ref}/functions")
    return make_frame(
        "functions",
        function_records(session.supabase.list_functions()),
        units={"created_at": SUPABASE_FUNCTION_UNIT, "updated_at": SUPABASE_FUNCTION_UNIT},
        source="supabase GET /v1/projects/{ref}/functions",
    )


_FN_LOG_COLUMNS = {
    "function_edge_logs": ", ".join(
        [
            "id, timestamp, event_message",
            "log_attributes['function_id'] as function_id",
            "log_attributes['execution_id'] as execution_id",
            "log_attributes['response.status_code'] as status_code",
            "log_attributes['execution_time_ms'] as execution_time_ms",
        ]
    ),
    "function_logs": ", ".join(
        [
            "id, timestamp, event_message, severity_text",
            "log_attributes['function_id'] as function_id",
            "log_attributes['execution_id'] as execution_id",
            "log_attributes['level'] as level",
            "log_attributes['event_type'] as event_type",
        ]
    ),
}
# Supabase pricing, "log retention" (PLATFORM.md): how long each plan keeps function logs.
LOG_RETENTION_DAYS = {"free": 1, "pro": 7, "team": 28, "enterprise": 90}


def fetch_function_logs(
    session: Session,
    since: pd.Timestamp,
    until: pd.Timestamp,
    *,
    functions: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
    sources: tuple[str, ...] = ("function_edge_logs", "function_logs"),
    max_queries: int = 400,
    retention: bool = True,
) -> pd.DataFrame:
    """Function invocations and console output in [since, until], every row the plan still keeps.

    Each query is bounded by source, a ≤ 24 h window (both bounds always sent) and
    a LIMIT, and pages by time as Supabase advises: newest first, then a keyset on
    the oldest row read (its timestamp, then its id), so rows that share one
    microsecond are neither skipped nor read twice, however many there are. Past a
    full first page, the rest is read in time slices side by side (:mod:`vyxops.fetch.logreads`).

    Logs older than the plan's retention are gone without a trace, so the part of
    the window before it is a Gap (source ``supabase.function_logs``). The plan is
    read from the project's organization; when it cannot be read, the shortest
    retention any plan keeps (Free's day) is assumed, since missing logs must not
    pass for a quiet past.

    The sources and the plan are read side by side, each source with its share of
    ``max_queries``. ``functions`` (to name each row's function) may be a call made
    alongside them. ``retention=False`` reads the rows alone: the caller reads the plan
    where it holds up nothing (:func:`retention_gaps`) and adds it (:func:`with_retention`).
    """
    if until <= since:
        raise InputError(
            "--since/--until", f"the window is empty ({iso(since)} .. {iso(until)})", allowed="since < until"
        )
    share = max(1, max_queries // max(1, len(sources)))
    query = session.supabase.query_logs
    calls: dict[str, Callable[[], Any]] = {
        source: functools.partial(read_source, query, _FN_LOG_COLUMNS[source], source, since, until, share)
        for source in sources
    }
    if retention:
        calls["plan gaps"] = lambda: retention_gaps(session, since, until)
    if callable(functions):
        calls["functions"] = functions
    got = fanout.gather(calls)
    named = got.get("functions") if callable(functions) else functions
    slugs = {} if named is None else dict(zip(named["function_id"], named["slug"]))
    records = [function_log_record(r, source, slugs) for source in sources for r in got[source][0]]
    complete = all(got[source][1] for source in sources)
    df = make_frame(
        "function_logs",
        records,
        units={"time": SUPABASE_LOG_UNIT},  # a row's timestamp: RFC 3339-like text, or µs as a number or digits
        source="supabase GET /v1/projects/{ref}/analytics/endpoints/logs",
        complete=complete,
        note=f"stopped after {max_queries} queries" if not complete else "",
    )
    attrs = dict(df.attrs)
    df = df.sort_values("time", kind="stable").reset_index(drop=True)
    df.attrs.update(attrs)
    return with_retention(df, got["plan gaps"]) if retention else df


def with_retention(logs: pd.DataFrame, gaps: list[Gap]) -> pd.DataFrame:
    """``logs`` (read with ``retention=False``) with the plan's retention gaps: incomplete when there are any,
    as :func:`fetch_function_logs` reading both would have made it (its note says so unless it stopped early)."""
    if not gaps:
        return logs
    out = logs.copy()
    if out.attrs.get("complete", True):
        out.attrs["note"] = "; ".join(n for n in ("past the plan's retention", str(out.attrs.get("note") or "")) if n)
    out.attrs["gaps"] = [*out.attrs.get("gaps", []), *(g.as_json() for g in gaps)]
    out.attrs["complete"] = False
    log.info("%s: incomplete: %s", "function_logs", out.attrs["note"])
    return out


def retention_gaps(session: Session, since: pd.Timestamp, until: pd.Timestamp) -> list[Gap]:
    """A Gap for the part of [since, until] older than the plan keeps function logs (none when all is kept)."""
    plan = session.supabase.organization_plan()
    days = LOG_RETENTION_DAYS.get(plan or "")
    if days is None:
        days = min(LOG_RETENTION_DAYS.values())
        reason = (
            f"the project's plan could not be read ({plan or 'no answer'}): assuming the shortest retention "
            f"any plan keeps ({days} day)"
        )
    else:
        reason = f"the project's organization is on the {plan} plan, which keeps function logs {days} days"
    kept_from = session.now() - pd.Timedelta(days=days)
    if since >= kept_from:
        return []
    why = (
        f"{reason}; logs before {iso(kept_from)} are gone from the logs endpoint, which is not evidence that "
        "nothing happened (a log drain keeps them; a provisioning probe gathers fresh evidence)"
    )
    return [Gap("supabase.function_logs", why, iso(since), iso(min(kept_from, until)))]


def function_log_record(r: dict[str, Any], source: str, slugs: dict[str, str]) -> dict[str, Any]:
    """One ``function_logs`` record from a logs row in the shape ``_FN_LOG_COLUMNS`` selects.

    ``slugs`` maps function ids to slugs. Map values arrive as strings
    (``Map(String, String)``); numbers that are not digits become null.
    """

    def number(value: Any) -> int | None:
        return int(value) if str(value or "").isdigit() else None

    function_id = r.get("function_id")
    return {
        "time": r["timestamp"],
        "source": source,
        "log_id": r["id"],
        "function_id": r.get("function_id") or None,
        "function": slugs.get(function_id) if isinstance(function_id, str) else None,
        "execution_id": r.get("execution_id") or None,
        "level": r.get("level") or (r.get("severity_text") or "").lower() or None,
        "event_type": r.get("event_type") or None,
        "status_code": number(r.get("status_code")),
        "duration_ms": number(r.get("execution_time_ms")),
        "message": (r.get("event_message") or "").rstrip("\n"),
    }

"""One event table from every source: what happened, in what order (plaso/Timesketch style).

Every row is one timed event: ``time`` (UTC ns), ``source`` (where it was read),
``kind`` (what the time means), ``message`` (what a person reads) and ``key`` (the
raw record it came from). One record may yield several events (a DB row: created
and last updated).

Conventions other modules rely on (detectors, :mod:`vyxops.views.plot`), by source and kind:

``fly.machines``, ``machine.created`` (only for machines with no ``launch`` event)
    ``machine <id> created in <region> with image <ref> (state <state>)``
``fly.events``, ``machine.<event type>``
    ``machine <id> launched in <region> with image <ref>``, ``machine <id> started``,
    ``machine <id> exited with code <n> (requested_stop=<bool>)[ (oom killed)]``,
    ``machine <id> destroyed``, ``machine <id> failed to launch: <error>``
``fly.releases``, ``release.created``
    ``release v<N> created: <image> by <user>``  (entity ``v<N>``)
``fly.logs``, ``fly.log``
    the log line (entity = the instance, i.e. the machine id)
``supabase.rows``, ``db.row.created``
    ``row <id> for machine <mid> created with status <s>`` when never updated;
    ``row <id> for machine <mid> created`` otherwise
``supabase.rows``, ``db.row.updated``
    ``row <id> for machine <mid> updated to status <s>[ (error: <e>)]``
``supabase.secrets``, ``secret.updated``
    ``secret <NAME> updated (digest <8 hex>…)``
``supabase.functions``, ``function.deployed`` / ``function.updated`` / ``function.restarted``
    ``function <slug> deployed (version <n>, <STATUS>)``; ``function.restarted`` is a version bump at,
    or within :data:`SECRET_RESTART_S` after, a secret's ``updated_at``: a secret write restarts every
    function and bumps its version (Supabase knowledge base, "Edge Function versions increment across
    all functions after updating secrets"), which is not a redeploy:
    ``function <slug> restarted by a secret write (<NAME>), now version <n> — not a redeploy``.
    Secrets without ``updated_at`` (optional in the API) make no such claim: the bump stays ``function.updated``.
``supabase.edge_logs``, ``function.invoked``
    ``<slug> invoked: <HTTP status>[ in <n> ms]``
``supabase.function_logs``, ``function.log``
    the console line

``entity_type`` is machine, release, secret, db_row, function or app (a Fly log
line with no instance). ``app`` is null for project-wide events (secrets,
functions, function logs). ``key`` is ``<source>:<raw id>``, e.g.
``fly.events:<machine id>:<event id>``, ``supabase.rows:<table>:<row id>:created``,
``supabase.edge_logs:<log id>``, ``fly.logs:<app>:<instance>:<ns>``.

Structured fields say what the message says, so nothing parses a message back:
``machine_id`` (the machine an event, a DB row or a log line is about), ``status``
(the machine state, the row status, an invocation's HTTP status) and ``exit_code``
(null when not an exit, or when fly-go left a 0 out: "exit code not reported").

``function.invoked`` is timed by the edge log, which the platform writes when the
response is sent: it follows the function's own console lines and, for
the provisioning function, the ``machine.launch`` of the machine it created. The message
says how long the invocation took (``execution_time_ms``), so its start can be read
off too.

Registry manifests carry no push time, so they yield no events. Events without a
time cannot be placed and are dropped; ``attrs["untimed"]`` counts them.

Built column-wise with pyarrow compute (no per-row Python), one concat, one sort.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vyxops.core.errors import InputError
from vyxops.core.timeutil import to_utc
from vyxops.fetch.frames import SCHEMAS

TIME: Final = "datetime64[ns, UTC]"  # Final: pandas-stubs accept astype(...) by literal name
TIMELINE_SCHEMA: dict[str, str] = {
    "time": TIME,
    "source": "string",
    "app": "string",
    "entity_type": "string",
    "entity": "string",
    "kind": "string",
    "message": "string",
    "key": "string",
    "machine_id": "string",  # the machine the event is about (its events, its DB row, its log lines)
    "status": "string",  # the state or status the event leaves: machine state, row status, HTTP status
    "exit_code": "Int64",  # an exit event's code; null when not an exit or not reported (fly-go omits 0)
}
SORT_KEYS = ("time", "source", "entity", "kind")
DEDUP_KEYS = ("time", "source", "entity", "kind", "message")

_L = pa.large_string()
_TS = pa.timestamp("ns", tz="UTC")
_ARROW_TYPES = {TIME: _TS, "string": _L, "Int64": pa.int64()}
_ARROW_SCHEMA = pa.schema([(c, _ARROW_TYPES[t]) for c, t in TIMELINE_SCHEMA.items()])

# Machine event type -> the verb a person reads; an unknown type reads "event <type>".
_MACHINE_VERBS = {
    "launch": "launched",
    "start": "started",
    "exit": "exited",
    "destroy": "destroyed",
    "launch_failed": "failed to launch",
    "stop": "stopped",
    "restart": "restarted",
    "update": "updated",
    "suspend": "suspended",
    "create": "created",
}

# --------------------------------------------------------------------------- arrow helpers


def _s(text: str) -> pa.Scalar:
    return pa.scalar(text, _L)


def _str(df: pd.DataFrame, column: str) -> pa.Array:
    """A frame's column as large_string (nulls kept), whatever its pandas dtype."""
    values = df[column]
    if isinstance(values.dtype, pd.StringDtype) or values.dtype == object:
        arr = pa.array(values, from_pandas=True)
    else:  # numbers, booleans: their text ("0", "true")
        arr = pc.cast(pa.array(values, from_pandas=True), pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr if arr.type == _L else pc.cast(arr, _L)


def _time(df: pd.DataFrame, column: str) -> pa.Array:
    """A time column as timestamp[ns, UTC], whatever resolution the frame used."""
    values = df[column]
    if str(values.dtype) != TIME:
        values = pd.to_datetime(values, utc=True).astype(TIME)
    arr = pa.array(values, from_pandas=True)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _join(*parts: Any) -> pa.Array:
    """Concatenate strings element-wise; null if any part is null (see :func:`_opt`)."""
    return pc.binary_join_element_wise(*[_s(p) if isinstance(p, str) else p for p in parts], _s(""))


def _opt(*parts: Any) -> pa.Array:
    """Like :func:`_join`, but an empty string where any part is null: optional phrases."""
    return pc.fill_null(_join(*parts), _s(""))


def _or(arr: pa.Array, default: str | pa.Array | Callable[[], pa.Array]) -> pa.Array:
    """``arr`` with nulls replaced by ``default`` (a callable default is built only if needed)."""
    if arr.null_count == 0:
        return arr
    if callable(default):
        default = default()
    return pc.fill_null(arr, _s(default) if isinstance(default, str) else default)


def _map_values(arr: pa.Array, mapping: Callable[[str | None], str]) -> pa.Array:
    """Apply a Python function to each *distinct* value only (low-cardinality columns)."""
    encoded = pc.dictionary_encode(arr)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    dictionary = pa.array([mapping(v) for v in encoded.dictionary.to_pylist()], _L)
    mapped = pc.take(dictionary, encoded.indices)
    return pc.if_else(pc.is_null(encoded.indices), _s(mapping(None)), mapped)


def block(n: int, **columns: Any) -> pa.Table:
    """``n`` events in the timeline schema (a source's events are blocks); a str value is a constant column."""
    arrays = []
    for field in _ARROW_SCHEMA:
        value = columns.get(field.name)
        if value is None:
            arrays.append(pa.nulls(n, field.type))
        elif isinstance(value, str):
            arrays.append(pa.repeat(_s(value), n))
        else:
            arrays.append(value if value.type == field.type else pc.cast(value, field.type))
    return pa.Table.from_arrays(arrays, schema=_ARROW_SCHEMA)


def _only(mask: pa.Array) -> Callable[[pa.Array], pa.Array]:
    """A filter of a block's arrays to the rows ``mask`` keeps."""
    return lambda a: pc.filter(a, mask)


def usable(name: str, df: pd.DataFrame | None) -> bool:
    """Whether frame ``name`` has events to place; one lacking a column of its schema is an InputError."""
    if df is None or len(df) == 0:
        return False
    missing = [c for c in SCHEMAS[name] if c not in df.columns]
    if missing:
        raise InputError(name, f"frame {name!r} lacks columns {missing}", allowed=list(SCHEMAS[name]))
    return True


# --------------------------------------------------------------------------- one builder per source


def _machine_keys(df: pd.DataFrame) -> pa.Array:
    return _join(_or(_str(df, "app"), ""), ":", _or(_str(df, "machine_id"), ""))


def machines_block(machines: pd.DataFrame, machine_events: pd.DataFrame | None) -> pa.Table | None:
    """machine.created, only for machines whose launch is not among the events (no double count)."""
    keep = pa.repeat(pa.scalar(True), len(machines))
    if machine_events is not None and len(machine_events):
        is_launch = pc.equal(_str(machine_events, "type"), _s("launch"))
        launched = pc.filter(_machine_keys(machine_events), _or_false(is_launch))
        keep = pc.invert(pc.is_in(_machine_keys(machines), value_set=launched))
    if not pc.any(keep).as_py():
        return None
    df = machines[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
    mid = _or(_str(df, "machine_id"), "?")
    message = _join(
        "machine ",
        mid,
        " created",
        _opt(" in ", _str(df, "region")),
        _opt(" with image ", _str(df, "image")),
        _opt(" (state ", _str(df, "state"), ")"),
    )
    return block(
        len(df),
        time=_time(df, "created_at"),
        source="fly.machines",
        app=_str(df, "app"),
        entity_type="machine",
        entity=mid,
        kind="machine.created",
        message=message,
        key=_join("fly.machines:", mid, ":created"),
        machine_id=mid,
        status=_str(df, "state"),
    )


def _or_false(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, pa.scalar(False))


def events_block(events: pd.DataFrame, machines: pd.DataFrame | None) -> pa.Table:
    """machine.<type> for every machine event; exit code, error and image in the message."""
    mid = _or(_str(events, "machine_id"), "?")
    etype = _str(events, "type")
    verb = _map_values(etype, lambda t: "had an event" if t is None else _MACHINE_VERBS.get(t, f"event {t}"))
    is_exit = _or_false(pc.equal(etype, _s("exit")))
    is_launch = _or_false(pc.equal(etype, _s("launch")))
    code = _str(events, "exit_code")
    exit_details = _join(
        pc.if_else(pc.is_null(code), _s(" (exit code not reported)"), _join(" with code ", _or(code, ""))),
        " (requested_stop=",
        _or(_str(events, "requested_stop"), "?"),
        ")",
        pc.if_else(
            _or_false(pc.cast(pa.array(events["oom_killed"], from_pandas=True), pa.bool_())),
            _s(" (oom killed)"),
            _s(""),
        ),
    )
    launch_details = pa.repeat(_s(""), len(events))
    if machines is not None and len(machines):
        # The launch event carries no image: borrow region and image from the machine itself.
        at = pc.index_in(_machine_keys(events), value_set=_machine_keys(machines))
        where = _opt(" in ", pc.take(_str(machines, "region"), at))
        image = _opt(" with image ", pc.take(_str(machines, "image"), at))
        launch_details = _join(where, image)
    details = pc.if_else(is_exit, exit_details, pc.if_else(is_launch, launch_details, _s("")))
    message = _join("machine ", mid, " ", verb, details, _opt(": ", _str(events, "error")))
    kind = _join("machine.", _or(etype, "unknown"))
    key = _join("fly.events:", mid, ":", _or(_str(events, "event_id"), lambda: _str(events, "time")))
    return block(
        len(events),
        time=_time(events, "time"),
        source="fly.events",
        app=_str(events, "app"),
        entity_type="machine",
        entity=mid,
        kind=kind,
        message=message,
        key=key,
        machine_id=mid,
        status=_str(events, "status"),
        exit_code=pa.array(events["exit_code"], type=pa.int64(), from_pandas=True),
    )


def releases_block(releases: pd.DataFrame) -> pa.Table:
    version = _join("v", _or(_str(releases, "version"), "?"))
    image = _str(releases, "image")
    message = _join(
        "release ",
        version,
        " created",
        pc.if_else(pc.is_null(image), _s(" (no image)"), _opt(": ", image)),
        _opt(" by ", _str(releases, "user")),
    )
    return block(
        len(releases),
        time=_time(releases, "created_at"),
        source="fly.releases",
        app=_str(releases, "app"),
        entity_type="release",
        entity=version,
        kind="release.created",
        message=message,
        key=_join("fly.releases:", _or(_str(releases, "app"), ""), ":", version),
    )


def fly_logs_block(logs: pd.DataFrame) -> pa.Table:
    instance = _str(logs, "instance")
    app = _str(logs, "app")
    has_instance = pc.is_valid(instance)
    time = _time(logs, "time")
    # No log id exists: the ns timestamp (Fly's own cursor unit) names the line.
    key = _join("fly.logs:", _or(app, ""), ":", _or(instance, ""), ":", pc.cast(pc.cast(time, pa.int64()), _L))
    return block(
        len(logs),
        time=time,
        source="fly.logs",
        app=app,
        entity_type=pc.if_else(has_instance, _s("machine"), _s("app")),
        entity=pc.if_else(has_instance, instance, app),
        kind="fly.log",
        message=_or(_str(logs, "message"), ""),
        key=key,
        machine_id=instance,
    )


def rows_blocks(rows: pd.DataFrame) -> list[pa.Table]:
    rid = _or(_str(rows, "id"), "?")
    who = _join("row ", rid, _opt(" for machine ", _str(rows, "machine_id")))
    status = _or(_str(rows, "status"), "unknown")
    created, updated = _time(rows, "created_at"), _time(rows, "updated_at")
    changed = _or_false(pc.not_equal(created, updated))
    table = _or(_str(rows, "table"), "")
    app = _str(rows, "app")
    # The frame holds only the row's current status: a row updated since it was
    # made does not say what status it was created with, so its message does not guess.
    created_msg = _join(who, " created", pc.if_else(changed, _s(""), _join(" with status ", status)))
    blocks = [
        block(
            len(rows),
            time=created,
            source="supabase.rows",
            app=app,
            entity_type="db_row",
            entity=rid,
            kind="db.row.created",
            message=created_msg,
            key=_join("supabase.rows:", table, ":", rid, ":created"),
            machine_id=_str(rows, "machine_id"),
            status=pc.if_else(changed, pa.nulls(len(rows), _L), status),
        )
    ]
    if pc.any(changed).as_py():
        mask = changed
        f = _only(mask)
        message = _join(f(who), " updated to status ", f(status), _opt(" (error: ", f(_str(rows, "error")), ")"))
        blocks.append(
            block(
                int(pc.sum(mask).as_py()),
                time=f(updated),
                source="supabase.rows",
                app=f(app),
                entity_type="db_row",
                entity=f(rid),
                kind="db.row.updated",
                message=message,
                key=_join("supabase.rows:", f(table), ":", f(rid), ":updated"),
                machine_id=f(_str(rows, "machine_id")),
                status=f(status),
            )
        )
    return blocks


def secrets_block(secrets: pd.DataFrame) -> pa.Table:
    name = _or(_str(secrets, "name"), "?")
    digest = pc.utf8_slice_codeunits(_str(secrets, "digest"), 0, 8)
    message = _join("secret ", name, " updated", _opt(" (digest ", digest, "…)"))
    return block(
        len(secrets),
        time=_time(secrets, "updated_at"),
        source="supabase.secrets",
        entity_type="secret",
        entity=name,
        kind="secret.updated",
        message=message,
        key=_join("supabase.secrets:", name, _opt(":", digest)),
    )


#: How long after a secret's ``updated_at`` a function's version bump is read as the restart the
#: write caused: the platform restarts every function as part of the write, so their times agree to
#: within seconds (the sandbox stamps both with one clock reading).
SECRET_RESTART_S = 10


def _restarted_by(updated: pa.Array, secrets: pd.DataFrame | None) -> tuple[pa.Array, pa.Array]:
    """For each function update time: whether a secret write explains it, and that secret's name."""
    n = len(updated)
    none = (pa.repeat(pa.scalar(False), n), pa.nulls(n, _L))
    if secrets is None or not usable("secrets", secrets):
        return none
    known = secrets.dropna(subset=["updated_at"]).sort_values("updated_at")
    if known.empty:
        return none
    writes = pd.to_datetime(known["updated_at"], utc=True).astype(TIME).to_numpy(dtype="datetime64[ns]")
    names = known["name"].astype(object).to_numpy()
    times = updated.to_numpy(zero_copy_only=False).astype("datetime64[ns]")
    at = np.searchsorted(writes, times, side="right") - 1  # the last write at or before each update
    ok = (at >= 0) & ~np.isnat(times)
    lag = times - writes[np.clip(at, 0, None)]
    ok &= lag <= np.timedelta64(SECRET_RESTART_S, "s")
    name = [str(names[i]) if hit else None for i, hit in zip(at, ok, strict=True)]
    return pa.array(ok), pa.array(name, _L)


def functions_blocks(functions: pd.DataFrame, secrets: pd.DataFrame | None = None) -> list[pa.Table]:
    slug = _or(_str(functions, "slug"), lambda: _or(_str(functions, "function_id"), "?"))
    fid = _or(_str(functions, "function_id"), slug)
    version, status = _str(functions, "version"), _str(functions, "status")
    created, updated = _time(functions, "created_at"), _time(functions, "updated_at")
    blocks = [
        block(
            len(functions),
            time=created,
            source="supabase.functions",
            entity_type="function",
            entity=slug,
            kind="function.deployed",
            message=_join("function ", slug, " deployed", _opt(" (version ", version, _opt(", ", status), ")")),
            key=_join("supabase.functions:", fid, ":deployed"),
        )
    ]
    changed = _or_false(pc.not_equal(created, updated))
    if not pc.any(changed).as_py():
        return blocks
    by_secret, secret = _restarted_by(updated, secrets)
    for mask, kind in (
        (pc.and_(changed, pc.invert(by_secret)), "function.updated"),
        (pc.and_(changed, by_secret), "function.restarted"),
    ):
        if not pc.any(mask).as_py():
            continue
        f = _only(mask)
        if kind == "function.updated":
            message = _join(
                "function ", f(slug), " updated", _opt(" to version ", f(version)), _opt(" (", f(status), ")")
            )
        else:
            message = _join(
                "function ", f(slug), " restarted by a secret write (", f(secret), ")",
                _opt(", now version ", f(version)), " — not a redeploy",
            )  # fmt: skip
        blocks.append(
            block(
                int(pc.sum(mask).as_py()),
                time=f(updated),
                source="supabase.functions",
                entity_type="function",
                entity=f(slug),
                kind=kind,
                message=message,
                key=_join("supabase.functions:", f(fid), ":", kind.split(".")[1]),
            )
        )
    return blocks


def function_logs_blocks(logs: pd.DataFrame) -> list[pa.Table]:
    source = _str(logs, "source")
    slug = _or(_str(logs, "function"), lambda: _or(_str(logs, "function_id"), "function"))
    log_id = _or(_str(logs, "log_id"), lambda: _str(logs, "time"))
    time = _time(logs, "time")
    is_edge = _or_false(pc.equal(source, _s("function_edge_logs")))
    blocks = []
    for mask, src, kind in (
        (is_edge, "supabase.edge_logs", "function.invoked"),
        (pc.invert(is_edge), "supabase.function_logs", "function.log"),
    ):
        count = int(pc.sum(mask).as_py() or 0)
        if not count:
            continue
        f = _only(mask)
        status = None
        if kind == "function.invoked":
            took = _opt(" in ", f(_str(logs, "duration_ms")), " ms")  # nothing when unknown
            status = f(_str(logs, "status_code"))
            message = _join(f(slug), " invoked: ", _or(status, "?"), took)
        else:
            message = _or(f(_str(logs, "message")), "")
        blocks.append(
            block(
                count,
                time=f(time),
                source=src,
                entity_type="function",
                entity=f(slug),
                kind=kind,
                message=message,
                key=_join(f"{src}:", f(log_id)),
                status=status,
            )
        )
    return blocks


# --------------------------------------------------------------------------- public API


def empty_timeline() -> pd.DataFrame:
    """A timeline with no events, in :data:`TIMELINE_SCHEMA`."""
    return _to_pandas(_ARROW_SCHEMA.empty_table())


def merge_blocks(blocks: list[pa.Table]) -> pd.DataFrame:
    """One timeline from ``blocks``: untimed events dropped, sorted stably by SORT_KEYS, repeats kept once."""
    table = pa.concat_tables(blocks)
    timed = pc.is_valid(table["time"])
    untimed = len(table) - int(pc.sum(timed).as_py() or 0)
    if untimed:
        table = table.filter(timed)
    order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in SORT_KEYS])  # stable
    table = table.take(order)
    table, duplicates = _drop_repeats(table)
    out = _to_pandas(table)
    out.attrs.update({"frame": "timeline", "untimed": untimed, "duplicates": duplicates})
    return out


def _equal_to_previous(col: pa.Array, key: str, n: int) -> pa.Array:
    """Row i+1 of ``col`` equals row i (two nulls: equal, except for times)."""
    return pc.fill_null(pc.equal(col.slice(1), col.slice(0, n - 1)), pa.scalar(key != "time"))


def _drop_repeats(table: pa.Table) -> tuple[pa.Table, int]:
    """Drop repeats of (time, source, entity, kind, message), keeping the first.

    Repeats share the sort keys, so they sit in runs of equal keys: only rows in such
    runs (rare) are compared on the message, which keeps this cheap on big timelines.
    """
    n = len(table)
    if n < 2:
        return table, 0
    same = functools.reduce(pc.and_, (_equal_to_previous(table[k].combine_chunks(), k, n) for k in SORT_KEYS))
    same_prev = np.asarray(same.to_numpy(zero_copy_only=False), dtype=np.bool_)  # row i+1 ties with row i
    if not same_prev.any():
        return table, 0
    in_run = np.zeros(n, dtype=bool)
    in_run[1:] |= same_prev
    in_run[:-1] |= same_prev
    candidates = np.flatnonzero(in_run)
    sub = table.select(list(DEDUP_KEYS)).take(pa.array(candidates)).to_pandas()
    repeated = candidates[sub.duplicated(subset=list(DEDUP_KEYS), keep="first").to_numpy()]
    if not len(repeated):
        return table, 0
    keep = np.ones(n, dtype=bool)
    keep[repeated] = False
    return table.filter(pa.array(keep)), int(len(repeated))


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    string = pd.StringDtype("pyarrow")
    df: pd.DataFrame = table.to_pandas(types_mapper={_L: string, pa.string(): string, pa.int64(): pd.Int64Dtype()}.get)
    df["time"] = df["time"].astype(TIME)  # keeps ns even if pandas would pick another unit
    return df.reset_index(drop=True)


def filter_timeline(
    tl: pd.DataFrame,
    *,
    app: str | None = None,
    machine_id: str | None = None,
    since: Any = None,
    until: Any = None,
) -> pd.DataFrame:
    """The events of ``tl`` that match every filter given, in the same order, index reset.

    - ``app``: events of that app, plus project-wide events that belong to no app
      (secrets, functions, function logs), because they explain what an app saw.
    - ``machine_id``: events whose entity is the machine, or whose message names it
      (its DB row, the function's "Created machine …" line, its log lines).
    - ``since``/``until``: inclusive bounds, anything :func:`vyxops.core.timeutil.to_utc` reads.
    """
    mask = pd.Series(True, index=tl.index)
    if app is not None:
        mask &= (tl["app"] == app).fillna(True)
    if machine_id is not None:
        # a function's console line ("Created machine …") names it only in its text
        mentions = tl["message"].str.contains(machine_id, regex=False).fillna(False)
        mask &= (tl["machine_id"] == machine_id).fillna(False) | (tl["entity"] == machine_id).fillna(False) | mentions
    if since is not None:
        mask &= tl["time"] >= _bound(since, "since")
    if until is not None:
        mask &= tl["time"] <= _bound(until, "until")
    return tl[mask.astype(bool)].reset_index(drop=True)


def _bound(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = to_utc(value, "ms")
    except (ValueError, TypeError) as exc:
        raise InputError(
            name, f"{value!r} is not a time ({exc})", allowed="RFC 3339, e.g. 2025-10-02T16:00:00Z"
        ) from None
    if ts is None:
        raise InputError(name, "no time given", allowed="RFC 3339, e.g. 2025-10-02T16:00:00Z")
    return ts

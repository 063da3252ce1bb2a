"""The sandbox's Supabase logs endpoint: ClickHouse SQL run on DuckDB.

``GET /v1/projects/{ref}/analytics/endpoints/logs?sql=…`` runs ClickHouse-dialect
SQL over one table ``logs`` (reference: ``/work/shared/reference/supabase/
logs-endpoint-*.json``). The sandbox runs the query on a real engine rather
than matching strings: sqlglot parses the ClickHouse dialect, a few expression
transforms fix what its DuckDB output gets wrong, DuckDB macros stand in for
ClickHouse functions DuckDB lacks, and an in-memory DuckDB holds only the rows
inside the request window.

Rules modelled from the real endpoint (each refusal is a :class:`LogQueryError`
with status 400):

- the window comes from ``iso_timestamp_start`` / ``iso_timestamp_end``, never
  from the SQL: neither bound → the last minute before the sandbox clock; only a
  start → up to now; only an end → the minute before it; each bound is rounded to
  the nearest minute (the spec: "is rounded to the nearest minute", a half minute
  rounds up); longer than 24 h once rounded → refused; both bounds inclusive;
- only one SELECT over ``logs`` (CTEs and subqueries allowed);
- ``select *`` and ``count(*)`` are refused (use a column list and ``count()``);
- a missing map key reads as ``''``, like ClickHouse's Map, not NULL;
- ``now()`` is the sandbox clock, not the wall clock.

Not modelled: ClickHouse's quoting of
64-bit integers as JSON strings (ints stay ints here), case-sensitive
identifiers, and ClickHouse's column naming for unaliased ``m['k']``
subscripts (named here as written; always alias).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import itertools
import threading
import uuid
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, TokenError

__all__ = ["LogQueryError", "run_logs_query"]

TABLE = "logs"
MAP_COLUMN = "log_attributes"
MINUTE_US = 60 * 1_000_000
DEFAULT_WINDOW_US = 60 * 1_000_000  # OpenAPI: "only the last 1 minute of logs will be queried"
MAX_WINDOW_US = 24 * 3600 * 1_000_000  # OpenAPI: "no more than 24 hours"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"  # documented rendering: 2026-06-22T09:34:06.215000

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1)


class LogQueryError(Exception):
    """The endpoint refuses the query: ``.status`` is the HTTP status to answer (400: invalid), str() the message."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.message = message
        self.status = status
        super().__init__(message)


# --------------------------------------------------------------------------- window


def _parse_iso_us(name: str, value: str) -> int:
    """Return ``value`` (ISO 8601, ``Z``/offset or naive meaning UTC) as unix µs; refuse anything else."""
    try:
        parsed = _dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise LogQueryError(f"{name}: not an ISO 8601 date-time: {value!r}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(_UTC).replace(tzinfo=None)
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _round_to_minute(us: int) -> int:
    """``us`` rounded to the nearest whole minute (a half minute rounds up)."""
    return (us + MINUTE_US // 2) // MINUTE_US * MINUTE_US


def _resolve_window(start: str | None, end: str | None, now_ms: int) -> tuple[int, int]:
    """Return the request window as inclusive unix µs bounds, or refuse it like the endpoint."""
    start = start or None  # an empty query parameter counts as absent
    end = end or None
    now_us = now_ms * 1000
    if start is None and end is None:
        return now_us - DEFAULT_WINDOW_US, now_us
    if start is not None and end is not None:
        start_us = _parse_iso_us("iso_timestamp_start", start)
        end_us = _parse_iso_us("iso_timestamp_end", end)
    elif start is not None:
        start_us = _parse_iso_us("iso_timestamp_start", start)
        end_us = now_us
    else:
        end_us = _parse_iso_us("iso_timestamp_end", end or "")
        start_us = end_us - DEFAULT_WINDOW_US
    start_us, end_us = _round_to_minute(start_us), _round_to_minute(end_us)
    if start_us > end_us:
        raise LogQueryError("iso_timestamp_start must be before iso_timestamp_end")
    if end_us - start_us > MAX_WINDOW_US:
        raise LogQueryError("The timestamp range must be no more than 24 hours")
    return start_us, end_us


# --------------------------------------------------------------------------- parse and check


def _short_parse_message(error: SqlglotError) -> str:
    """Return the parser's complaint in one line (sqlglot's own text carries ANSI highlighting)."""
    if isinstance(error, ParseError) and error.errors:
        first = error.errors[0]
        return f"syntax error at line {first.get('line')}, column {first.get('col')}: {first.get('description')}"
    return f"syntax error: {str(error).splitlines()[0][:200]}"


# Statements or clauses that write, or read anything but the logs table.
_FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Into,
    exp.Merge,
    exp.Set,
)


def _parse_and_check(sql: str) -> exp.Query:
    """Parse ClickHouse ``sql`` and return its one query, refusing what the endpoint refuses."""
    if not sql or not sql.strip():
        raise LogQueryError("sql is required")
    try:
        statements = [s for s in sqlglot.parse(sql, read="clickhouse") if s is not None]
    except (ParseError, TokenError) as error:
        raise LogQueryError(_short_parse_message(error)) from None
    if len(statements) != 1:
        raise LogQueryError("exactly one SELECT statement is allowed")
    root = statements[0]
    if not isinstance(root, exp.Query):
        raise LogQueryError(f"only SELECT statements are allowed, got {root.key.upper()}")

    for node in root.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise LogQueryError(f"only SELECT statements are allowed, found {node.key.upper()}")
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            raise LogQueryError("select * is not allowed: list the columns you need")
        if isinstance(node, exp.Count) and isinstance(node.this, exp.Star):
            raise LogQueryError("count(*) is not allowed: use count()")

    cte_names = {cte.alias_or_name for cte in root.find_all(exp.CTE)}
    for table in root.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            # e.g. `from numbers(10)` or `from file('x')`: table functions read elsewhere
            raise LogQueryError(f"only the `{TABLE}` table can be queried, not {table.this.sql('clickhouse')}")
        qualified = table.db or table.catalog
        if qualified or table.name not in ({TABLE} | cte_names):
            shown = ".".join(p for p in (table.catalog, table.db, table.name) if p)
            raise LogQueryError(f"only the `{TABLE}` table can be queried, not `{shown}`")
    return root


# --------------------------------------------------------------------------- ClickHouse -> DuckDB


def _first_select(query: exp.Expression) -> exp.Select | None:
    """Return the SELECT whose expressions name the result columns (the left arm of a UNION)."""
    while isinstance(query, (exp.SetOperation, exp.Subquery)):
        query = query.this
    return query if isinstance(query, exp.Select) else None


def _name_outputs_like_clickhouse(root: exp.Query) -> None:
    """Alias each unaliased computed output column with its ClickHouse text (`count()`, not DuckDB's `count_star()`)."""
    select = _first_select(root)
    if select is None:
        return
    named: list[exp.Expression] = []
    for projection in select.expressions:
        if isinstance(projection, (exp.Alias, exp.Column)):
            named.append(projection)
        else:
            text = projection.sql("clickhouse", normalize_functions=False)
            named.append(exp.alias_(projection, text, quoted=True))
    select.set("expressions", named)


def _timestamp_literal(value: _dt.datetime) -> exp.Expression:
    """Return a DuckDB TIMESTAMP literal for the naive UTC ``value``."""
    return exp.cast(exp.Literal.string(value.strftime("%Y-%m-%d %H:%M:%S.%f")), exp.DataType.Type.TIMESTAMP)


def _make_transform(now_ms: int) -> Callable[[exp.Expression], exp.Expression]:
    """Return the node rewrite that turns sqlglot's ClickHouse tree into one DuckDB runs with ClickHouse semantics."""
    now = _EPOCH + _dt.timedelta(milliseconds=now_ms)

    def transform(node: exp.Expression) -> exp.Expression:
        # ClickHouse Map subscripts yield the value type's default ('') for a
        # missing key; DuckDB yields NULL, which would turn `= ''` filters and
        # JSON output into something the real endpoint never returns.
        if (
            isinstance(node, exp.Bracket)
            and isinstance(node.this, exp.Column)
            and node.this.name == MAP_COLUMN
            and len(node.expressions) == 1
        ):
            # transform() does not descend into a replaced node, so rewrite the key here.
            key = node.expressions[0].copy().transform(transform)
            subscript = exp.Bracket(this=node.this.copy(), expressions=[key])
            return exp.Coalesce(this=subscript, expressions=[exp.Literal.string("")])

        # now()/today() must read the sandbox clock: DuckDB's would be wall time.
        name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
        if isinstance(node, exp.CurrentTimestamp) or name == "now":
            return _timestamp_literal(now.replace(microsecond=0))  # ClickHouse now() is a DateTime (seconds)
        if name == "now64":
            return _timestamp_literal(now)  # the sandbox clock has ms precision
        if isinstance(node, exp.CurrentDate) or name == "today":
            return exp.cast(exp.Literal.string(now.date().isoformat()), exp.DataType.Type.DATE)
        if name == "yesterday":
            yesterday = now.date() - _dt.timedelta(days=1)
            return exp.cast(exp.Literal.string(yesterday.isoformat()), exp.DataType.Type.DATE)

        # multiIf(c1, v1, c2, v2, …, else) is variadic, which a DuckDB macro cannot be.
        if name == "multiif" and len(node.expressions) >= 3 and len(node.expressions) % 2 == 1:
            args = node.expressions
            case = exp.Case()
            for cond, value in zip(args[:-1:2], args[1:-1:2]):
                case = case.when(cond, value)
            return case.else_(args[-1])
        return node

    return transform


def _to_duckdb_sql(root: exp.Query, now_ms: int) -> str:
    """Return DuckDB SQL for the checked ClickHouse query ``root``."""
    _name_outputs_like_clickhouse(root)
    rewritten = root.transform(_make_transform(now_ms))
    try:
        return rewritten.sql("duckdb", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as error:
        raise LogQueryError(f"unsupported query: {str(error).splitlines()[0][:200]}") from None


# ClickHouse functions that sqlglot leaves as-is for DuckDB (an unknown name
# there) become DuckDB macros of the same name: DuckDB resolves function names
# case-insensitively, so `toInt32OrZero(...)` finds `toint32orzero`.
# ClickHouse's *OrZero parsers accept only a plain number; DuckDB's TRY_CAST
# rounds '12.5' to 13 and trims spaces, hence the regular expression guards.
_INT_RE = r"'^[+-]?[0-9]+$'"
_FLOAT_RE = r"'^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^[+-]?(inf|nan)$'"
_IS_INT = f"regexp_matches(CAST(x AS VARCHAR), {_INT_RE})"
_IS_FLOAT = f"regexp_matches(CAST(x AS VARCHAR), {_FLOAT_RE})"
_MACROS: tuple[str, ...] = (
    # conversions; numbers in log_attributes are strings
    f"toInt32OrZero(x) AS coalesce(CASE WHEN {_IS_INT} THEN TRY_CAST(x AS INTEGER) END, 0)",
    f"toInt64OrZero(x) AS coalesce(CASE WHEN {_IS_INT} THEN TRY_CAST(x AS BIGINT) END, 0)",
    f"toUInt32OrZero(x) AS coalesce(CASE WHEN {_IS_INT} THEN TRY_CAST(x AS UINTEGER) END, 0)",
    f"toInt32OrNull(x) AS CASE WHEN {_IS_INT} THEN TRY_CAST(x AS INTEGER) END",
    f"toInt64OrNull(x) AS CASE WHEN {_IS_INT} THEN TRY_CAST(x AS BIGINT) END",
    f"toFloat64OrZero(x) AS coalesce(CASE WHEN {_IS_FLOAT} THEN TRY_CAST(x AS DOUBLE) END, 0.0)",
    f"toFloat64OrNull(x) AS CASE WHEN {_IS_FLOAT} THEN TRY_CAST(x AS DOUBLE) END",
    "toInt32(x) AS CAST(x AS INTEGER)",
    "toInt64(x) AS CAST(x AS BIGINT)",
    "toFloat64(x) AS CAST(x AS DOUBLE)",
    "toString(x) AS CAST(x AS VARCHAR)",
    # time; ClickHouse DateTime has second precision, DateTime64 keeps the fraction
    "toUnixTimestamp64Micro(t) AS epoch_us(t)",
    "toUnixTimestamp64Milli(t) AS epoch_ms(t)",
    "toUnixTimestamp(t) AS CAST(floor(epoch(CAST(t AS TIMESTAMP))) AS BIGINT)",
    # with a zone, the wall time is read in that zone and the instant kept in UTC
    "toDateTime(x) AS date_trunc('second', CAST(x AS TIMESTAMP)),"
    " (x, tz) AS date_trunc('second', timezone('UTC', timezone(tz, CAST(x AS TIMESTAMP))))",
    "toDateTime64(x, p) AS CAST(x AS TIMESTAMP), (x, p, tz) AS timezone('UTC', timezone(tz, CAST(x AS TIMESTAMP)))",
    "toDate(x) AS CAST(x AS DATE)",
    "toStartOfFiveMinutes(t) AS time_bucket(INTERVAL 5 MINUTE, t)",
    "toStartOfTenMinutes(t) AS time_bucket(INTERVAL 10 MINUTE, t)",
    "toStartOfFifteenMinutes(t) AS time_bucket(INTERVAL 15 MINUTE, t)",
    "toStartOfInterval(t, i) AS time_bucket(i, t)",
    # maps, strings, aggregates
    "mapKeys(m) AS map_keys(m)",
    "mapValues(m) AS map_values(m)",
    "mapContains(m, k) AS map_contains(m, k)",
    "empty(s) AS (length(s) = 0)",
    "notEmpty(s) AS (length(s) > 0)",
    "positionCaseInsensitive(s, n) AS strpos(lower(s), lower(n))",
    "replaceAll(s, a, b) AS replace(s, a, b)",
    "replaceRegexpAll(s, p, r) AS regexp_replace(s, p, r, 'g')",
    "uniqExact(x) AS count(DISTINCT x)",
    "countDistinct(x) AS count(DISTINCT x)",
)


# --------------------------------------------------------------------------- engine


def _logs_arrow(rows: list[dict[str, Any]], start_us: int, end_us: int) -> pa.Table:
    """Return the rows inside ``[start_us, end_us]`` as an Arrow table with the `logs` schema, in ``rows``' order.

    The whole list is converted and indexed by time once, and kept while it only grows (a
    world appends log rows, never edits them); each query then finds its window by binary
    search and takes only the rows inside it. Converting per query made a busy day's paging
    quadratic (40 pages × 40,000 rows), and so did filtering every row for every page.
    """
    table, order, times = _indexed(rows)
    lo, hi = int(np.searchsorted(times, start_us, "left")), int(np.searchsorted(times, end_us, "right"))
    TAKEN[0] += hi - lo
    if order is None:  # the rows were appended in time order (the usual case): the window is a slice, not a copy
        return table.slice(lo, hi - lo)
    inside = np.sort(order[lo:hi])  # back in the rows' own order: a query without ORDER BY sees what it saw
    return table.take(pa.array(inside, pa.int64()))


# (the rows list, its length then, its table, row positions by time, the times in that order)
_CACHED: list[tuple[list[dict[str, Any]], int, pa.Table, np.ndarray | None, np.ndarray]] = []
#: Rows converted to Arrow, and rows handed to a query (the tests count them: a page costs its window, not the day).
CONVERTED, TAKEN = [0], [0]


def _indexed(rows: list[dict[str, Any]]) -> tuple[pa.Table, np.ndarray | None, np.ndarray]:
    """The rows' table, the row positions in time order (None when that is the rows' order), and the times."""
    for held, length, table, order, times in _CACHED:
        if held is rows and length == len(rows):
            return table, order, times
    table = _to_arrow(rows)
    CONVERTED[0] += len(rows)
    stamps = table["timestamp"].cast(pa.int64()).to_numpy()
    in_order = bool(np.all(stamps[1:] >= stamps[:-1]))
    order = None if in_order else np.argsort(stamps, kind="stable")
    times = stamps if order is None else stamps[order]
    _CACHED[:] = [c for c in _CACHED if c[0] is not rows][-3:] + [(rows, len(rows), table, order, times)]
    return table, order, times


def _to_arrow(inside: list[dict[str, Any]]) -> pa.Table:
    """The `logs` table of ``inside``'s rows."""
    # The map column is built from flat key/value arrays plus offsets: several
    # times faster than converting one list of pairs per row.
    maps = [r.get(MAP_COLUMN) or {} for r in inside]
    offsets = pa.array(list(itertools.accumulate((len(m) for m in maps), initial=0)), pa.int32())
    keys = pa.array([str(k) for m in maps for k in m], pa.string())
    values = pa.array([str(v) for m in maps for v in m.values()], pa.string())
    return pa.table(
        {
            "id": pa.array([r["id"] for r in inside], pa.string()),
            "timestamp": pa.array([r["timestamp_us"] for r in inside], pa.int64()).cast(pa.timestamp("us")),
            "event_message": pa.array([r.get("event_message") or "" for r in inside], pa.string()),
            "severity_text": pa.array([r.get("severity_text") or "" for r in inside], pa.string()),
            "source": pa.array([r.get("source") or "" for r in inside], pa.string()),
            MAP_COLUMN: pa.MapArray.from_arrays(offsets, keys, values),
        }
    )


_ENGINE: duckdb.DuckDBPyConnection | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> duckdb.DuckDBPyConnection:
    """The process's in-memory DuckDB with the ClickHouse macros, locked down; made once.

    Opening one and creating the macros cost ~20 ms, most of a query. Queries only
    ever SELECT from `logs` (``_parse_and_check``), so nothing one leaves behind
    is seen by the next; each replaces `logs` with its own window's rows.
    """
    global _ENGINE
    if _ENGINE is None:
        con = duckdb.connect(":memory:")
        try:
            # UTC so strings with offsets compare like ClickHouse's UTC column;
            # one thread so GROUP BY without ORDER BY answers in a stable order.
            con.execute("SET TimeZone = 'UTC'; SET threads = 1")
            con.execute(";".join(f"CREATE MACRO {macro}" for macro in _MACROS))
            # The query may name any DuckDB function: it must not reach files,
            # the network or settings.
            con.execute(
                "SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;"
                "SET enable_external_access = false; SET lock_configuration = true"
            )
        except BaseException:
            con.close()
            raise
        _ENGINE = con
    return _ENGINE


def _load_window(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """Make ``table`` the `logs` the next query sees: registered, not copied (DuckDB reads Arrow in place)."""
    con.register(TABLE, table)


def _json_value(value: Any) -> Any:
    """Return ``value`` as the endpoint's JSON would carry it (timestamps as documented, maps as objects)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_UTC).replace(tzinfo=None)
        return value.strftime(TIMESTAMP_FORMAT)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent == 0 else float(value)
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    return str(value)


def run_logs_query(
    rows: list[dict],
    sql: str,
    iso_timestamp_start: str | None,
    iso_timestamp_end: str | None,
    now_ms: int,
    *,
    oldest_us: int | None = None,
) -> list[dict]:
    """Run ClickHouse `sql` over `rows` restricted to the request window; return result rows as JSON-ready dicts.

    Rows outside the window, or older than ``oldest_us`` (the plan's retention), are
    invisible to the query. Result keys are the
    selected column aliases, in the order the SQL produces them. Raises
    :class:`LogQueryError` (status 400) for a bad window, a syntax error, a
    refused construct (``select *``, ``count(*)``, non-SELECT, other tables) or
    a query the engine cannot run.
    """
    start_us, end_us = _resolve_window(iso_timestamp_start, iso_timestamp_end, now_ms)
    if oldest_us is not None:
        start_us = max(start_us, oldest_us)
    root = _parse_and_check(sql)
    duck_sql = _to_duckdb_sql(root, now_ms)
    table = _logs_arrow(rows, start_us, end_us)
    with _ENGINE_LOCK:
        con = _engine()
        _load_window(con, table)
        try:
            cursor = con.execute(duck_sql)
            names = [d[0] for d in cursor.description or []]
            fetched = cursor.fetchall()
        except duckdb.Error as error:
            raise LogQueryError(f"query failed: {str(error).strip().splitlines()[0][:300]}") from None
    return [{name: _json_value(value) for name, value in zip(names, record)} for record in fetched]


def warm_up() -> None:
    """Run one query of the fetchers' shape over no rows.

    sqlglot and DuckDB pay for their first use (tokenizer and dialect tables, the
    engine's catalogue): ~0.1 s. A served sandbox does this before its first
    client asks, instead of during it. Nothing in any world is read or changed.
    """
    sql = (
        "select id, timestamp, event_message, log_attributes['function_id'] as function_id from logs "
        "where source = 'function_logs' and timestamp >= '2025-01-01 00:00:00' order by timestamp desc limit 10"
    )
    run_logs_query([], sql, "2025-01-01T00:00:00Z", "2025-01-01T01:00:00Z", 1_735_693_200_000)

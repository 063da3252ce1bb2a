"""The sandbox's Supabase data plane: PostgREST and Edge Functions, over httpx.

Two handlers, one per surface, each taking the :class:`World` and an
``httpx.Request`` and answering an ``httpx.Response`` (or ``None`` when the
path is not theirs, so the router can fall through):

- :func:`handle_postgrest`   ``/rest/v1/<table>`` (the Data API, as supabase-py 2.34.1 calls it)
- :func:`handle_functions`   ``/functions/v1/<slug>`` (the Edge Functions relay)
- the Management API (``api.supabase.com``) lives in :mod:`vyxops_sandbox.management_api`

Shapes come from ``/work/shared/reference/supabase/`` (each is named where it is
used). Where the real behaviour is unknown the code says so and picks the answer
that loses no evidence and fails loudly rather than silently.

Table rows are read and written here, directly on
``world.state["supabase"]["tables"][name]["rows"]`` followed by ``world.touch()``
(DESIGN.md); everything else goes through ``World`` methods.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

from vyxops.core.shapes import is_jwt
from vyxops_sandbox.pipeline import column_defaults, update_row
from vyxops_sandbox.platform import signed_by_project
from vyxops_sandbox.postgrest_openapi import OPENAPI_CT, openapi_document
from vyxops_sandbox.world import World, pg_time

__all__ = ["MAX_ROWS", "handle_functions", "handle_postgrest"]

# GET /v1/projects/{ref}/postgrest answers max_rows 1000 (mgmt-api-recorded-cli-fixtures.json);
# PostgREST drops rows past it silently (PLATFORM.md, reference README "Key numbers").
MAX_ROWS = 1000
JSON_CT = "application/json; charset=utf-8"
OBJECT_CT = "application/vnd.pgrst.object+json; charset=utf-8"
EXPOSED_SCHEMAS = ("public", "graphql_public")  # db_schema of the recorded /postgrest fixture


# =========================================================================== shared helpers
def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _body(request: httpx.Request) -> bytes:
    try:
        return request.content
    except httpx.RequestNotRead:
        return request.read()


def _request_id(world: World, request: httpx.Request) -> str:
    """A request id shaped like a UUIDv7 (time first), derived from the clock and the request.

    Deterministic on purpose: the same session against the same scenario gives the
    same ids, so captured evidence stays byte-stable. (Real ids are random.)
    """
    h = hashlib.sha256(
        b"|".join([str(world.now_ms).encode(), request.method.encode(), str(request.url).encode(), _body(request)])
    ).hexdigest()
    t = f"{world.now_ms & 0xFFFFFFFFFFFF:012x}"
    return f"{t[:8]}-{t[8:12]}-7{h[:3]}-{'89ab'[int(h[3], 16) % 4]}{h[4:7]}-{h[7:19]}"


def _response(
    world: World,
    request: httpx.Request,
    status: int,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    content_type: str = JSON_CT,
    null: bool = False,
) -> httpx.Response:
    """A response with the JSON ``body`` (None: no body unless ``null``, a JSON null) and an ``sb-request-id``."""
    out = {"sb-request-id": _request_id(world, request)}
    content = b"" if body is None and not null else _dumps(body)
    if content:
        out["content-type"] = content_type
    out.update(headers or {})
    if request.method == "HEAD":
        content = b""
    return httpx.Response(status, headers=out, content=content, request=request)


def _read_json(request: httpx.Request) -> tuple[bool, Any]:
    """(ok, value) of the request body parsed as JSON; an empty body is not JSON."""
    raw = _body(request)
    if not raw or not raw.strip():
        return False, None
    try:
        return True, json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False, None


def _bearer(request: httpx.Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# =========================================================================== PostgREST
class _PgError(Exception):
    """A PostgREST error: ``{code, details, hint, message}`` with its HTTP status (postgrest-error-bodies.json)."""

    def __init__(
        self, status: int, code: str, message: str, details: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "details": details, "hint": hint, "message": message}


class _GatewayError(Exception):
    """The API gateway's own refusal: ``{message, hint}`` and no ``code`` (postgrest-error-bodies.json)."""

    def __init__(self, status: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"message": message, "hint": hint}


@dataclass(frozen=True)
class _Schema:
    """What PostgREST's schema cache knows of one table: its columns, their types, the enums' labels.

    Types come from the state (``tables[name]["types"]``, an enum column naming its type in
    ``supabase.enums``). A table stored without types (written by hand) falls back to the
    old convention: ``id`` uuid, ``*_at`` timestamptz, everything else text.
    """

    table: str
    columns: list[str]
    types: dict[str, str]
    labels: dict[str, list[str]]  # enum type -> its labels, in declaration order

    @classmethod
    def of(cls, world: World, name: str, table: dict[str, Any]) -> _Schema:
        types = table.get("types") or {c: _guessed_type(c) for c in table["columns"]}
        return cls(name, table["columns"], types, world.state["supabase"].get("enums") or {})

    def kind(self, column: str) -> str:
        """``uuid``, ``timestamptz``, ``enum`` or ``text``: how a value of ``column`` is read and compared."""
        t = self.types.get(column, "text")
        return "enum" if t in self.labels else t if t in ("uuid", "timestamptz") else "text"

    def enum_labels(self, column: str) -> list[str]:
        return self.labels.get(self.types.get(column, ""), [])


def _guessed_type(column: str) -> str:
    if column == "id":
        return "uuid"
    return "timestamptz" if column.endswith("_at") else "text"


_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


@functools.lru_cache(maxsize=65536)
def _parse_ts(text: str) -> datetime | None:
    """A timestamptz input as Postgres reads it (ISO 8601, ``Z`` or offset; no zone = UTC), or None."""
    value = text.strip()
    if value.endswith(("z", "Z")):
        value = value[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _render_ts(dt: datetime) -> str:
    """How PostgREST renders a timestamptz in JSON: ``2025-10-02T16:18:40.912+00:00`` (µs, zeros trimmed)."""
    dt = dt.astimezone(timezone.utc)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += "." + f"{dt.microsecond:06d}".rstrip("0")
    return text + "+00:00"


def _input_value(schema: _Schema, column: str, value: Any) -> Any:
    """A value written to ``column`` as Postgres stores it, or the 22P02/22007 error it raises."""
    if value is None:
        return None
    kind = schema.kind(column)
    if kind == "enum":
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        if text not in schema.enum_labels(column):
            # Postgres' enum_in wording (errcode 22P02), as PostgREST passes it on.
            raise _PgError(400, "22P02", f'invalid input value for enum {schema.types[column]}: "{text}"')
        return text
    if kind == "uuid":
        if not isinstance(value, str) or not _UUID_RE.match(value):
            raise _PgError(400, "22P02", f'invalid input syntax for type uuid: "{value}"')
        v = value.replace("-", "").lower()
        return f"{v[:8]}-{v[8:12]}-{v[12:16]}-{v[16:20]}-{v[20:]}"
    if kind == "timestamptz":
        dt = _parse_ts(value) if isinstance(value, str) else None
        if dt is None:
            raise _PgError(400, "22007", f'invalid input syntax for type timestamp with time zone: "{value}"')
        return _render_ts(dt)
    return value


@dataclass
class _Filter:
    column: str
    op: str
    negate: bool
    value: Any  # coerced operand: str, datetime, list, regex, or an `is` keyword
    kind: str = "text"  # the column's kind (_Schema.kind)


# PGRST100 messages below follow PostgREST's parser errors ("\"failed to parse filter (…)\" (line 1,
# column n)"); the column numbers and `details` are approximate.
_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "in", "is")
_RESERVED = {"select", "order", "limit", "offset", "columns", "on_conflict", "apikey"}
_LOGIC = {"or", "and", "not.or", "not.and"}


def _parse_in_list(text: str, raw: str) -> list[str]:
    """``(a,"b,c",d)`` → ['a', 'b,c', 'd'] (PostgREST's list syntax: double quotes, backslash escapes)."""
    if not (text.startswith("(") and text.endswith(")")):
        raise _PgError(
            400,
            "PGRST100",
            f'"failed to parse filter ({raw})" (line 1, column {len(raw) + 1})',
            details='unexpected end of input expecting "("',
        )
    inner = text[1:-1]
    items: list[str] = []
    buf = ""
    quoted = False
    i = 0
    if inner == "":
        return []
    while i < len(inner):
        ch = inner[i]
        if quoted:
            if ch == "\\" and i + 1 < len(inner):
                buf += inner[i + 1]
                i += 1
            elif ch == '"':
                quoted = False
            else:
                buf += ch
        elif ch == '"':
            quoted = True
        elif ch == ",":
            items.append(buf)
            buf = ""
        else:
            buf += ch
        i += 1
    items.append(buf)
    return items


def _like_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """SQL LIKE as a regex; PostgREST lets ``*`` stand for ``%`` in URLs."""
    out = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out += re.escape(pattern[i + 1])
            i += 1
        elif ch in "%*":
            out += ".*"
        elif ch == "_":
            out += "."
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(f"^{out}\\Z", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _operand(schema: _Schema, column: str, op: str, text: str, raw: str) -> Any:
    """The filter value typed like the column, raising what Postgres raises for a bad literal."""
    if op == "is":
        word = text.lower()
        if word not in ("null", "true", "false", "unknown", "not_null"):
            raise _PgError(
                400,
                "PGRST100",
                f'"failed to parse filter ({raw})" (line 1, column {len(raw) - len(text) + 1})',
                details='unexpected "' + text[:1] + '" expecting null or trilean value (unknown, true, false)',
            )
        return word
    if op in ("like", "ilike"):
        return _like_regex(text, op == "ilike")
    if op in ("match", "imatch"):
        try:
            return re.compile(text, re.IGNORECASE if op == "imatch" else 0)
        except re.error as exc:
            raise _PgError(400, "2201B", f"invalid regular expression: {exc}") from None
    if op == "in":
        return [_typed_operand(schema, column, v) for v in _parse_in_list(text, raw)]
    return _typed_operand(schema, column, text)


def _typed_operand(schema: _Schema, column: str, text: str) -> Any:
    """A literal compared with ``column``, cast to its type as Postgres does (an unknown enum label is 22P02)."""
    kind = schema.kind(column)
    if kind in ("uuid", "enum"):
        return _input_value(schema, column, text)
    if kind == "timestamptz":
        dt = _parse_ts(text)
        if dt is None:
            raise _PgError(400, "22007", f'invalid input syntax for type timestamp with time zone: "{text}"')
        return dt
    return text


def _cell(kind: str, value: Any) -> Any:
    """A stored value in the form filters and sorting compare (``kind`` is the column's, _Schema.kind)."""
    if value is None:
        return None
    if kind == "timestamptz" and isinstance(value, str):
        return _parse_ts(value) or value
    return value


def _compare(cell: Any, operand: Any) -> int:
    """-1/0/1 comparing a stored value with a filter operand (text operands coerce to the cell's kind)."""
    a, b = cell, operand
    if isinstance(b, str) and not isinstance(a, str):
        if isinstance(a, bool):
            b = b.lower() in ("true", "t", "yes", "on", "1")
        elif isinstance(a, (int, float)):
            try:
                b = float(b)
            except ValueError:
                raise _PgError(400, "22P02", f'invalid input syntax for type numeric: "{operand}"') from None
        else:
            a = json.dumps(a) if isinstance(a, (dict, list)) else str(a)
    if isinstance(a, datetime) != isinstance(b, datetime):
        a, b = str(a), str(b)
    try:
        return (a > b) - (a < b)
    except TypeError:
        return (str(a) > str(b)) - (str(a) < str(b))


def _test(f: _Filter, row: dict[str, Any]) -> bool | None:
    """SQL three-valued logic: None when the comparison is NULL (so neq and not.* skip NULL cells)."""
    cell = _cell(f.kind, row.get(f.column))
    result: bool | None
    if f.op == "is":
        # IS never yields NULL, so negating it is always defined.
        if f.value in ("null", "unknown"):
            result = cell is None
        elif f.value == "not_null":
            result = cell is not None
        elif cell is None:
            result = False
        elif isinstance(cell, bool):
            result = cell == (f.value == "true")
        else:
            raise _PgError(400, "42804", f"argument of IS {f.value.upper()} must be type boolean, not type text")
    elif cell is None:
        result = None
    elif f.op in ("like", "ilike", "match", "imatch"):
        text = _render_ts(cell) if isinstance(cell, datetime) else str(cell)
        result = bool(f.value.search(text)) if f.op in ("match", "imatch") else bool(f.value.match(text))
    elif f.op == "in":
        result = any(_compare(cell, v) == 0 for v in f.value)
    else:
        c = _compare(cell, f.value)
        result = {"eq": c == 0, "neq": c != 0, "gt": c == 1, "gte": c in (0, 1), "lt": c == -1, "lte": c in (0, -1)}[
            f.op
        ]
    if f.negate and result is not None:
        return not result
    return result


def _did_you_mean(name: str, options: list[str]) -> str | None:
    best = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return best[0] if best else None


def _unknown_column(table: str, column: str, columns: list[str]) -> _PgError:
    # 42703 text from postgrest-error-bodies.json ("column new_test.id8 does not exist" + a hint).
    best = _did_you_mean(column, columns)
    hint = f'Perhaps you meant to reference the column "{table}.{best}".' if best else None
    return _PgError(400, "42703", f"column {table}.{column} does not exist", hint=hint)


@dataclass
class _Query:
    table: str
    columns: list[str]
    schema: _Schema
    select: list[tuple[str, str, str | None]]  # (output key, column, cast)
    filters: list[_Filter] = field(default_factory=list)
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # (column, desc, nulls_first)
    limit: int | None = None
    offset: int = 0
    on_conflict: list[str] = field(default_factory=list)


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    out, buf, depth, quoted = [], "", 0, False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            out.append(buf)
            buf = ""
        else:
            buf += ch
    out.append(buf)
    return out


_SELECT_ITEM = re.compile(
    r"^(?:(?P<alias>[A-Za-z_][A-Za-z0-9_]*):(?!:))?"  # alias:
    r"(?P<col>[A-Za-z_][A-Za-z0-9_]*|\*)"  # column or *
    r"(?:::(?P<cast>[A-Za-z_][A-Za-z0-9_ ]*))?$"  # ::cast
)


def _parse_select(text: str, table: str, columns: list[str]) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    for item in _split_top(text.replace(" ", "").replace("\n", "")):
        if item == "":
            continue
        if "(" in item:
            # Embedding needs foreign keys; the sandbox's tables have none.
            name = item.split("(", 1)[0].split(":")[-1].split("!")[0]
            raise _PgError(
                400,
                "PGRST200",
                f"Could not find a relationship between '{table}' and '{name}' in the schema cache",
                details=(
                    f"Searched for a foreign key relationship between '{table}' and '{name}' in the schema 'public', "
                    "but no matches were found."
                ),
            )
        m = _SELECT_ITEM.match(item)
        if not m:
            raise _PgError(
                400, "PGRST100", f'"failed to parse select parameter ({text})"', details=f"unexpected {item!r}"
            )
        col, alias, cast = m.group("col"), m.group("alias"), m.group("cast")
        if col == "*":
            out.extend((c, c, None) for c in columns)
            continue
        if col not in columns:
            raise _unknown_column(table, col, columns)
        out.append((alias or col, col, cast))
    return out


def _parse_query(request: httpx.Request, schema: _Schema) -> _Query:
    """Read select/filters/order/limit/offset from the URL, validating columns like PostgREST + Postgres."""
    table, columns = schema.table, schema.columns
    params = request.url.params.multi_items()
    select_text = next((v for k, v in params if k == "select"), "*")
    q = _Query(table=table, columns=columns, schema=schema, select=_parse_select(select_text or "*", table, columns))
    for key, raw in params:
        if key in _RESERVED:
            continue
        if key in _LOGIC or key.endswith((".or", ".and")):
            # Not modelled; say so instead of answering something wrong.
            raise _PgError(
                400,
                "PGRST100",
                f'"failed to parse logic tree ({raw})"',
                details="the vyxops sandbox does not model or=/and= filters",
            )
        if "." in key:
            # Filters on embedded resources (`rel.col=…`) need relationships the sandbox lacks.
            raise _PgError(
                400,
                "PGRST108",
                f"'{key.split('.')[0]}' is not an embedded resource in this request",
                hint=f"Verify that '{key.split('.')[0]}' is included in the 'select' query parameter.",
            )
        negate = raw.startswith("not.")
        rest = raw[4:] if negate else raw
        op, dot, text = rest.partition(".")
        if not dot or op not in _OPS:
            raise _PgError(
                400,
                "PGRST100",
                f'"failed to parse filter ({raw})" (line 1, column 1)',
                details="unexpected " + (repr(op[:1]) if op else "end of input") + " expecting an operator",
            )
        if key not in columns:
            raise _unknown_column(table, key, columns)
        q.filters.append(_Filter(key, op, negate, _operand(schema, key, op, text, raw), schema.kind(key)))
    order = request.url.params.get("order")
    if order:
        for term in order.split(","):
            parts = term.strip().split(".")
            col, mods = parts[0], parts[1:]
            if not col or any(m not in ("asc", "desc", "nullsfirst", "nullslast") for m in mods):
                raise _PgError(
                    400,
                    "PGRST100",
                    f'"failed to parse order ({order})" (line 1, column 1)',
                    details=f"unexpected {term!r}",
                )
            if col not in columns:
                raise _unknown_column(table, col, columns)
            desc = "desc" in mods
            nulls_first = (
                "nullsfirst" in mods if ("nullsfirst" in mods or "nullslast" in mods) else desc
            )  # Postgres default
            q.order.append((col, desc, nulls_first))
    for name in ("limit", "offset"):
        value = request.url.params.get(name)
        if value is not None:
            if not value.isdigit():
                raise _PgError(
                    400,
                    "PGRST100",
                    f'"failed to parse {name} parameter ({value})" (line 1, column 1)',
                    details='unexpected "' + value[:1] + '" expecting digit',
                )
            setattr(q, name, int(value))
    oc = request.url.params.get("on_conflict")
    if oc:
        q.on_conflict = [c.strip() for c in oc.split(",") if c.strip()]
        for c in q.on_conflict:
            if c not in columns:
                raise _unknown_column(table, c, columns)
    return q


def _sort_key(kind: str, labels: list[str], value: Any) -> tuple[int, Any]:
    if kind == "enum" and value in labels:
        return (1, labels.index(value))  # Postgres orders an enum by its labels' declaration order
    v = _cell(kind, value)
    if isinstance(v, bool):
        return (0, int(v))
    if isinstance(v, (int, float)):
        return (1, v)
    if isinstance(v, datetime):
        return (2, v)
    # Text sorts by code point here; a real database sorts by its collation (en_US.UTF-8
    # on Supabase), so mixed-case text may order differently. Always order by a key.
    return (3, v if isinstance(v, str) else json.dumps(v, sort_keys=True))


def _ordered(rows: list[dict[str, Any]], q: _Query) -> list[dict[str, Any]]:
    for col, desc, nulls_first in reversed(q.order):
        kind, labels = q.schema.kind(col), q.schema.enum_labels(col)
        nulls = [r for r in rows if r.get(col) is None]
        vals = [r for r in rows if r.get(col) is not None]
        vals.sort(key=lambda r: _sort_key(kind, labels, r[col]), reverse=desc)
        rows = nulls + vals if nulls_first else vals + nulls
    return rows


def _project(row: dict[str, Any], select: list[tuple[str, str, str | None]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, col, cast in select:
        value = copy.deepcopy(row.get(col))
        if cast and cast.lower() in ("text", "varchar") and value is not None and not isinstance(value, str):
            value = (
                json.dumps(value)
                if isinstance(value, (dict, list))
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
        out[key] = value
    return out


def _matching(rows: list[dict[str, Any]], filters: list[_Filter]) -> list[dict[str, Any]]:
    return [r for r in rows if all(_test(f, r) is True for f in filters)]


def _prefer(request: httpx.Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for header in request.headers.get_list("prefer"):
        for token in header.split(","):
            key, _, value = token.strip().partition("=")
            if key:
                out[key.strip().lower()] = value.strip()
    return out


def _accept(request: httpx.Request) -> str:
    """'array' or 'object' (single()), or a 406 PGRST107 for a media type the sandbox does not serve."""
    header = request.headers.get("accept", "")
    types = [t.split(";")[0].strip().lower() for t in header.split(",") if t.strip()]
    if not types:
        return "array"
    for t in types:
        if t == "application/vnd.pgrst.object+json" or t == "application/vnd.pgrst.object":
            return "object"
        if t in ("*/*", "application/*", "application/json", "application/vnd.pgrst.array+json"):
            return "array"
    # text/csv, geo+json, plans … are real PostgREST media types the sandbox does not model.
    raise _PgError(406, "PGRST107", f"None of these media types are available: {', '.join(types)}")


def _content_range(lower: int, count: int, total: int | None) -> str:
    """PostgREST's contentRangeH: ``0-9/100``, ``0-9/*``, ``*/0``, ``*/*``."""
    upper = lower + count - 1
    rng = f"{lower}-{upper}" if total != 0 and lower <= upper else "*"
    return f"{rng}/{'*' if total is None else total}"


def _header_range(request: httpx.Request) -> tuple[int, int | None] | None:
    """The ``Range: a-b`` header (Range-Unit items, the default), or None when absent or malformed."""
    value = request.headers.get("range")
    if not value or request.headers.get("range-unit", "items").lower() != "items":
        return None
    m = re.fullmatch(r"\s*(\d+)-(\d*)\s*", value)
    if not m:
        return None  # PostgREST ignores a Range it cannot parse
    return int(m.group(1)), (int(m.group(2)) if m.group(2) else None)


def _gateway_role(world: World, request: httpx.Request) -> str:
    """'service_role' or 'anon' from the apikey and Authorization headers, or a 401.

    The gateway checks ``apikey`` (header, or the ``apikey`` URL parameter); the
    role comes from ``Authorization: Bearer`` when present, else from the apikey.
    A bearer must be a JWT: the new ``sb_secret_``/``sb_publishable_`` keys are not,
    and "can't be put in the Authorization header" (Supabase's API-keys guide), so
    PostgREST fails to decode one, with its own message for a token of one part.
    """
    creds = world.credentials
    keys = {creds["supabase_service_role_key"]: "service_role", creds["supabase_anon_key"]: "anon"}
    apikey = request.headers.get("apikey") or request.url.params.get("apikey")
    if not apikey:
        # Kong's key-auth text as Supabase answers it (widely quoted; not in the reference files).
        raise _GatewayError(401, "No API key found in request", "No `apikey` request header or url param was found.")
    if apikey not in keys:
        raise _GatewayError(401, "Invalid API key", "Double check your Supabase `anon` or `service_role` API key.")
    if "authorization" not in request.headers:
        return keys[apikey]
    token = _bearer(request)
    if token is not None and not is_jwt(token):
        parts = len(token.split("."))
        raise _PgError(
            401, "PGRST301", f"JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got {parts})"
        )
    if token in keys:
        return keys[token]  # type: ignore[index]
    # A bearer that is neither key nor a JWT the project signed. Text illustrative
    # (postgrest-error-bodies.json PGRST301).
    raise _PgError(401, "PGRST301", "JWT could not be decoded")


def _no_such_function(fn: str, request: httpx.Request) -> _PgError:
    """PGRST202 for ``POST /rest/v1/rpc/<fn>``: the sandbox's database has no functions."""
    ok, args = _read_json(request)
    arg_names = ", ".join(sorted(args)) if ok and isinstance(args, dict) else ""
    return _PgError(
        404,
        "PGRST202",
        f"Could not find the function public.{fn}({arg_names}) in the schema cache",
        details=(
            f"Searched for the function public.{fn} with parameters {arg_names or 'none'} "
            "or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache."
        ),
    )


# Supabase changelog 42949 ("Breaking Change: Removing access to OpenAPI spec via the anon key",
# 2026-02-17, in effect from March 11): the body, verbatim. The changelog gives no status: 403 is
# the sandbox's choice (UNVERIFIED), as the message says "forbidden".
SCHEMA_FORBIDDEN = {
    "message": "Access to schema is forbidden",
    "hint": "Accessing the schema via the Data API is only allowed using a secret API key.",
}


def _openapi_root(world: World, request: httpx.Request, role: str, profile: str | None) -> httpx.Response:
    """``GET /rest/v1/``: PostgREST's OpenAPI description of the exposed tables, for a service or secret key.

    The anon (or publishable) key is refused with Supabase's changelog-42949 body. Only
    ``public`` holds the project's tables: the ``graphql_public`` profile describes none.
    """
    if role == "anon":
        return _response(world, request, 403, SCHEMA_FORBIDDEN)
    if request.method not in ("GET", "HEAD"):
        raise _PgError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")
    document = openapi_document(world, with_tables=profile in (None, "public"))
    return _response(world, request, 200, document, content_type=OPENAPI_CT)


def _profile(request: httpx.Request) -> str | None:
    """The schema the request names (Accept-/Content-Profile), or a 406 PGRST106 for one not exposed."""
    profile = request.headers.get("accept-profile" if request.method in ("GET", "HEAD") else "content-profile")
    if profile and profile not in EXPOSED_SCHEMAS:
        # PostgREST v13 text (remembered, not in the reference files).
        raise _PgError(
            406,
            "PGRST106",
            f"Invalid schema: {profile}",
            hint=f"Only the following schemas are exposed: {', '.join(EXPOSED_SCHEMAS)}",
        )
    return profile


def handle_postgrest(world: World, request: httpx.Request) -> httpx.Response | None:
    """Serve ``/rest/v1/<table>``: GET/HEAD (select), PATCH (update), POST (insert), DELETE.

    Promises: rows past ``MAX_ROWS`` are dropped silently; ``count=exact`` gives
    the true total in Content-Range; an update or delete without a filter is
    refused with 21000; errors have PostgREST's ``{code, details, hint, message}``.
    ``/rest/v1/`` itself is the OpenAPI description of the tables (:func:`_openapi_root`).
    Returns None for paths outside ``/rest/v1/``.
    """
    path = request.url.path
    if not path.startswith("/rest/v1/"):
        return None
    name = path[len("/rest/v1/") :]
    try:
        role = _gateway_role(world, request)
        profile = _profile(request)
        if not name:
            return _openapi_root(world, request, role, profile)
        if name.startswith("rpc/"):
            raise _no_such_function(name[4:], request)
        if "/" in name:
            raise _PgError(404, "PGRST125", "Invalid path specified in request URL")
        tables = world.state["supabase"]["tables"]
        table = tables.get(name)
        if table is None:
            best = _did_you_mean(name, list(tables))
            # PGRST205 per postgrest-error-bodies.json (message/hint text illustrative there).
            raise _PgError(
                404,
                "PGRST205",
                f"Could not find the table 'public.{name}' in the schema cache",
                hint=f"Perhaps you meant the table 'public.{best}'" if best else None,
            )
        if role == "anon":
            # The sandbox's tables grant nothing to anon: 42501, 401 because the role is
            # anonymous (postgrest-error-bodies.json). A real table with RLS on and no anon
            # policy would instead answer reads with 200 [] — the louder answer is kept.
            raise _PgError(401, "42501", f"permission denied for table {name}")
        method = request.method
        if method in ("GET", "HEAD"):
            return _select(world, request, name, table)
        if method == "PATCH":
            return _update(world, request, name, table)
        if method == "POST":
            return _insert(world, request, name, table)
        if method == "DELETE":
            return _delete(world, request, name, table)
        raise _PgError(405, "PGRST117", f"Unsupported HTTP method: {method}")
    except _GatewayError as exc:
        return _response(world, request, exc.status, exc.body)
    except _PgError as exc:
        return _response(world, request, exc.status, exc.body)


def _page(request: httpx.Request, q: _Query) -> tuple[int, int | None]:
    """(lower, upper-or-None) of the requested window: limit/offset ∩ Range header, then max_rows."""
    lower, upper = q.offset, (q.offset + q.limit - 1 if q.limit is not None else None)
    hr = _header_range(request)
    if hr is not None:
        lower = max(lower, hr[0])
        if hr[1] is not None:
            upper = hr[1] if upper is None else min(upper, hr[1])
    cap = lower + MAX_ROWS - 1
    upper = cap if upper is None else min(upper, cap)
    return lower, upper


# (world, its version then, table name, the rows list, the query's filters and order, the rows they match in order)
_MATCHED: list[tuple[World, int, str, list[Any], tuple[tuple[str, str], ...], list[dict[str, Any]]]] = []
_PAGING = ("limit", "offset", "select")  # what only picks from the ordered match, or shapes it


def _matched(world: World, name: str, table: dict[str, Any], request: httpx.Request, q: _Query) -> list[dict[str, Any]]:
    """The rows ``q`` matches, in its order: worked out once while the world is unchanged.

    Paging a filtered, ordered table n rows at a time filtered and sorted all of it for
    every page (Postgres without an index does too, but in C): a busy day's machines
    table read 1,000 rows a page cost pages × rows in Python. Any change to the world
    (``World.touch``) or a new state object starts afresh; the rows are the state's own.
    """
    key = tuple((k, v) for k, v in request.url.params.multi_items() if k not in _PAGING)
    rows = table["rows"]
    for held in _MATCHED:
        if held[0] is world and held[1] == world.version and held[2] == name and held[3] is rows and held[4] == key:
            return held[5]
    matched = _ordered(_matching(rows, q.filters), q)
    _MATCHED[:] = [m for m in _MATCHED if m[0] is not world or m[1] == world.version][-3:]
    _MATCHED.append((world, world.version, name, rows, key, matched))
    return matched


def _select(world: World, request: httpx.Request, name: str, table: dict[str, Any]) -> httpx.Response:
    shape = _accept(request)
    q = _parse_query(request, _Schema.of(world, name, table))
    matched = _matched(world, name, table, request, q)
    prefer = _prefer(request)
    # planned/estimated counts are exact here: the sandbox has no planner statistics.
    total = len(matched) if prefer.get("count") in ("exact", "planned", "estimated") else None
    lower, upper = _page(request, q)
    hr = _header_range(request)
    if hr is not None and hr[1] is not None and hr[1] < hr[0]:
        raise _PgError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            details="The lower boundary must be lower than or equal to the upper boundary in the Range header.",
        )
    page = matched[lower : upper + 1] if upper >= lower else []
    # PostgREST's rangeStatus: no count → 200; offset past the total → 416;
    # fewer rows than the total → 206; else 200.
    status = 200
    if total is not None:
        if lower > total:
            raise _PgError(
                416,
                "PGRST103",
                "Requested range not satisfiable",
                details=f"An offset of {lower} was requested, but there are only {total} rows.",
            )
        if len(page) < total:
            status = 206
    headers = {"content-range": _content_range(lower, len(page), total)}
    rows = [_project(r, q.select) for r in page]
    if shape == "object":
        if len(rows) != 1:
            # PGRST116 body from postgrest-error-bodies.json.
            raise _PgError(
                406,
                "PGRST116",
                "JSON object requested, multiple (or no) rows returned",
                details=f"The result contains {len(rows)} rows",
            )
        return _response(world, request, 200, rows[0], headers=headers, content_type=OBJECT_CT)
    return _response(world, request, status, rows, headers=headers)


def _body_rows(request: httpx.Request, name: str, columns: list[str], *, many: bool) -> list[dict[str, Any]]:
    """The JSON body as rows; unknown keys → PGRST204, invalid JSON → PGRST102."""
    ok, body = _read_json(request)
    if not ok or not (
        isinstance(body, dict) or (many and isinstance(body, list) and all(isinstance(r, dict) for r in body))
    ):
        raise _PgError(400, "PGRST102", "Empty or invalid json")
    rows = body if isinstance(body, list) else [body]
    if many and len(rows) > 1 and any(set(r) != set(rows[0]) for r in rows):
        raise _PgError(400, "PGRST102", "All object keys must match")
    for r in rows:
        for key in r:
            if key not in columns:
                # PostgREST v12+ wording (as quoted in the brief; not in postgrest-error-bodies.json).
                raise _PgError(400, "PGRST204", f"Could not find the '{key}' column of '{name}' in the schema cache")
    return rows


def _mutation_response(
    world: World,
    request: httpx.Request,
    q: _Query,
    rows: list[dict[str, Any]],
    *,
    created: bool,
    shape: str,
) -> httpx.Response:
    prefer = _prefer(request)
    total = len(rows) if prefer.get("count") in ("exact", "planned", "estimated") else None
    # Inserts answer Content-Range */n; updates/deletes 0-(n-1)/n (PostgREST's mutation responses).
    headers = {
        "content-range": f"*/{'*' if total is None else total}" if created else _content_range(0, len(rows), total)
    }
    if prefer.get("return") == "representation":
        out = [_project(r, q.select) for r in rows]
        if shape == "object":
            return _response(world, request, 201 if created else 200, out[0], headers=headers, content_type=OBJECT_CT)
        return _response(world, request, 201 if created else 200, out, headers=headers)
    # return=minimal (the default) and headers-only: no body.
    return _response(world, request, 201 if created else 204, None, headers=headers)


def _guards(request: httpx.Request, n: int, shape: str) -> None:
    """max-affected (with handling=strict) and single(): checked before anything is written, as PostgREST rolls back."""
    prefer = _prefer(request)
    limit = prefer.get("max-affected")
    if limit is not None and prefer.get("handling") == "strict" and limit.isdigit() and n > int(limit):
        raise _PgError(
            400,
            "PGRST124",
            "Query result exceeds max-affected preference constraint",
            details=f"The query affects {n} rows",
        )
    if shape == "object" and n != 1:
        raise _PgError(
            406,
            "PGRST116",
            "JSON object requested, multiple (or no) rows returned",
            details=f"The result contains {n} rows",
        )


def _update(world: World, request: httpx.Request, name: str, table: dict[str, Any]) -> httpx.Response:
    shape = _accept(request)
    columns = table["columns"]
    values = _body_rows(request, name, columns, many=False)[0]
    q = _parse_query(request, _Schema.of(world, name, table))
    if not q.filters:
        # pg-safeupdate on Supabase (postgrest-error-bodies.json, verbatim).
        raise _PgError(400, "21000", "UPDATE requires a WHERE clause")
    typed = {k: _input_value(q.schema, k, v) for k, v in values.items()}
    # An empty object updates nothing (PostgREST turns `{}` into a no-op).
    targets = _matching(table["rows"], q.filters) if typed else []
    _guards(request, len(targets), shape)
    if targets:
        # The real table's triggers are unknown; like World.db_update, the table's updated_at
        # column follows every update (a moddatetime trigger) unless the update sets it.
        stamp = pg_time(world.now_ms)
        for row in targets:
            update_row(table, row, copy.deepcopy(typed), stamp)
        world.touch()
    return _mutation_response(world, request, q, targets, created=False, shape=shape)


def _delete(world: World, request: httpx.Request, name: str, table: dict[str, Any]) -> httpx.Response:
    shape = _accept(request)
    q = _parse_query(request, _Schema.of(world, name, table))
    if not q.filters:
        raise _PgError(400, "21000", "DELETE requires a WHERE clause")
    targets = _matching(table["rows"], q.filters)
    _guards(request, len(targets), shape)
    if targets:
        gone = {id(r) for r in targets}
        table["rows"] = [r for r in table["rows"] if id(r) not in gone]
        world.touch()
    return _mutation_response(world, request, q, targets, created=False, shape=shape)


def _new_row(
    world: World, schema: _Schema, item: dict[str, Any], defaults: dict[str, str], stamp: str
) -> dict[str, Any]:
    """One inserted row: the values given, typed, and the table's column defaults for the others."""
    row: dict[str, Any] = {c: None for c in schema.columns}
    for k, v in item.items():
        row[k] = _input_value(schema, k, v)
    for column, default in defaults.items():
        if column not in item:
            row[column] = world.new_uuid("row") if default == "gen_random_uuid()" else stamp  # now()
    return row


def _insert(world: World, request: httpx.Request, name: str, table: dict[str, Any]) -> httpx.Response:
    shape = _accept(request)
    columns = table["columns"]
    body = _body_rows(request, name, columns, many=True)
    q = _parse_query(request, _Schema.of(world, name, table))
    prefer = _prefer(request)
    resolution = prefer.get("resolution")  # merge-duplicates | ignore-duplicates (upsert)
    key_cols = q.on_conflict or (["id"] if "id" in columns else [])
    stamp = pg_time(world.now_ms)
    new_rows: list[dict[str, Any]] = []
    merges: list[tuple[dict[str, Any], dict[str, Any]]] = []
    returned: list[dict[str, Any]] = []
    index = {tuple(str(r.get(c)) for c in key_cols): r for r in table["rows"]} if key_cols else {}
    defaults = column_defaults(table)
    for item in body:
        row = _new_row(world, q.schema, item, defaults, stamp)
        key = tuple(str(row.get(c)) for c in key_cols) if key_cols else None
        existing = index.get(key) if key is not None and all(row.get(c) is not None for c in key_cols) else None
        if existing is not None:
            if resolution == "merge-duplicates":
                merges.append((existing, {k: row[k] for k in item}))
                returned.append(existing)
                continue
            if resolution == "ignore-duplicates":
                continue
            constraint = f"{name}_pkey" if key_cols == ["id"] else f"{name}_{'_'.join(key_cols)}_key"
            raise _PgError(
                409,
                "23505",
                f'duplicate key value violates unique constraint "{constraint}"',
                details=f"Key ({', '.join(key_cols)})=({', '.join(str(row[c]) for c in key_cols)}) already exists.",
            )
        if key is not None:
            index[key] = row
        new_rows.append(row)
        returned.append(row)
    if shape == "object":
        _guards(request, len(returned), shape)
    for existing, changes in merges:
        update_row(table, existing, changes, stamp)  # the same moddatetime model as _update
    table["rows"].extend(new_rows)
    if new_rows or merges:
        world.touch()
    return _mutation_response(world, request, q, returned, created=True, shape=shape)


# =========================================================================== Edge Functions
def handle_functions(world: World, request: httpx.Request) -> httpx.Response | None:
    """Serve ``POST /functions/v1/<slug>`` through ``world.invoke_function``.

    Promises: an unknown slug → 404 ``{"code":"NOT_FOUND",…}`` (what World answers,
    the relay's text); a verify_jwt function refuses a request whose bearer is not one
    of the project's JWTs with 401 before it runs (:func:`_verify_jwt`, no log row); a
    body that is not a JSON object → 400 and no invocation.
    """
    path = request.url.path
    if not path.startswith("/functions/v1/"):
        return None
    slug = path[len("/functions/v1/") :].strip("/")
    if not slug or "/" in slug:
        return None
    fn = world.function(slug)
    if fn is None:
        status, body = world.invoke_function(slug, {})  # World answers the relay's 404 for an unknown slug
        return _response(world, request, status, body)
    refusal = _verify_jwt(world, request, fn)
    if refusal is not None:
        return refusal
    if request.method != "POST":
        # provision-machine's own model (the function's code is not known): POST only.
        return _response(world, request, 405, {"error": f"method {request.method} not allowed"})
    ok, body = _read_json(request)
    if not ok or not isinstance(body, dict):
        # The function's `await req.json()` fails; its answer is its own and unknown —
        # the sandbox answers 400 without invoking (no machine, no row, no logs).
        return _response(world, request, 400, {"error": "request body must be a JSON object"})
    status, answer = world.invoke_function(slug, body)
    return _response(world, request, status, answer)


def _verify_jwt(world: World, request: httpx.Request, fn: dict[str, Any]) -> httpx.Response | None:
    """The relay's ``verify_jwt`` check, or None when the request may reach the function.

    On (the default), the platform reads ``Authorization`` before the function runs
    (Supabase "Authorization headers" guide): no header → 401 "Missing authorization
    header"; a bearer that is not a JWT the project signed — an ``sb_secret_…`` key
    is not a JWT at all; a JWT signed otherwise, or expired — → 401 "Invalid JWT" (PLATFORM.md). A user's
    access token or a legacy anon/service_role key, all signed by the project, pass. Neither refusal reaches the
    function, so neither leaves an execution log. The apikey header is not looked at.
    Off, the function is public: the relay checks nothing.
    """
    if not fn.get("verify_jwt", True):
        return None
    token = _bearer(request)
    if "authorization" not in request.headers or token is None:
        return _response(world, request, 401, {"code": 401, "message": "Missing authorization header"})
    if not is_jwt(token) or not signed_by_project(token, world.scenario_name, world.now_ms / 1000):
        return _response(world, request, 401, {"code": 401, "message": "Invalid JWT"})
    return None

"""Supabase's database itself, read directly: a libpq URL (``SUPABASE_DB_URL``, ``--db-url``) through psycopg 3.

What it gives the rest of vyxops is what PostgREST would have given, from the database:

- :meth:`PgClient.select_all` and :meth:`PgClient.newest_rows`: rows as PostgREST's JSON renders them (a
  timestamptz as ``2025-10-02T16:18:40.91+00:00``, a uuid as its text, an enum as its label), so that the
  frames built from them are the same whichever way they were read; the whole table through one server-side
  cursor in one read-only transaction, with no 1000-row pages;
- :meth:`PgClient.tables`: each table's shape from ``information_schema`` and ``pg_catalog`` (columns, types,
  NOT NULLs, defaults, the primary key, an enum's labels in order, CHECK constraints, triggers), as
  :class:`CatalogTable`; :mod:`vyxops.analysis.discover_pg` reads it as discovery reads PostgREST's OpenAPI.

Works through Supabase's pooler (``postgresql://postgres.REF:PASSWORD@aws-0-REGION.pooler.supabase.com:6543/
postgres``): in transaction mode Supavisor keeps no session state and no prepared statement, so nothing here
uses either. Read-only is per transaction (``BEGIN READ ONLY``, psycopg's ``read_only``), which survives a
pooler, unlike a session's ``SET``.

The URL's password is registered with :mod:`vyxops.core.redaction` before anything is tried, and no error carries
the URL: libpq's own messages (which may quote a malformed URL whole) are replaced or redacted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

from vyxops.core.errors import ApiError, InputError, TransportError, redact
from vyxops.core.redaction import db_url_password, register_db_url

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

    #: A statement psycopg runs: composed from constants and identifiers, never from text given at run time.
    Query = sql.SQL | sql.Composed

__all__ = ["DB_URL_ENV", "PLATFORM", "CatalogColumn", "CatalogTable", "PgClient", "json_value", "parse_db_url"]

DB_URL_ENV = "SUPABASE_DB_URL"
PLATFORM = "postgres"
#: How a URL looks, for errors (the pooler form is what Supabase's dashboard hands out).
URL_SHAPES = (
    "postgresql://USER:PASSWORD@HOST:5432/postgres",
    "postgresql://postgres.PROJECTREF:PASSWORD@aws-0-REGION.pooler.supabase.com:6543/postgres",
)
_SCHEMES = ("postgresql://", "postgres://")
#: Rows fetched per round trip of the server-side cursor.
ITERSIZE = 5000
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Target:
    """Where a URL points (host, port, database, user): what errors may name. Never the password."""

    host: str
    port: str
    dbname: str
    user: str

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"


def parse_db_url(url: str, name: str = DB_URL_ENV) -> Target:
    """Check ``url`` is a libpq URL (``postgresql://`` or ``postgres://``) libpq can read; InputError naming
    ``name`` otherwise, which never quotes the URL (it holds the password)."""
    from psycopg.conninfo import conninfo_to_dict

    register_db_url(url)
    if not isinstance(url, str) or not url.strip().startswith(_SCHEMES):
        raise InputError(name, "is not a PostgreSQL connection URL", allowed=list(URL_SHAPES))
    try:
        parts = conninfo_to_dict(url.strip())
    except Exception:  # psycopg.ProgrammingError, whose message quotes the URL, password and all
        raise InputError(name, "libpq cannot read this URL", allowed=list(URL_SHAPES)) from None
    port = str(parts.get("port") or "5432")
    if not all(p.isdigit() for p in port.split(",")):
        raise InputError(name, f"port {port!r} is not a number", allowed=list(URL_SHAPES))
    return Target(
        host=str(parts.get("host") or "localhost"),
        port=port,
        dbname=str(parts.get("dbname") or parts.get("user") or "postgres"),
        user=str(parts.get("user") or ""),
    )


@dataclass(frozen=True)
class CatalogColumn:
    """One column as the catalog describes it."""

    name: str
    type: str  # format_type's name (``uuid``, ``timestamp with time zone``), an enum's as ``schema.name``
    nullable: bool
    default: str | None  # the default's expression as the catalog prints it (``now()``, ``'x'::text``)
    primary_key: bool
    enum: tuple[str, ...] | None  # an enum type's labels in their order, else None
    json_type: str  # the JSON type PostgREST gives the column: string, integer, number, boolean, array, object


@dataclass(frozen=True)
class CatalogTable:
    """One table of a schema: its columns in order, and the rules the database enforces on its rows."""

    schema: str
    name: str
    columns: tuple[CatalogColumn, ...]
    checks: tuple[str, ...]  # each CHECK constraint as ``pg_get_constraintdef`` prints it
    triggers: tuple[str, ...]  # each row trigger as ``pg_get_triggerdef`` prints it

    def column(self, name: str) -> CatalogColumn | None:
        return next((c for c in self.columns if c.name == name), None)


class PgClient:
    """One connection to a project's database, read-only unless opened with ``read_only=False``."""

    def __init__(self, url: str, *, read_only: bool = True, name: str = DB_URL_ENV) -> None:
        self.target = parse_db_url(url, name)
        self._secret = db_url_password(url) or ""
        self.read_only = read_only
        self._conn = self._connect(url.strip())

    def __repr__(self) -> str:
        return f"PgClient({self.target}, read_only={self.read_only})"

    def _connect(self, url: str) -> psycopg.Connection[tuple[Any, ...]]:
        import psycopg

        try:
            # prepare_threshold=None: Supavisor's transaction mode keeps no prepared statement between
            # transactions; a statement psycopg prepared on one backend would be missing on the next.
            conn = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, prepare_threshold=None)
        except psycopg.Error as exc:
            raise TransportError(
                f"could not connect: {self._scrub(exc)}",
                platform=PLATFORM,
                method="CONNECT",
                path=str(self.target),
                hint=f"check {DB_URL_ENV}'s host, port, user, password and database (Supabase: Project Settings, "
                "Database, Connection string)",
            ) from None
        conn.read_only = self.read_only
        _load_as_postgrest_text(conn)
        return conn

    def _scrub(self, exc: BaseException) -> str:
        """An exception's text without the password, in any length or form (redact masks registered ones)."""
        text = " ".join(str(exc).split())
        if self._secret:
            text = text.replace(self._secret, "[REDACTED]")
        return redact(text)[:300]

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PgClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ reads
    def _error(self, exc: Exception, what: str) -> ApiError:
        import psycopg

        code = exc.sqlstate if isinstance(exc, psycopg.Error) else None
        return ApiError(self._scrub(exc), platform=PLATFORM, method="SELECT", path=what, status=None, code=code)

    def _rows(self, query: Query, params: Sequence[object], what: str) -> Iterator[dict[str, Any]]:
        """Rows of ``query`` as PostgREST's JSON renders them, through one server-side cursor in one
        (read-only) transaction; an error of the database is an ApiError with its SQLSTATE as ``code``."""
        import psycopg

        try:
            with self._conn.transaction(), self._conn.cursor(name="vyxops_read") as cur:
                self._conn.execute(_UTC)
                cur.itersize = ITERSIZE
                cur.execute(query, params)
                names = [d.name for d in cur.description or []]
                for row in cur:
                    yield {n: json_value(v) for n, v in zip(names, row, strict=True)}
        except psycopg.Error as exc:
            raise self._error(exc, what) from None

    def run(self, query: Query, params: Sequence[object], what: str) -> list[dict[str, Any]]:
        """One statement in its own transaction (read-only unless the client was opened with ``read_only=False``:
        a write is then refused by the database, SQLSTATE 25006), its rows (``RETURNING``) as PostgREST's JSON
        renders them; an error of the database is an ApiError with its SQLSTATE as ``code``."""
        import psycopg

        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                cur.execute(_UTC)
                cur.execute(query, params)
                names = [d.name for d in cur.description or []]
                return (
                    [{n: json_value(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]
                    if names
                    else []
                )
        except psycopg.Error as exc:
            raise self._error(exc, what) from None

    def select_all(
        self, table: str, columns: Sequence[str], *, order: str, filters: Sequence[tuple[str, object]] = ()
    ) -> list[dict[str, Any]]:
        """Every row of ``public.<table>`` (``columns`` of it, each once), ordered by ``order`` ascending as
        PostgREST orders (nulls last), whose every ``filters`` column equals its value."""
        query = _select_query(table, columns, order, filters)
        return list(self._rows(query, [v for _, v in filters], f"public.{table}"))

    def select_columns(
        self, table: str, columns: Sequence[str], *, order: str, filters: Sequence[tuple[str, object]] = ()
    ) -> dict[str, list[Any]]:
        """:meth:`select_all` by column: each column's values down the rows, as PostgREST's JSON renders them.
        A big read is built into a frame column by column, with no dict per row and no per-cell rendering of a
        column the loaders already gave as text."""
        import psycopg

        query = _select_query(table, columns, order, filters)
        try:
            with self._conn.transaction(), self._conn.cursor(name="vyxops_read") as cur:
                self._conn.execute(_UTC)
                cur.execute(query, [v for _, v in filters])
                names = [d.name for d in cur.description or []]
                rows = cur.fetchall()  # every row is kept anyway: one FETCH ALL, not a Python step per row
        except psycopg.Error as exc:
            raise self._error(exc, f"public.{table}") from None
        down = zip(*rows, strict=True) if rows else ((),) * len(names)
        return {n: _json_column(list(values)) for n, values in zip(names, down, strict=True)}

    def newest_rows(self, table: str, order: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` rows of ``table``, every column, newest first by ``order`` (what discovery samples)."""
        from psycopg import sql

        query = sql.SQL("SELECT * FROM {} ORDER BY {} DESC NULLS FIRST LIMIT %s").format(
            sql.Identifier("public", table), sql.Identifier(order)
        )
        return list(self._rows(query, [limit], f"public.{table}"))

    def tables(self, schema: str = "public") -> list[CatalogTable]:
        """The schema's tables and views the role may read, each with its catalog shape, by name."""
        columns: dict[str, list[CatalogColumn]] = {}
        for r in self._rows(_COLUMNS_SQL, [schema], "information_schema.columns"):
            columns.setdefault(r["table_name"], []).append(
                CatalogColumn(
                    name=r["column_name"],
                    type=r["type"],
                    nullable=r["is_nullable"] == "YES",
                    default=r["column_default"],
                    primary_key=bool(r["primary_key"]),
                    enum=tuple(r["enum"]) if r["enum"] is not None else None,
                    json_type=_json_type(r["typcategory"], r["enum"] is not None),
                )
            )
        checks: dict[str, list[str]] = {}
        triggers: dict[str, list[str]] = {}
        for r in self._rows(_RULES_SQL, [schema, schema], "pg_catalog"):
            (checks if r["kind"] == "check" else triggers).setdefault(r["table_name"], []).append(r["definition"])
        return [
            CatalogTable(schema, name, tuple(cols), tuple(checks.get(name, [])), tuple(triggers.get(name, [])))
            for name, cols in sorted(columns.items())
        ]


def _select_query(table: str, columns: Sequence[str], order: str, filters: Sequence[tuple[str, object]]) -> Query:
    """``columns`` (each once) of ``public.<table>`` whose every ``filters`` column equals a parameter, ordered by
    ``order`` ascending as PostgREST orders (nulls last)."""
    from psycopg import sql

    wanted = list(dict.fromkeys(columns))
    where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c, _ in filters)
    return sql.SQL("SELECT {cols} FROM {table}{where} ORDER BY {order} ASC NULLS LAST").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, wanted)),
        table=sql.Identifier("public", table),
        where=sql.SQL(" WHERE ") + where if filters else sql.SQL(""),
        order=sql.Identifier(order),
    )


#: Values :func:`json_value` leaves as they are.
_AS_JSON = frozenset({str, int, float, bool, type(None)})


def _json_column(values: list[Any]) -> list[Any]:
    """:func:`json_value` of each cell, read only when the column holds a value it renders."""
    return values if set(map(type, values)) <= _AS_JSON else [json_value(v) for v in values]


def _load_as_postgrest_text(conn: psycopg.Connection[Any]) -> None:
    """Times and uuids loaded straight from PostgreSQL's text output into the text PostgREST's JSON gives them,
    instead of through datetime and UUID objects rendered back to text (most of a big read's time).

    PostgreSQL writes a timestamptz (``DateStyle`` ISO, ``TimeZone`` UTC: each read's transaction sets both
    locally, which a transaction pooler keeps) as ``2025-10-02 16:18:40.5+00``; ``to_json`` writes the same
    digits as ``2025-10-02T16:18:40.5+00:00``.
    """
    from psycopg.adapt import Buffer, Loader
    from psycopg.types.string import TextLoader

    class JsonTimeLoader(Loader):
        def load(self, data: Buffer) -> str:
            text = bytes(data).decode("ascii").replace(" ", "T", 1)
            return text + ":00" if len(text) > 3 and text[-3] in "+-" else text

    for name in ("timestamptz", "timestamp"):
        conn.adapters.register_loader(name, JsonTimeLoader)
    conn.adapters.register_loader("uuid", TextLoader)


def _json_type(category: str, is_enum: bool) -> str:
    """The JSON type PostgREST's OpenAPI gives a column, from ``pg_type.typcategory``."""
    if is_enum:
        return "string"
    return {"N": "number", "B": "boolean", "A": "array"}.get(category, "string")


def json_value(value: object) -> object:
    """A value as PostgREST's JSON carries it (PostgreSQL's ``to_json``): a timestamptz in UTC with the
    fraction's trailing zeros dropped, a timestamp without a zone as written, a uuid, date or numeric as text."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        text = value.replace(tzinfo=None).isoformat(timespec="microseconds").rstrip("0").rstrip(".")
        return text + ("+00:00" if value.tzinfo is not None else "")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return value


def _sql(text: str) -> psycopg.sql.SQL:
    from psycopg import sql

    return sql.SQL(text)  # a constant of this module, never built from input


#: Each read's transaction renders times in UTC and ISO, whatever the role's or database's defaults.
_UTC = _sql("SET LOCAL TimeZone TO 'UTC'; SET LOCAL DateStyle TO 'ISO'")

# Columns with their types: format_type's name, an enum as schema-qualified (as PostgREST's OpenAPI writes its
# format), the enum's labels in order, and whether the column is in the primary key.
_COLUMNS_SQL = _sql("""
SELECT c.table_name::text AS table_name,
       c.column_name::text AS column_name,
       CASE WHEN t.typtype = 'e' THEN n.nspname || '.' || t.typname
            ELSE format_type(a.atttypid, a.atttypmod) END AS type,
       c.is_nullable::text AS is_nullable,
       c.column_default::text AS column_default,
       t.typcategory::text AS typcategory,
       (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e
         WHERE e.enumtypid = t.oid) AS enum,
       EXISTS (SELECT 1 FROM pg_constraint k
                WHERE k.conrelid = a.attrelid AND k.contype = 'p' AND a.attnum = ANY (k.conkey)) AS primary_key
  FROM information_schema.columns c
  JOIN pg_namespace cn ON cn.nspname = c.table_schema
  JOIN pg_class r ON r.relnamespace = cn.oid AND r.relname = c.table_name
  JOIN pg_attribute a ON a.attrelid = r.oid AND a.attname = c.column_name
  JOIN pg_type t ON t.oid = a.atttypid
  JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE c.table_schema = %s
 ORDER BY c.table_name, c.ordinal_position
""")

# CHECK constraints and row triggers of the schema's tables, as the catalog prints them.
_RULES_SQL = _sql("""
SELECT r.relname::text AS table_name, 'check' AS kind, pg_get_constraintdef(k.oid) AS definition
  FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
 WHERE n.nspname = %s AND k.contype = 'c'
UNION ALL
SELECT r.relname::text, 'trigger', pg_get_triggerdef(g.oid)
  FROM pg_trigger g JOIN pg_class r ON r.oid = g.tgrelid JOIN pg_namespace n ON n.oid = r.relnamespace
 WHERE n.nspname = %s AND NOT g.tgisinternal
 ORDER BY 1, 2, 3
""")

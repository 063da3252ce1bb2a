"""A world's Supabase tables in a real PostgreSQL database: the DDL from the sandbox's own table model, the rows
from the world's state.

The model is the one PostgREST's simulation serves (``state["supabase"]["tables"]`` and ``["enums"]``, built by
:func:`vyxops_sandbox.pipeline.table_schema`): columns in order, their types, NOT NULL columns, defaults, the
primary key and the column a ``moddatetime`` trigger keeps current; an enum-typed column's labels. This module
writes that model as SQL and nothing else, so that the database enforces exactly what the model says and a
disagreement between the two shows as a difference, not as a second description drifting from the first.

As on Supabase: the enum is a ``CREATE TYPE … AS ENUM``, the trigger is the ``moddatetime`` extension's
(installed in the ``extensions`` schema), tables live in ``public``. The superuser loads; the login role is
granted what Supabase's ``service_role`` has on a table (read and write), and reads read-only by its own choice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from vyxops_sandbox.pg_server import PgServer, running_postgres
from vyxops_sandbox.pipeline import column_defaults, moddatetime_column

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

    from vyxops_sandbox.world import World

#: The model's column types as SQL (an enum's type is named by the model's ``enums``).
SQL_TYPES = {"uuid": "uuid", "text": "text", "timestamptz": "timestamptz", "bigint": "bigint", "integer": "integer",
             "boolean": "boolean", "jsonb": "jsonb"}  # fmt: skip
#: The model's default expressions as SQL; any other default is a literal of the column's type.
SQL_DEFAULTS = {"gen_random_uuid()": "gen_random_uuid()", "now()": "now()"}
#: The trigger's name, as Supabase's documentation writes it for ``moddatetime``.
TRIGGER = "handle_updated_at"
EXTENSIONS_SCHEMA = "extensions"


def _ddl_type(pg_type: str, enums: dict[str, list[str]]) -> sql.Composable:
    from psycopg import sql

    if pg_type in enums:
        return sql.Identifier("public", pg_type)
    if pg_type not in SQL_TYPES:
        raise ValueError(f"the table model's type {pg_type!r} has no SQL here (known: {', '.join(SQL_TYPES)})")
    return sql.SQL(SQL_TYPES[pg_type])  # type: ignore[arg-type]  # from the table above, never from input


def table_ddl(name: str, table: dict[str, Any], enums: dict[str, list[str]]) -> list[sql.Composable]:
    """``CREATE TABLE public.<name>`` with the model's columns, types, NOT NULLs, defaults and primary key, and
    the ``moddatetime`` trigger when the model keeps a column current."""
    from psycopg import sql

    types = table.get("types") or {}
    not_null = set(table.get("not_null") or [])
    defaults = column_defaults(table)
    parts: list[sql.Composable] = []
    for column in table["columns"]:
        bits: list[sql.Composable] = [sql.Identifier(column), _ddl_type(types.get(column, "text"), enums)]
        if column in not_null:
            bits.append(sql.SQL("NOT NULL"))
        default = defaults.get(column)
        if default is not None:
            expr = SQL_DEFAULTS.get(default)
            bits += [sql.SQL("DEFAULT"), sql.SQL(expr) if expr else sql.Literal(default)]  # type: ignore[arg-type]
        parts.append(sql.SQL(" ").join(bits))
    key = table.get("primary_key") or []
    if key:
        parts.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, key))))
    out: list[sql.Composable] = [
        sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier("public", name), sql.SQL(", ").join(parts))
    ]
    touched = moddatetime_column(table)
    if touched:
        out.append(
            sql.SQL("CREATE TRIGGER {} BEFORE UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {}({})").format(
                sql.Identifier(TRIGGER),
                sql.Identifier("public", name),
                sql.Identifier(EXTENSIONS_SCHEMA, "moddatetime"),
                sql.Identifier(touched),
            )
        )
    return out


def schema_ddl(supabase: dict[str, Any]) -> list[sql.Composable]:
    """Every statement that makes the project's schema from ``state["supabase"]``: the extension, the enum
    types (labels in the model's order), then each table."""
    from psycopg import sql

    enums: dict[str, list[str]] = supabase.get("enums") or {}
    out: list[sql.Composable] = [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(EXTENSIONS_SCHEMA)),
        sql.SQL("CREATE EXTENSION IF NOT EXISTS moddatetime WITH SCHEMA {}").format(sql.Identifier(EXTENSIONS_SCHEMA)),
    ]
    for name, labels in sorted(enums.items()):
        out.append(
            sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
                sql.Identifier("public", name), sql.SQL(", ").join(map(sql.Literal, labels))
            )
        )
    for name, table in sorted(supabase["tables"].items()):
        out += table_ddl(name, table, enums)
    return out


def table_rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows as PostgREST's model returns them: every column of the model, in its order."""
    return [{c: row.get(c) for c in table["columns"]} for row in table["rows"]]


def copy_rows(conn: psycopg.Connection[Any], name: str, columns: list[str], rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` into ``public.<name>`` with COPY (values as text: the database casts them to the column's
    type, and refuses what the type or a constraint refuses); returns how many."""
    from psycopg import sql

    count = 0
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier("public", name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row([None if row.get(c) is None else str(row[c]) for c in columns])
            count += 1
    return count


def load_world(conninfo: str, world: World, *, grant_to: str | None = None) -> dict[str, int]:
    """Create the world's schema in the (empty) database ``conninfo`` names, as a superuser, and copy its
    tables' rows in, in one transaction; ``grant_to`` gets Supabase's ``service_role`` rights on each table.
    Returns the rows written per table."""
    import psycopg
    from psycopg import sql

    supabase = world.state["supabase"]
    written: dict[str, int] = {}
    with psycopg.connect(conninfo) as conn:
        for statement in schema_ddl(supabase):
            conn.execute(statement)
        for name, table in sorted(supabase["tables"].items()):
            written[name] = copy_rows(conn, name, list(table["columns"]), table_rows(table))
            if grant_to:
                conn.execute(
                    sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
                        sql.Identifier("public", name), sql.Identifier(grant_to)
                    )
                )
        if grant_to:
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(grant_to)))
    return written


def sync_rows(conninfo: str, world: World) -> dict[str, int]:
    """Replace each table's rows with the world's, in one transaction (the served sandbox keeps its database in
    step with the world this way: readers see the old rows or the new, never a half)."""
    import psycopg
    from psycopg import sql

    supabase = world.state["supabase"]
    written: dict[str, int] = {}
    with psycopg.connect(conninfo) as conn:
        for name, table in sorted(supabase["tables"].items()):
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier("public", name)))
            written[name] = copy_rows(conn, name, list(table["columns"]), table_rows(table))
    return written


@contextlib.contextmanager
def world_database(world: World, *, database: str = "postgres") -> Iterator[tuple[PgServer, str]]:
    """A throwaway server holding ``world``'s tables in ``database`` (Supabase's URL names ``postgres``): yields
    the server and the login role's URL, what ``vyxops sandbox serve --postgres`` prints; :func:`sync_rows`
    with ``server.admin_conninfo(database)`` keeps it in step with the world. Stopped on leaving."""
    with running_postgres() as server:
        load_world(server.admin_conninfo(database), world, grant_to=server.role)
        yield server, server.url(database)


class TableKeeper:
    """Called after each request the served sandbox answers: when the world's tables changed, their rows are
    written to the database again (:func:`sync_rows`). Only then, so a row written to the database directly (a fix
    through the direct source) stays until the world next changes that table's rows; the world wins then."""

    def __init__(self, conninfo: str, world: World) -> None:
        self.conninfo = conninfo
        self._seen = _fingerprint(world)

    def __call__(self, world: World) -> None:
        now = _fingerprint(world)
        if now != self._seen:
            sync_rows(self.conninfo, world)
            self._seen = now


def _fingerprint(world: World) -> str:
    import hashlib
    import json

    tables = world.state["supabase"]["tables"]
    text = json.dumps({k: v.get("rows") for k, v in tables.items()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()

"""Database: with ``$SUPABASE_DB_URL`` (or ``--db-url``), the connection and the role's rights on the contract's
table: ``SELECT`` to investigate, ``UPDATE`` of the columns ``RECONCILE_STUCK_ROWS`` writes to fix rows there.

The rights are asked of the catalog (``has_table_privilege``, ``has_column_privilege``) in a read-only
transaction: nothing is written to find out. A missing ``UPDATE`` is not a problem for a role meant to read only;
the line says what it means for the fixes, and the ``GRANT`` that would allow them.
"""

from __future__ import annotations

from collections.abc import Iterator

from vyxops.act.doctor.model import Doctor, Outcome, problem
from vyxops.core.errors import ApiError, TransportError
from vyxops.fetch.clients.postgres import DB_URL_ENV, PgClient

GROUP = "database"


def check_database(d: Doctor) -> Iterator[Outcome]:
    s = d.session
    assert s is not None
    if s.db is None:  # not configured: the table is read through PostgREST, whose checks are above
        return
    try:
        client = s.db.reader()
    except TransportError as exc:
        yield problem(GROUP, "connection", exc.message, exc.hint or f"check {DB_URL_ENV}")
        return
    yield Outcome(GROUP, "connection", "ok", f"{s.db.where}, read-only transactions")
    if d.pipeline is None:
        yield Outcome(GROUP, "rights", "skipped", "the contract did not resolve: no table to ask about")
        return
    yield from _rights(client, d.pipeline.table.name, _written(d), s.db.target.user)


def _written(d: Doctor) -> list[str]:
    """The columns RECONCILE_STUCK_ROWS writes: the status, and the error and last update where the table has them."""
    assert d.pipeline is not None
    c = d.pipeline.table.columns
    return [name for name in (c.status, c.error, c.updated_at) if name]


def _rights(client: PgClient, table: str, columns: list[str], role: str) -> Iterator[Outcome]:
    from psycopg import sql

    qualified = f"public.{table}"
    grant = f"GRANT SELECT ON {qualified} TO {role or 'the role'}"
    try:
        (row,) = client.run(
            sql.SQL("SELECT to_regclass(%s) IS NOT NULL AS found"), [_quoted(table)], "pg_catalog.to_regclass"
        )
        if not row["found"]:
            yield problem(GROUP, "SELECT", f"{qualified} is not in the database the URL names",
                          f"check {DB_URL_ENV}'s database, or the contract's table")  # fmt: skip
            return
        (can,) = client.run(
            sql.SQL("SELECT has_table_privilege(%s, 'SELECT') AS can_select"), [_quoted(table)], "pg_catalog"
        )
        updatable = [
            name
            for name in columns
            if client.run(
                sql.SQL("SELECT has_column_privilege(%s, %s, 'UPDATE') AS can"), [_quoted(table), name], "pg_catalog"
            )[0]["can"]
        ]
    except ApiError as exc:
        yield problem(GROUP, "rights", f"the catalog could not be asked: {exc.message}", grant)
        return
    if not can["can_select"]:
        yield problem(GROUP, "SELECT", f"the role may not read {qualified}: investigations cannot read the rows", grant)
        return
    yield Outcome(GROUP, "SELECT", "ok", f"the role may read {qualified}")
    missing = [c for c in columns if c not in updatable]
    if missing:
        cols = ", ".join(missing)
        yield Outcome(
            GROUP, "UPDATE", "skipped",
            f"the role may not update {cols} of {qualified}: fine for investigations; RECONCILE_STUCK_ROWS would be "
            f"refused (to let it run: GRANT UPDATE ({', '.join(columns)}) ON {qualified} TO {role or 'the role'})",
        )  # fmt: skip
    else:
        yield Outcome(GROUP, "UPDATE", "ok", f"the role may update {', '.join(columns)}: RECONCILE_STUCK_ROWS can run")


def _quoted(table: str) -> str:
    """``public.<table>`` as a regclass text, the name quoted so that case and punctuation are kept."""
    return 'public."' + table.replace('"', '""') + '"'

"""RECONCILE_STUCK_ROWS's statements through the database itself ($SUPABASE_DB_URL), when the session has it
(:func:`vyxops.act.fixes.reconcile_rows.apply` sends them).

One ``UPDATE … WHERE key = … AND status = <as read> AND updated_at = <as read> RETURNING *`` in its own
transaction, on a connection opened for this write alone (the session's reads stay read-only): the guard is in the
``WHERE``, so a row that moved between the checks and the write is not matched, and the database itself refuses a
column the table lacks (42703) and a word its enum lacks (22P02), as PostgREST does. ``RETURNING`` is the re-read:
the row as stored, after its triggers, so a ``moddatetime`` trigger's ``updated_at`` (which overwrites the one the
fix sets) is what the audit log records, and the fix never compares it with a time it sent.
"""

from __future__ import annotations

from typing import Any

from vyxops.fetch.clients.postgres import PgClient


def read_row_direct(client: PgClient, table: str, key: str, row_id: str) -> dict[str, Any] | None:
    """The row whose ``key`` is ``row_id`` now (every column, as PostgREST renders it), or None."""
    from psycopg import sql

    query = sql.SQL("SELECT * FROM {} WHERE {} = %s").format(sql.Identifier("public", table), sql.Identifier(key))
    rows = client.run(query, [row_id], f"public.{table}")
    return rows[0] if rows else None


def update_row_direct(
    client: PgClient, table: str, values: dict[str, Any], guard: list[tuple[str, Any]], stamp: str | None
) -> list[dict[str, Any]]:
    """``UPDATE public.<table> SET values (and ``stamp`` = now()) WHERE every guard column equals its value
    RETURNING *``, one transaction: the rows it changed, as stored (empty when the guard matched none)."""
    from psycopg import sql

    sets = [sql.SQL("{} = %s").format(sql.Identifier(k)) for k in values]
    if stamp:
        sets.append(sql.SQL("{} = now()").format(sql.Identifier(stamp)))
    query = sql.SQL("UPDATE {} SET {} WHERE {} RETURNING *").format(
        sql.Identifier("public", table),
        sql.SQL(", ").join(sets),
        sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k, _ in guard),
    )
    return client.run(query, [*values.values(), *(v for _, v in guard)], f"public.{table}")

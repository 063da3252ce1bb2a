"""RECONCILE_STUCK_ROWS through the database itself ($SUPABASE_DB_URL), when the session has it.

One ``UPDATE … WHERE key = … AND status = <as read> AND updated_at = <as read> RETURNING *`` in its own
transaction, on a connection opened for this write alone (the session's reads stay read-only): the guard is in the
``WHERE``, so a row that moved between the checks and the write is not matched, and the database itself refuses a
column the table lacks (42703) and a word its enum lacks (22P02), as PostgREST does. ``RETURNING`` is the re-read:
the row as stored, after its triggers, so a ``moddatetime`` trigger's ``updated_at`` (which overwrites the one the
fix sets) is what the audit log records, and the fix never compares it with a time it sent.
"""

from __future__ import annotations

from typing import Any

from vyxops.act.fixes.context import ApplyContext
from vyxops.act.fixes.model import Action, Outcome
from vyxops.act.fixes.steps import outcome_of, run_write
from vyxops.core.errors import PreconditionError
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


def apply_direct(ctx: ApplyContext, a: Action) -> Outcome:
    """The action applied through the session's database: the same checks and outcomes as through PostgREST."""
    from vyxops.act.fixes.reconcile_rows import _check_still_gone, _moved, _seen, row_moved

    s, r, c = ctx.session, a.read, ctx.contract.columns
    assert s.db is not None
    reader = s.db.reader()
    table, row_id, key = r["table"], r["row_id"], r.get("key") or c.key or "id"
    row = read_row_direct(reader, table, key, row_id)
    if row is None:
        raise PreconditionError(f"row {row_id} no longer exists in {table}")
    before = _seen(row, c)
    word = a.desired["status"]
    if row.get(c.status) == word:
        return Outcome(a.code, a.target, "skipped", f"already done: row {row_id} is {word}", before, a.desired)
    if _moved(row, r, c):
        raise PreconditionError(row_moved(_seen(row, c), r))
    _check_still_gone(ctx, r["machine_id"])
    values: dict[str, Any] = {c.status: word}
    if c.error and "error" in a.desired:
        values[c.error] = a.desired["error"]
    guard: list[tuple[str, Any]] = [(key, row_id), (c.status, r["status"])]
    if c.updated_at and r["updated_at_raw"] is not None:
        guard.append((c.updated_at, r["updated_at_raw"]))
    changed: list[dict[str, Any]] = []

    def write() -> None:
        with s.db.writer() as writer:  # type: ignore[union-attr]  # checked above
            changed.extend(update_row_direct(writer, table, values, guard, c.updated_at))

    def confirm() -> tuple[bool, dict[str, Any]]:
        now = changed[0] if changed else read_row_direct(reader, table, key, row_id)
        if now is None:
            raise PreconditionError(f"row {row_id} was deleted while it was being reconciled")
        if now.get(c.status) == word and (not c.error or now.get(c.error) == a.desired.get("error")):
            return True, _seen(now, c)
        if _moved(now, r, c):
            raise PreconditionError(row_moved(_seen(now, c), r))
        return False, _seen(now, c)

    step = run_write(
        ctx.log,
        a.code,
        "update_row",
        a.target,
        write=write,
        confirm=confirm,
        done=f"row {row_id} marked {word} in the database ({s.db.where})"
        + (f": {a.desired['error']}" if "error" in a.desired else ""),
        before=before,
        planned=a.desired,
    )
    return outcome_of(step, a.code, a.target, before)

"""RECONCILE_STUCK_ROWS: mark a row whose machine is gone with the table's failure word, if it is unchanged.

The word is the contract's first ``failed`` word, and the machine's fate goes into the
error column only when the table has one (SPEC.md); a table with no failure word gets
no action: the plan says why and shows the SQL a person would adapt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from vyxops.act.fixes.context import ApplyContext, PlanContext
from vyxops.act.fixes.model import Action, Outcome
from vyxops.act.fixes.reads import CANARY_USER_PREFIX, machine_state, read_row, same_time
from vyxops.act.fixes.reconcile_direct import read_row_direct, update_row_direct
from vyxops.act.fixes.registry import Fix, Place, register
from vyxops.act.fixes.steps import outcome_of, run_write
from vyxops.analysis.evidence import Evidence
from vyxops.core.contract import FAILED, Columns
from vyxops.core.errors import PreconditionError
from vyxops.core.facts import NOT_RUNNING_STATES, describe_exit
from vyxops.core.timeutil import iso

CODE = "RECONCILE_STUCK_ROWS"


def plan(ctx: PlanContext) -> list[Action]:
    """One action per row a finding says is stuck or drifting and whose machine is gone."""
    if not ctx.allowed(CODE):
        return []
    e = ctx.evidence
    machines = e.machines.set_index("machine_id") if not e.machines.empty else None
    asking: dict[str, list[Any]] = {}  # row id -> the findings that ask to reconcile it
    for f in ctx.inv.findings:
        row = f.facts.get("row")
        if CODE in f.fixes and row is not None and not _is_canary(row):  # canaries: CLEANUP_VERIFY_CANARY
            asking.setdefault(_row_key(row), []).append(f)
    if asking and e.contract.status.first(FAILED) is None:
        ctx.note(CODE, _no_failure_word(e, [found[0].facts["row"] for found in asking.values()]))
        return []
    actions = []
    for row_id, found in asking.items():
        row = found[0].facts["row"]
        mid = None if pd.isna(row["machine_id"]) else str(row["machine_id"])
        m = machines.loc[mid] if machines is not None and mid in machines.index else None
        state = None if m is None else str(m["state"])
        if state is not None and state not in NOT_RUNNING_STATES:
            # Never for a machine that runs (or may still come up): the DB may be right soon.
            ctx.note(CODE, f"row {row_id} not planned: machine {mid} is {state}")
            continue
        if row["role"] == FAILED:
            continue
        actions.append(_action(e, row, row_id, mid, state, sorted({f.code for f in found})))
    if not actions and not any(n.startswith(CODE) for n in ctx.notes):
        ctx.note(CODE, "already done: no row is stuck on a machine that is gone")
    return actions


def _row_key(row: pd.Series) -> str:
    """How a row is named: its key, else (a table without one) its machine id."""
    return str(row["id"]) if not pd.isna(row["id"]) else str(row["machine_id"])


def _no_failure_word(e: Evidence, rows: list[pd.Series]) -> str:
    """Why nothing is planned when the table accepts no failure word, and the SQL a person would adapt."""
    c = e.contract.columns
    ids = ", ".join(sql_text(_row_key(r)) for r in rows[:5])
    sql = (
        f"update public.{sql_ident(e.contract.table.name)} set {sql_ident(c.status)} = '<a terminal word>' "
        f"where {sql_ident(c.key or c.machine_id)} in ({ids}) "
        f"and {sql_ident(c.status)} = {sql_text(rows[0]['status'])};"
    )
    return (
        f"not planned: {e.contract.table.name}.{c.status} accepts no failure word (the contract's status.failed is "
        f"empty), so vyxops cannot mark the stuck rows; adapt and run by hand: {sql}"
    )


def _is_canary(row: pd.Series) -> bool:
    return isinstance(row["user_id"], str) and row["user_id"].startswith(CANARY_USER_PREFIX)


def _action(e: Evidence, row: pd.Series, row_id: str, mid: str | None, state: str | None, codes: list[str]) -> Action:
    fate = machine_fate(e, mid, state)
    c, word = e.contract.columns, e.contract.status.first(FAILED)
    raw = None if pd.isna(row["updated_at_raw"]) else str(row["updated_at_raw"])
    desired: dict[str, Any] = {"status": word}
    if c.error:
        desired["error"] = fate
    guard = f"row still {row['status']}" + (f" with {c.updated_at} {raw}" if c.updated_at else "")
    return Action(
        code=CODE,
        target=f"db_row:{row_id}",
        current=f"status {row['status']} since {raw} (machine {mid}: {state or 'not found'})",
        new=f"status {word}" + (f", {c.error}: {fate}" if c.error else f" (no error column: {fate})"),
        precondition=f"{guard}; machine {mid} still gone",
        risk=f"low: one row, guarded by its status{' and ' + c.updated_at if c.updated_at else ''}; the app treats "
        "it as a failed session",
        reason="asked for by " + ", ".join(codes),
        read={
            "table": e.contract.table.name,
            "key": c.key or c.machine_id,
            "row_id": row_id,
            "status": str(row["status"]),
            "updated_at_raw": raw,
            "machine_id": mid,
            "machine_state": state,
        },
        desired=desired,
    )


def machine_fate(e: Evidence, mid: str | None, state: str | None) -> str:
    """One sentence saying what became of the machine, from its events."""
    if mid is None:
        return "the row names no machine"
    if state is None:
        return f"machine {mid} does not exist on Fly (not found by id)"
    evs = e.machine_events[e.machine_events["machine_id"] == mid].sort_values("time")
    exit_ = evs[evs["type"] == "exit"]
    destroy = evs[evs["type"] == "destroy"]
    failed = evs[evs["status"].isin(["launch_failed", "failed"])]
    parts = []
    if not exit_.empty:
        x = exit_.iloc[-1]
        code = None if pd.isna(x["exit_code"]) else int(x["exit_code"])
        oom = None if pd.isna(x["oom_killed"]) else bool(x["oom_killed"])
        parts.append(f"machine {mid} {describe_exit(code, oom)} at {iso(x['time'])}")
    elif not failed.empty:
        x = failed.iloc[-1]
        err = "" if pd.isna(x["error"]) else f" ({x['error']})"
        parts.append(f"machine {mid} never started{err}")
    else:
        parts.append(f"machine {mid} is {state}")
    if not destroy.empty:
        d = destroy.iloc[-1]
        by = "auto-destroyed" if (not exit_.empty and d["source"] != "user") else "destroyed"
        parts.append(f"was {by} at {iso(d['time'])}")
    return " and ".join(parts)


def apply(ctx: ApplyContext, a: Action) -> Outcome:
    """Through the database when its URL is given (the guard in the UPDATE's WHERE), else through PostgREST
    (the guard in the PATCH's filters): one set of checks and outcomes, two ways to read and write the row."""
    s, r, c = ctx.session, a.read, ctx.contract.columns
    table, row_id, key = r["table"], r["row_id"], r.get("key") or c.key or "id"
    if s.db is None:
        return _reconcile(
            ctx,
            a,
            read=lambda: read_row(s, table, row_id, key),
            write=lambda: s.supabase.update_rows(table, *_write(c, a, iso(s.now()).replace("Z", "+00:00"), key)),
            where="",
        )
    db = s.db
    reader = db.reader()
    values, filters = _write(c, a, "", key)
    if c.updated_at:
        values.pop(c.updated_at)  # the database sets it (update_row_direct, and Supabase's moddatetime trigger)
    guard = [(column, value) for column, _, value in filters]
    changed: list[dict[str, Any]] = []  # the UPDATE's RETURNING: the re-read, as the trigger left the row

    def write() -> None:
        with db.writer() as writer:
            changed.extend(update_row_direct(writer, table, values, guard, c.updated_at))

    return _reconcile(
        ctx,
        a,
        read=lambda: changed[0] if changed else read_row_direct(reader, table, key, row_id),
        write=write,
        where=f" in the database ({db.where})",
    )


def _reconcile(
    ctx: ApplyContext,
    a: Action,
    *,
    read: Callable[[], dict[str, Any] | None],
    write: Callable[[], object],
    where: str,
) -> Outcome:
    """The row's checks (gone, already done, moved since planning, machine still gone), the guarded write and
    its confirmation by a re-read, whichever way the row is read and written."""
    r, c = a.read, ctx.contract.columns
    table, row_id = r["table"], r["row_id"]
    row = read()
    if row is None:
        raise PreconditionError(f"row {row_id} no longer exists in {table}")
    before = _seen(row, c)
    word = a.desired["status"]
    if row.get(c.status) == word:
        return Outcome(a.code, a.target, "skipped", f"already done: row {row_id} is {word}", before, a.desired)
    if _moved(row, r, c):
        raise PreconditionError(row_moved(_seen(row, c), r))
    _check_still_gone(ctx, r["machine_id"])

    def confirm() -> tuple[bool, dict[str, Any]]:
        now = read()
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
        done=f"row {row_id} marked {word}{where}" + (f": {a.desired['error']}" if "error" in a.desired else ""),
        before=before,
        planned=a.desired,
    )
    return outcome_of(step, a.code, a.target, before)


def _check_still_gone(ctx: ApplyContext, mid: str | None) -> None:
    """PreconditionError when the row's machine runs again (or may still come up): the DB may be right soon."""
    if not mid:
        return
    state = machine_state(ctx.session, ctx.app, mid)
    if state is not None and state not in NOT_RUNNING_STATES:
        raise PreconditionError(f"machine {mid} is {state} now, not gone: the row is left alone")


def _write(c: Columns, a: Action, stamp: str, key: str) -> tuple[dict[str, Any], list[tuple[str, str, Any]]]:
    """The PATCH: the failure word (and the fate, the time, where the table has those columns), and its guard,
    which is the filter: it matches only the row as it was read."""
    r = a.read
    values: dict[str, Any] = {c.status: a.desired["status"]}
    if c.error and "error" in a.desired:
        values[c.error] = a.desired["error"]
    if c.updated_at:
        values[c.updated_at] = stamp
    guard: list[tuple[str, str, Any]] = [(key, "eq", r["row_id"]), (c.status, "eq", r["status"])]
    if c.updated_at and r["updated_at_raw"] is not None:
        guard.append((c.updated_at, "eq", r["updated_at_raw"]))
    return values, guard


def _seen(row: dict[str, Any], c: Columns) -> dict[str, Any]:
    """A row as the audit log records it: its status, its last update and its error (when the table has them)."""
    out = {"status": row.get(c.status)}
    if c.updated_at:
        out["updated_at"] = row.get(c.updated_at)
    if c.error:
        out["error"] = row.get(c.error)
    return out


def _moved(row: dict[str, Any], read: dict[str, Any], c: Columns) -> bool:
    """Whether the row changed since it was read: another status, or another last update."""
    changed = bool(c.updated_at) and not same_time(row.get(c.updated_at), read["updated_at_raw"])
    return row.get(c.status) != read["status"] or changed


def row_moved(row: dict[str, Any], read: dict[str, Any]) -> str:
    """``row`` as :func:`_seen` records it."""
    return (
        f"row {read['row_id']} changed since it was read: now status {row.get('status')} updated_at "
        f"{row.get('updated_at')}, planned from status {read['status']} updated_at {read['updated_at_raw']}; left alone"
    )


def native(a: Action, place: Place) -> list[str]:
    r, c = a.read, place.contract.columns
    sets = [f"{sql_ident(c.status)} = {sql_text(a.desired['status'])}"]
    if c.error and "error" in a.desired:
        sets.append(f"{sql_ident(c.error)} = {sql_text(a.desired['error'])}")
    where = [
        f"{sql_ident(r.get('key') or c.key)} = {sql_text(r['row_id'])}",
        f"{sql_ident(c.status)} = {sql_text(r['status'])}",
    ]
    if c.updated_at:
        sets.append(f"{sql_ident(c.updated_at)} = now()")
    if c.updated_at and r["updated_at_raw"] is not None:  # the guard apply sends (_write), as SQL
        where.append(f"{sql_ident(c.updated_at)} = {sql_text(r['updated_at_raw'])}")
    return [f"update public.{sql_ident(r['table'])} set {', '.join(sets)} where {' and '.join(where)};"]


def dashboard(a: Action, place: Place) -> list[str]:
    return [place.supabase("sql/new"), place.supabase("editor")]


def sql_text(value: object) -> str:
    """A SQL string literal (quotes doubled), or ``null``."""
    return "null" if value is None else "'" + str(value).replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """A SQL identifier, quoted unless it is plain lower-case."""
    return name if name.replace("_", "").isalnum() and name.islower() else '"' + name.replace('"', '""') + '"'


FIX = register(
    Fix(
        code=CODE,
        order=50,
        description="mark DB rows whose machine is gone as failed, with the machine's fate, if unchanged since read",
        plan=plan,
        apply=apply,
        native=native,
        dashboard=dashboard,
    )
)

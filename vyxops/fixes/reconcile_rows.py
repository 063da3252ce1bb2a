"""RECONCILE_STUCK_ROWS: mark a row whose machine is gone as ``failed`` with the machine's fate, if it is unchanged."""

from __future__ import annotations

from typing import Any

import pandas as pd

from vyxops.errors import PreconditionError
from vyxops.evidence import Evidence
from vyxops.facts import NOT_RUNNING_STATES, describe_exit
from vyxops.fixes.context import ApplyContext, PlanContext
from vyxops.fixes.model import Action, Outcome
from vyxops.fixes.reads import CANARY_USER_PREFIX, machine_state, read_row, same_time
from vyxops.fixes.registry import Fix, Place, register
from vyxops.fixes.steps import outcome_of, run_write
from vyxops.timeutil import iso

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
            asking.setdefault(str(row["id"]), []).append(f)
    actions = []
    for row_id, found in asking.items():
        row = found[0].facts["row"]
        mid = None if pd.isna(row["fly_machine_id"]) else str(row["fly_machine_id"])
        m = machines.loc[mid] if machines is not None and mid in machines.index else None
        state = None if m is None else str(m["state"])
        if state is not None and state not in NOT_RUNNING_STATES:
            # Never for a machine that runs (or may still come up): the DB may be right soon.
            ctx.note(CODE, f"row {row_id} not planned: machine {mid} is {state}")
            continue
        if row["status"] == "failed":
            continue
        actions.append(_action(e, row, row_id, mid, state, sorted({f.code for f in found})))
    if not actions and not any(n.startswith(CODE) for n in ctx.notes):
        ctx.note(CODE, "already done: no row is stuck on a machine that is gone")
    return actions


def _is_canary(row: pd.Series) -> bool:
    return isinstance(row["user_id"], str) and row["user_id"].startswith(CANARY_USER_PREFIX)


def _action(e: Evidence, row: pd.Series, row_id: str, mid: str | None, state: str | None, codes: list[str]) -> Action:
    fate = machine_fate(e, mid, state)
    raw = None if pd.isna(row["updated_at_raw"]) else str(row["updated_at_raw"])
    table = str(row["table"]) if "table" in row and not pd.isna(row["table"]) else "machines"
    return Action(
        code=CODE,
        target=f"db_row:{row_id}",
        current=f"status {row['status']} since {raw} (machine {mid}: {state or 'not found'})",
        new="status failed, error: " + fate,
        precondition=f"row still {row['status']} with updated_at {raw}; machine {mid} still gone",
        risk="low: one row, guarded by its status and updated_at; the app treats it as a failed session",
        reason="asked for by " + ", ".join(codes),
        read={
            "table": table,
            "row_id": row_id,
            "status": str(row["status"]),
            "updated_at_raw": raw,
            "machine_id": mid,
            "machine_state": state,
        },
        desired={"status": "failed", "error": fate},
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
    s = ctx.session
    r = a.read
    table, row_id = r["table"], r["row_id"]
    row = read_row(s, table, row_id)
    if row is None:
        raise PreconditionError(f"row {row_id} no longer exists in {table}")
    before = {"status": row.get("status"), "updated_at": row.get("updated_at"), "error": row.get("error")}
    if row.get("status") == "failed":
        return Outcome(a.code, a.target, "skipped", f"already done: row {row_id} is failed", before, a.desired)
    if row.get("status") != r["status"] or not same_time(row.get("updated_at"), r["updated_at_raw"]):
        raise PreconditionError(row_moved(row, r))
    mid = r["machine_id"]
    if mid:
        state = machine_state(s, ctx.app, mid)
        if state is not None and state not in NOT_RUNNING_STATES:
            raise PreconditionError(f"machine {mid} is {state} now, not gone: the row is left alone")
    stamp = iso(s.now()).replace("Z", "+00:00")
    values = {"status": "failed", "error": a.desired["error"], "updated_at": stamp}
    # The guard is the filter: the PATCH matches only the row as it was read.
    guard = [("id", "eq", row_id), ("status", "eq", r["status"]), ("updated_at", "eq", r["updated_at_raw"])]

    def confirm() -> tuple[bool, dict[str, Any]]:
        now = read_row(s, table, row_id)
        if now is None:
            raise PreconditionError(f"row {row_id} was deleted while it was being reconciled")
        seen = {"status": now.get("status"), "updated_at": now.get("updated_at"), "error": now.get("error")}
        if now.get("status") == "failed" and now.get("error") == a.desired["error"]:
            return True, seen
        if now.get("status") != r["status"] or not same_time(now.get("updated_at"), r["updated_at_raw"]):
            raise PreconditionError(row_moved(now, r))
        return False, seen

    step = run_write(
        ctx.log,
        a.code,
        "update_row",
        a.target,
        write=lambda: s.supabase.update_rows(table, values, guard),
        confirm=confirm,
        done=f"row {row_id} marked failed: {a.desired['error']}",
        before=before,
        planned=a.desired,
    )
    return outcome_of(step, a.code, a.target, before)


def row_moved(row: dict[str, Any], read: dict[str, Any]) -> str:
    return (
        f"row {read['row_id']} changed since it was read: now status {row.get('status')} updated_at "
        f"{row.get('updated_at')}, planned from status {read['status']} updated_at {read['updated_at_raw']}; left alone"
    )


def native(a: Action, place: Place) -> list[str]:
    r = a.read
    return [
        f"update public.{sql_ident(r['table'])} set status = 'failed', error = {sql_text(a.desired['error'])}, "
        f"updated_at = now() where id = {sql_text(r['row_id'])} and status = {sql_text(r['status'])} "
        f"and updated_at = {sql_text(r['updated_at_raw'])};"
    ]


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

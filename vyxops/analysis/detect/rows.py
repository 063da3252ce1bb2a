"""The DB link: rows that sit in a transitional status, and rows that disagree with Fly.

A DB discrepancy is never the root when a machine failure explains it (the ranking
asks the machine detectors); alone, it is: a machine that runs but never reported.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pandas as pd

from vyxops.analysis.detect.context import Context
from vyxops.analysis.detect.ledger import ENDED_ROLES
from vyxops.analysis.detect.model import Finding, Link, ev, register
from vyxops.core import facts
from vyxops.core.contract import RUNNING, STARTING
from vyxops.core.coverage import Gap
from vyxops.core.present import fmt_time


class _RowView(NamedTuple):
    """A DB row as of the window's end, with what the ledger says of its machine (NaT/NA when nothing)."""

    id: Any
    machine_id: Any
    status: Any
    role: Any
    created_at: Any
    updated_at: Any
    state_as_of: Any
    start_at: Any
    exit_at: Any
    machine_updated_at: Any


_LEDGER_FIELDS = ("state_as_of", "start_at", "exit_at", "updated_at")


def _rows(ctx: Context) -> list[_RowView]:
    """Rows as of the window's end, each with its machine's ledger state, start, exit and last update.

    Read as lists and matched through a dict: a dozen rows joined with the ledger in pandas
    cost a dozen operations for what a lookup per row does.
    """
    rows, led = ctx.e.machine_rows, ctx.ledger
    machines = dict(zip(led["machine_id"].tolist(), zip(*(led[c].tolist() for c in _LEDGER_FIELDS))))
    unknown = (pd.NA, pd.NaT, pd.NaT, pd.NaT)  # a row naming a machine the ledger does not hold
    out = []
    columns = ("id", "machine_id", "status", "role", "created_at", "updated_at")
    for rid, mid, status, role, created, updated in zip(*(rows[c].tolist() for c in columns)):
        if pd.notna(created) and created > ctx.as_of:
            continue  # not created yet at the window's end
        if pd.notna(updated) and updated > ctx.as_of:
            continue  # a row changed after the window: its status then is not known
        # A table without an updated_at column: a row's age counts from its creation (SPEC.md).
        changed = updated if pd.notna(updated) else created
        role = role if isinstance(role, str) else None
        out.append(_RowView(rid, mid, status, role, created, changed, *machines.get(mid, unknown)))
    return out


@register("DB_STATUS_STUCK", "DB_FLY_STATE_DRIFT", link=Link.DB, symptom=True)
def detect_rows(ctx: Context) -> list[Finding]:
    """DB_STATUS_STUCK (a row in a transitional status too long) and DB_FLY_STATE_DRIFT (the DB and Fly disagree)."""
    out: list[Finding] = []
    stuck_after = pd.Timedelta(minutes=ctx.t.stuck_after_minutes)
    drift_after = pd.Timedelta(minutes=ctx.t.drift_after_minutes)
    for row in _rows(ctx):
        state = None if pd.isna(row.state_as_of) else str(row.state_as_of)
        if row.role == STARTING and pd.notna(row.updated_at) and ctx.as_of - row.updated_at > stuck_after:
            out.append(_stuck(ctx, row, state))
        alive = state == facts.STARTED and pd.notna(row.start_at) and ctx.as_of - row.start_at > drift_after
        silent = alive and row.role is not None and row.role not in (RUNNING, *ENDED_ROLES)
        dead = row.role == RUNNING and facts.is_not_running(state)
        if silent or dead:
            out.append(_drift(ctx, row, state, silent))
    return out


def _row_series(ctx: Context, row_id: Any) -> pd.Series:
    row = ctx.row(row_id)
    assert row is not None  # it came from these rows
    return row


def _stuck(ctx: Context, row: Any, state: str | None) -> Finding:
    mid = row.machine_id
    minutes = int((ctx.as_of - row.updated_at).total_seconds() // 60)
    evidence = [
        ev("supabase.rows", row.created_at, f"row {row.id} for machine {mid} created with status {row.status}"),
        ev(
            "supabase.rows",
            row.updated_at,
            f"last updated {minutes} min before {fmt_time(ctx.as_of, ctx.tz)}; still {row.status}",
        ),
    ]
    if state is not None:
        evidence.append(ev("fly.machines", row.machine_updated_at, f"Fly says machine {mid} is {state}"))
    else:
        _unseen(ctx, mid, row.id)
        evidence.append(ev("fly.machines", None, f"machine {mid} was not found, even by id"))
    gone = facts.is_not_running(state)
    return Finding(
        "DB_STATUS_STUCK",
        "critical",
        f"row for machine {mid} has been {row.status} for {minutes} min",
        f"db_row:{row.id}",
        evidence,
        ["RECONCILE_STUCK_ROWS"] if gone else [],
        {"row": _row_series(ctx, row.id), "minutes": minutes, "machine_state": state, "machine_id": mid},
        at=row.updated_at,
    )


def _drift(ctx: Context, row: Any, state: str | None, silent: bool) -> Finding:
    mid = row.machine_id
    if silent:
        since = row.start_at + pd.Timedelta(minutes=ctx.t.drift_after_minutes)
        saw = f"machine {mid} started at {fmt_time(row.start_at, ctx.tz)} and runs"
    else:
        since = row.exit_at if pd.notna(row.exit_at) else row.machine_updated_at
        saw = f"machine {mid} is {state or 'not found, even by id'}"
        if state is None:
            _unseen(ctx, mid, row.id)
    evidence = [
        ev("fly.machines", row.machine_updated_at if state else None, saw),
        ev("supabase.rows", row.updated_at, f"row {row.id} status {row.status}"),
    ]
    return Finding(
        "DB_FLY_STATE_DRIFT",
        "critical",
        f"Fly says machine {mid} is {state or 'missing'}, the DB says {row.status}",
        f"machine:{mid}",
        evidence,
        [] if state == facts.STARTED else ["RECONCILE_STUCK_ROWS"],
        {"row": _row_series(ctx, row.id), "machine_state": state, "machine_id": mid, "silent": silent},
        at=since if pd.notna(since) else row.updated_at,
    )


def _unseen(ctx: Context, machine_id: str, row_id: str) -> None:
    """A row names a machine Fly no longer has: destroyed machines age out (PLATFORM.md)."""
    why = (
        f"row {row_id} names machine {machine_id}, which Fly no longer returns even by id: destroyed "
        "machines are kept for an undocumented time, so its story cannot be told (capture evidence early)"
    )
    ctx.gaps.append(Gap("fly.machines", why))

"""CLEANUP_VERIFY_CANARY: destroy a canary an earlier run left behind and close its rows.

Planned first in every plan, whatever ``--fix`` says: a leftover canary is a billed
machine and a lying row. Leftovers are found three ways: cleanup duties the audit log
never saw discharged, machines whose metadata user_id starts ``vyxops-verify-`` and
are not destroyed, and such rows still open.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import pandas as pd

from vyxops.act.fixes.canary import CLOSED_ROLES, app_name, clean_up, find_canary
from vyxops.act.fixes.context import ApplyContext, PlanContext
from vyxops.act.fixes.model import Action, Outcome
from vyxops.act.fixes.reads import CANARY_USER_PREFIX
from vyxops.act.fixes.reconcile_rows import sql_ident, sql_text
from vyxops.act.fixes.registry import Fix, Place, register
from vyxops.core.contract import FAILED, STOPPED

CODE = "CLEANUP_VERIFY_CANARY"


@dataclass
class _Found:
    machine_id: str | None = None
    sources: list[str] = field(default_factory=list)
    app: str | None = None  # the app holding its machine, when the audit log says (else the one investigated)


def plan(ctx: PlanContext) -> list[Action]:
    e = ctx.evidence
    found: dict[str, _Found] = {}  # user id -> what is known of the canary
    for duty in ctx.history.canaries:
        found[duty.user_id] = _Found(duty.machine_id, ["audit log"], duty.app)
    machines = e.machines[e.machines["user_id"].fillna("").str.startswith(CANARY_USER_PREFIX)]
    for _, m in machines[machines["state"] != "destroyed"].iterrows():
        c = found.setdefault(str(m["user_id"]), _Found())
        c.machine_id, c.app = str(m["machine_id"]), e.app
        c.sources.append("machine list")
    rows = e.machine_rows[e.machine_rows["user_id"].fillna("").str.startswith(CANARY_USER_PREFIX)]
    for _, r in rows[~rows["role"].isin(list(CLOSED_ROLES))].iterrows():
        c = found.setdefault(str(r["user_id"]), _Found())
        c.machine_id = c.machine_id or (None if pd.isna(r["machine_id"]) else str(r["machine_id"]))
        c.sources.append("open row")
    return [_action(ctx, user_id, c) for user_id, c in found.items()]


def _action(ctx: PlanContext, user_id: str, c: _Found) -> Action:
    e = ctx.evidence
    mid = c.machine_id
    m = e.machines[e.machines["machine_id"] == mid] if mid else e.machines.iloc[0:0]
    state = str(m.iloc[0]["state"]) if not m.empty else ("unknown" if mid else "no machine known")
    rows = e.machine_rows[e.machine_rows["user_id"] == user_id]
    open_rows = [f"{r['id']} {r['status']}" for _, r in rows.iterrows() if r["role"] not in CLOSED_ROLES]
    return Action(
        code=CODE,
        target=f"canary:{user_id}",
        current=f"machine {mid or '?'}{_elsewhere(c, e.app)} {state}; open rows: {', '.join(open_rows) or 'none'}",
        new="machine destroyed; rows closed (the table's failure word, with why where it keeps one)",
        precondition=f"the rows are still open and belong to user {user_id}",
        risk="low: the canary was vyxops's own (user vyxops-verify-…); no user's machine or row is touched",
        reason=f"left behind by an interrupted verification (found by: {', '.join(dict.fromkeys(c.sources))})",
        read={
            "user_id": user_id,
            "machine_id": mid,
            "machine_app": c.app,
            "machine_state": state,
            "open_rows": open_rows,
        },  # fmt: skip
        desired={"machine": "destroyed", "rows": "failed"},
    )


def _elsewhere(c: _Found, app: str) -> str:
    """`` in app X`` when the canary's machine is in another app than the one investigated."""
    return f" in app {c.app}" if c.app and c.app != app else ""


def apply(ctx: ApplyContext, a: Action) -> Outcome:
    user_id = str(a.read["user_id"])
    mid = a.read.get("machine_id")
    app = app_name(a.read.get("machine_app"))
    canary = find_canary(ctx.session, ctx.contract, user_id, str(mid) if mid else None, app=app, near=ctx.app)
    why = "canary left behind by an interrupted verification; cleaned up by a later run"
    status, text = clean_up(ctx, a.code, canary, why)
    after = {"machine_id": canary.machine_id, "cleanup": text}
    if status == "failed":
        return Outcome(a.code, a.target, "failed", f"cleanup failed: {text}", a.read, after)
    if status == "nothing to do":
        return Outcome(a.code, a.target, "skipped", f"already done: {text}", a.read, after)
    return Outcome(a.code, a.target, "applied", text, a.read, after)


def native(a: Action, place: Place) -> list[str]:
    out = []
    if a.read.get("machine_id"):
        app = str(a.read.get("machine_app") or place.app)  # the app the canary's machine is in, when known
        out.append(f"fly machines destroy --force {shlex.quote(str(a.read['machine_id']))} -a {shlex.quote(app)}")
    c, words = place.contract.columns, place.contract.status
    word = words.first(FAILED) or words.first(STOPPED)
    if not c.user or word is None:
        return out  # rows cannot be told apart, or closed, by hand either
    sets = [f"{sql_ident(c.status)} = {sql_text(word)}"]
    if c.error:
        sets.append(f"{sql_ident(c.error)} = 'vyxops canary cleaned up by hand'")
    if c.updated_at:
        sets.append(f"{sql_ident(c.updated_at)} = now()")
    closed = ", ".join(sql_text(w) for w in (*words.failed, *words.stopped))
    out.append(
        f"update public.{sql_ident(place.table)} set {', '.join(sets)} "
        f"where {sql_ident(c.user)} = {sql_text(a.read['user_id'])} and {sql_ident(c.status)} not in ({closed});"
    )
    return out


def dashboard(a: Action, place: Place) -> list[str]:
    return [place.fly("machines"), place.supabase("sql/new")]


FIX = register(
    Fix(
        code=CODE,
        order=0,
        description="destroy a verification canary an interrupted run left behind and close its rows (always planned)",
        plan=plan,
        apply=apply,
        native=native,
        dashboard=dashboard,
    )
)

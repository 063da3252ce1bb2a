"""Verification canaries: find one by its user id, watch it come up, and clean it up, every write logged.

A canary is a machine (and its DB row) that VERIFY_PROVISIONING provisions through
the real path, with user id ``vyxops-verify-…``. It must never outlive the run that
made it: its id and cleanup duty go to the audit log the moment the platform returns
it, cleanup tolerates every error type and believes only what it reads back, and
CLEANUP_VERIFY_CANARY finishes the job for a run that was killed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vyxops.act.fixes.context import ApplyContext
from vyxops.act.fixes.reads import machine_state, read_row
from vyxops.act.fixes.steps import describe_error, run_write
from vyxops.core import facts
from vyxops.core.checks import APP_NAME
from vyxops.core.contract import FAILED, RUNNING, STOPPED, TERMINAL, Contract
from vyxops.core.errors import NotFoundError
from vyxops.core.facts import CANARY_USER_PREFIX, NOT_RUNNING_STATES
from vyxops.core.timeutil import iso
from vyxops.fetch.session import Session

START_BUDGET_S = 120.0  # a machine normally starts in seconds; a pull may take a minute
DB_BUDGET_S = 60.0  # the app reports `running` to the DB a few seconds after start
MACHINE_CHECK_EVERY = 5  # DB polls between looks at the machine (stop waiting when it is gone)
#: Row roles (vyxops.core.contract) of a closed row: the session is over, one way or another.
CLOSED_ROLES = (STOPPED, FAILED, TERMINAL)
LAUNCHING_STATES = facts.LAUNCHING_STATES
SETTLE_BUDGET_S = 30.0  # how long cleanup lets a launching canary come up before destroying it


@dataclass
class Canary:
    """One canary: its user id, its machine and the app it is in (when known), and its rows as last read.

    ``app`` is where the provisioning function created the machine, which need not be the app
    investigated (a function may create its machines in an app of its own: its ``FLY_APP_NAME``).
    It comes from the function's answer, else the row it wrote (the contract's app column), else
    a look through the org's apps; None when none of them shows the machine.
    """

    user_id: str
    machine_id: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    app: str | None = None
    app_from: str = ""  # how ``app`` was learnt: "the function's answer", "its row", "the org's apps"

    def ref(self) -> dict[str, Any]:
        """How the audit log names it."""
        return {"user_id": self.user_id, "machine_id": self.machine_id, "app": self.app}

    def where(self) -> str:
        """``machine X in app Y`` for a reason or a report."""
        return f"machine {self.machine_id} in app {self.app or '(unknown)'}"


def _rows(session: Session, contract: Contract, what: str, value: str) -> list[dict[str, Any]]:
    """The canary rows (user column ``vyxops-verify-…``) whose ``what`` column (a contract key) is ``value``."""
    c = contract.columns
    column, user = getattr(c, what), c.user
    rows = session.supabase.select_all(
        contract.table.name, filters=[(column, "eq", value)], order=c.key or c.created_at
    ).rows
    if not isinstance(rows, list) or any(not isinstance(r, dict) for r in rows):
        raise ValueError(f"PostgREST answered rows that are not objects: {str(rows)[:80]}")
    return [r for r in rows if user and str(r.get(user) or "").startswith(CANARY_USER_PREFIX)]


def _names(machine: dict[str, Any], user_id: str) -> bool:
    """Whether a machine's metadata names the canary's user (whatever key the team's function uses)."""
    metadata = (machine.get("config") or {}).get("metadata") or {}
    return isinstance(metadata, dict) and user_id in metadata.values()


def app_name(value: object) -> str | None:
    """``value`` when it is a Fly app name (it goes into URL paths), else None."""
    return value if isinstance(value, str) and APP_NAME.fullmatch(value) else None


def find_canary(
    session: Session,
    contract: Contract,
    user_id: str,
    machine_id: str | None = None,
    *,
    app: str | None = None,
    near: str | None = None,
) -> Canary:
    """Look the canary up on both platforms: its rows by the table's user column, its machine and app.

    ``machine_id`` and ``app`` are what the function's answer said (None when it did not);
    the row the function wrote tells the rest; the org's apps are searched (``near``, the
    app investigated, first) only when neither does. The investigated app is never assumed.
    """
    found = Canary(user_id, machine_id, app=app, app_from="the function's answer" if app else "")
    column = contract.columns.machine_id
    found.rows = _rows(session, contract, "user", user_id) if contract.columns.user else []
    if found.machine_id is None:
        found.machine_id = next((str(r[column]) for r in found.rows if r.get(column)), None)
    elif not found.rows:
        found.rows = _rows(session, contract, "machine_id", found.machine_id)
    if found.app is None:
        found.app = _row_app(contract, found)
        found.app_from = "its row" if found.app else ""
    if found.app is None or found.machine_id is None:
        _search_org(session, found, near)
    return found


def _row_app(contract: Contract, canary: Canary) -> str | None:
    """The app the function wrote into the canary's row (the contract's app column), when the table has one."""
    c = contract.columns
    if not c.app:
        return None
    mine = [r for r in canary.rows if canary.machine_id is None or str(r.get(c.machine_id)) == canary.machine_id]
    return next((a for a in (app_name(r.get(c.app)) for r in mine) if a), None)


def _search_org(session: Session, canary: Canary, near: str | None) -> None:
    """Find the canary's machine in the org's apps (by id, else by the user its metadata names), destroyed ones too."""
    listed = [app_name(a.get("name")) for a in session.fly.list_apps(session.org) if isinstance(a, dict)]
    apps = [a for a in dict.fromkeys([near, *listed]) if a]
    for app in apps:
        machines = [m for m in session.fly.list_machines(app, include_deleted=True) if isinstance(m, dict)]
        mine = [m for m in machines if str(m.get("id")) == canary.machine_id] or (
            [m for m in machines if _names(m, canary.user_id)] if canary.machine_id is None else []
        )
        if mine:
            canary.machine_id = str(max(mine, key=lambda m: str(m.get("created_at") or ""))["id"])
            canary.app, canary.app_from = app, f"the org's apps ({session.org})"
            return


def machine_story(session: Session, app: str, mid: str, seen: dict[str, Any]) -> str:
    """The machine's state now ("not found" when Fly does not know it); records its last exit in ``seen``."""
    try:
        m = session.fly.get_machine(app, mid)
    except NotFoundError:
        return "not found"
    state = str(m.get("state"))
    for ev in m.get("events") or []:  # newest first
        x = (ev.get("request") or {}).get("exit_event") or None
        if ev.get("type") == "exit" and x:
            seen["exit_code"] = x.get("exit_code")
            seen["machine_story"] = (
                f"exited with code {x.get('exit_code')} (requested_stop={x.get('requested_stop')}) and is {state}"
            )
            break
        if ev.get("status") in ("launch_failed", "failed"):
            err = (ev.get("request") or {}).get("error") or ev.get("status")
            seen["machine_story"] = f"failed to launch ({err}) and is {state}"
            break
    return state


def wait_started(session: Session, app: str, mid: str, seen: dict[str, Any]) -> str | None:
    """Wait (≤ START_BUDGET_S) for the machine to start; None when it did, else what was seen."""
    t0 = session.clock.now()
    while True:
        try:
            got = session.fly.wait_machine(app, mid, "started", timeout_s=60)
        except NotFoundError:  # gone before it started (e.g. a failed pull, then destroyed)
            seen["machine_state"] = machine_story(session, app, mid, seen)
            return f"machine {mid} never reached started: {seen.get('machine_story') or seen['machine_state']}"
        if got is not None:
            seen["machine_started_at"] = iso(session.now())
            seen["machine_state"] = "started"
            return None
        if session.clock.now() - t0 >= START_BUDGET_S:
            seen["machine_state"] = state = machine_story(session, app, mid, seen)
            return f"machine {mid} did not reach started within {START_BUDGET_S:.0f} s (state {state})"


def wait_row_running(session: Session, app: str, contract: Contract, mid: str, seen: dict[str, Any]) -> str | None:
    """Poll the DB row once a second (≤ DB_BUDGET_S) for a running word; stop early when the machine is gone."""
    t0 = session.clock.now()
    polls = 0
    c = contract.columns
    while True:
        rows = _rows(session, contract, "machine_id", mid)
        row = rows[0] if rows else None
        polls += 1
        seen["row_status"] = row.get(c.status) if row else None
        seen["row_id"] = row.get(c.key) if row and c.key else None
        waited = session.clock.now() - t0
        if row is not None and contract.status.role(row.get(c.status)) == RUNNING:
            seen["waited_s"] = round(waited, 1)
            return None
        if polls % MACHINE_CHECK_EVERY == 0:
            seen["machine_state"] = state = machine_story(session, app, mid, seen)
            if state in NOT_RUNNING_STATES or state == "not found":
                story = seen.get("machine_story") or state
                return f"machine {mid} reached started, then {story}; its row stayed {seen['row_status'] or 'absent'}"
        if waited >= DB_BUDGET_S:
            seen["machine_state"] = state = machine_story(session, app, mid, seen)
            seen["waited_s"] = round(waited, 1)
            return (
                f"machine {mid} is {state} but its row is {seen['row_status'] or 'absent'} after {DB_BUDGET_S:.0f} s "
                "(the app never reported running)"
            )
        session.clock.sleep(1)


def clean_up(ctx: ApplyContext, code: str, canary: Canary, problem: str | None) -> tuple[str, str]:
    """Destroy the canary's machine (in its own app) and close its rows, each write logged and read back;
    then read both platforms again and log what is left, or that nothing is.

    Rows get the table's first stopped word when provisioning worked (the machine was
    removed on purpose), its first failure word with ``problem`` when it did not (the
    stopped word when the table has none). Returns (``cleaned`` | ``nothing to do`` |
    ``failed``, what was done and what is left); never raises an Exception.
    """
    done: list[str] = []
    wrote = False
    try:
        wrote = _clean(ctx, code, canary, problem, done)
    except Exception as exc:  # a read failed: what was done stays said, the duty stays open
        done.append(f"then {describe_error(exc)}")
    left = _settle(ctx, code, canary)
    if left:
        return "failed", "; ".join([*done, left])
    return ("cleaned" if wrote else "nothing to do"), "; ".join(done) or "machine and rows already gone"


def _clean(ctx: ApplyContext, code: str, canary: Canary, problem: str | None, done: list[str]) -> bool:
    """The writes of :func:`clean_up`, each said in ``done``; whether any was made. Stops at the first that failed."""
    wrote = False
    if canary.machine_id and canary.app is None:
        done.append(f"machine {canary.machine_id} was not destroyed: {_unknown_app(ctx, canary)}")
        return wrote
    if canary.machine_id:
        ok, text, acted = _destroy(ctx, code, canary)
        done.append(text)
        wrote |= acted
        if not ok:
            return wrote
    closed = ctx.contract.status.role
    status = ctx.contract.columns.status
    rows = _rows(ctx.session, ctx.contract, "user", canary.user_id) if ctx.contract.columns.user else []
    for row in rows:  # as they are now, not as first read
        if closed(row.get(status)) in CLOSED_ROLES:
            continue
        ok, text = _close_row(ctx, code, canary, row, problem)
        done.append(text)
        wrote = True
        if not ok:
            return wrote
    return wrote


def _unknown_app(ctx: ApplyContext, canary: Canary) -> str:
    return (
        f"no app is known to hold it (not in {ctx.contract.function}'s answer, its row or any app of org "
        f"{ctx.session.org}): find it with `fly machines list -a <the function's app>` and destroy it"
    )


def destroy_command(canary: Canary) -> str:
    """The platform's own command that removes the canary's machine."""
    return f"`fly machines destroy --force {canary.machine_id} -a {canary.app or '<its app>'}`"


def _destroy(ctx: ApplyContext, code: str, canary: Canary) -> tuple[bool, str, bool]:
    s, mid, app = ctx.session, str(canary.machine_id), str(canary.app)
    state = machine_state(s, app, mid)
    if state in LAUNCHING_STATES:
        state = _let_it_settle(s, app, mid) or state
    if state in (None, "destroyed"):
        return True, f"machine {mid} (app {app}) already gone", False

    def confirm() -> tuple[bool, dict[str, Any]]:
        now = machine_state(s, app, mid)
        return now in (None, "destroyed"), {"state": now or "not found"}

    step = run_write(
        ctx.log,
        code,
        "destroy_machine",
        f"machine:{mid}",
        write=lambda: s.fly.destroy_machine(app, mid, force=True),
        confirm=confirm,
        done=f"machine {mid} destroyed (app {app})",
        before={"state": state},
        planned={"state": "destroyed"},
        intent={"canary": canary.ref()},
    )
    if step.status == "applied":
        return True, step.reason, True
    return False, f"machine {mid} in app {app} is not destroyed ({step.reason})", True


def _let_it_settle(session: Session, app: str, mid: str) -> str | None:
    """Wait (≤ SETTLE_BUDGET_S) for a canary still launching to start, so its record reads "started, then
    destroyed" instead of "never started": a canary destroyed mid-launch looks like a launch failure."""
    try:
        session.fly.wait_machine(app, mid, "started", timeout_s=int(SETTLE_BUDGET_S))
        return machine_state(session, app, mid)
    except Exception:  # gone, or the wait failed: destroy it as it is
        return None


def _close_row(
    ctx: ApplyContext, code: str, canary: Canary, row: dict[str, Any], problem: str | None
) -> tuple[bool, str]:
    s, c, words = ctx.session, ctx.contract.columns, ctx.contract.status
    row_id = str(row.get(c.key) if c.key else row.get(c.machine_id))
    status = (words.first(FAILED) if problem else None) or words.first(STOPPED) or words.first(FAILED)
    if status is None:  # never a null status: the row is left as it is, and the result says why
        return False, f"row {row_id} left {row.get(c.status)}: the contract has no stopped or failed word to close it"
    values: dict[str, Any] = {c.status: status}
    if c.error:
        values[c.error] = f"vyxops VERIFY_PROVISIONING canary: {problem}" if problem else None
    if c.updated_at:
        values[c.updated_at] = iso(s.now()).replace("Z", "+00:00")
    guard = [(c.key or c.machine_id, "eq", row_id), (c.user, "eq", canary.user_id), (c.status, "eq", row.get(c.status))]

    def confirm() -> tuple[bool, dict[str, Any]]:
        now = read_row(s, ctx.table, row_id, c.key or c.machine_id)
        got = None if now is None else now.get(c.status)
        return got is None or words.role(got) in CLOSED_ROLES, {"status": got}

    step = run_write(
        ctx.log,
        code,
        "close_row",
        f"db_row:{row_id}",
        write=lambda: s.supabase.update_rows(ctx.table, values, guard),
        confirm=confirm,
        done=f"row {row_id} marked {status}",
        before={"status": row.get(c.status)},
        planned={"status": status},
        intent={"canary": canary.ref()},
    )
    if step.status == "applied":
        return True, step.reason
    return False, f"row {row_id} is not closed ({step.reason})"


def _settle(ctx: ApplyContext, code: str, canary: Canary) -> str:
    """Read the platforms back and log what is left of the canary ("" when nothing, its duty then closed).

    Fly is asked for the machine in the app that holds it (destroyed, or not found there, is
    gone) and PostgREST for the canary's rows (each closed): the audit log says "nothing of
    the canary is left" only when both say so, else it says what is left and how to remove it.
    """
    txn = ctx.log.intent(code, "settle_canary", f"canary:{canary.user_id}", canary=canary.ref())
    try:
        left = _left(ctx, canary)
    except Exception as exc:
        left = [f"whether the canary is gone could not be read ({describe_error(exc)})"]
        if canary.machine_id:
            left.append(f"check {canary.where()} and remove it with {destroy_command(canary)}")
    if left:
        why = "left: " + "; ".join(left)
        ctx.log.outcome(txn, "failed", why, canary=canary.ref())
        return why
    gone = f"{canary.where()} gone" if canary.machine_id else "no machine was made"
    ctx.log.outcome(
        txn,
        "applied",
        f"read back from the platforms: {gone}, rows closed: nothing of the canary is left",
        canary_cleaned=canary.ref(),
    )
    return ""


def _left(ctx: ApplyContext, canary: Canary) -> list[str]:
    """What the platforms still hold of the canary, each with how to remove it.

    A machine is gone when Fly answers ``state: destroyed`` (a terminal state, kept for a while) or 404 (no
    longer kept): /work/shared/PLATFORM.md, "States" and "Destroyed machines do not stay forever". A 404 means
    gone only when asked in the app that holds the machine: asked in another app, Fly answers 404 for a
    machine that runs, which is how the issue 19 probe logged a running canary as gone.
    """
    left = []
    if canary.machine_id and canary.app is None:
        left.append(f"machine {canary.machine_id}: {_unknown_app(ctx, canary)}")
    elif canary.machine_id:
        state = machine_state(ctx.session, str(canary.app), canary.machine_id)
        if state not in (None, "destroyed"):
            left.append(f"{canary.where()} is {state}: remove it with {destroy_command(canary)}")
    c, role = ctx.contract.columns, ctx.contract.status.role
    rows = _rows(ctx.session, ctx.contract, "user", canary.user_id) if c.user else []
    for row in rows:
        if role(row.get(c.status)) not in CLOSED_ROLES:
            row_id = row.get(c.key) if c.key else row.get(c.machine_id)
            left.append(f"row {row_id} is still {row.get(c.status)} (CLEANUP_VERIFY_CANARY closes it)")
    return left

"""Applying a plan: guarded, one writer at a time, every write a logged transaction, every action an Outcome."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from vyxops.act.fixes import registry
from vyxops.act.fixes.audit_log import AuditLog, read_history
from vyxops.act.fixes.context import ApplyContext
from vyxops.act.fixes.lock import describe_holder, hold
from vyxops.act.fixes.model import NOT_RUN, Outcome, Plan, Result
from vyxops.act.fixes.steps import describe_error
from vyxops.core import config
from vyxops.core.errors import ConfigError, InputError, PreconditionError
from vyxops.core.timeutil import iso
from vyxops.fetch.session import Session

INTERRUPTED = "not run: the run was interrupted"


def apply_plan(
    session: Session,
    plan: Plan,
    *,
    dry_run: bool = True,
    confirm: str | None = None,
    app: str,
    audit_log: Path | None = None,
    who: str | None = None,
    lock_token: str | None = None,
    out_dir: str | Path | None = None,
) -> Result:
    """Apply ``plan`` on ``session``'s target, or with ``dry_run`` (the default) change nothing.

    Applying needs ``dry_run=False`` and ``confirm == app`` (else InputError naming
    --confirm, before any call), and the lock for the app on this target (else
    :class:`~vyxops.act.fixes.lock.LockHeld`, exit 2; ``lock_token`` accepts the lock the
    CLI took for this run). Intents an interrupted run left open are closed first.
    Each action re-checks its precondition right before it acts; the first failure
    stops the plan and the rest are reported not run. No exception of a platform
    or its client escapes: each becomes the action's Outcome. With ``out_dir``,
    ``result.json`` is rewritten after every action, also when the run is interrupted.
    """
    if app != plan.app:
        raise InputError("app", f"the plan is for {plan.app!r}, not {app!r}", allowed=plan.app)
    if dry_run:
        outcomes = [
            Outcome(a.code, a.target, "planned", "dry run: nothing changed", a.read, a.desired) for a in plan.actions
        ]
        return Result(app, plan.target, True, outcomes, finished_at=iso(session.now()), notes=list(plan.notes))
    if confirm != app:
        raise InputError(
            "--confirm", f"applying changes {app!r}: pass --confirm {app} (confirm={app!r}) to apply", allowed=app
        )
    log_path = Path(audit_log) if audit_log is not None else config.audit_log_path()
    operator = who or os.environ.get("VYXOPS_OPERATOR") or _user()
    result = Result(app, plan.target, False, [], audit_log=log_path, notes=list(plan.notes))
    with hold(session.target, app, token=lock_token, audit_log=log_path, who=operator) as lock:
        if lock.took_over:
            result.notes.append(f"lock: took over a stale lock left by {describe_holder(lock.took_over)}")
        log = AuditLog(
            log_path, target=session.label, app=app, who=operator, now=session.now, incarnation=session.incarnation
        )
        _before_any_change(log, result, out_dir)
        ctx = ApplyContext(session, app, plan.contract, log)
        try:
            _settle_open_intents(log, result)
            _run(ctx, plan, result, out_dir)
        finally:
            result.audit_lines = list(log.lines)
            result.verification = ctx.verification
            result.finished_at = iso(session.now())
            if out_dir is not None:
                result.write(out_dir)
    return result


def _before_any_change(log: AuditLog, result: Result, out_dir: str | Path | None) -> None:
    """Open the audit log and write result.json once: a change that cannot be logged or reported is not made."""
    try:
        log.open()
    except OSError as exc:
        raise ConfigError(
            f"the audit log {log.path} cannot be written ({exc.strerror or exc}); nothing was changed",
            hint="set $VYXOPS_AUDIT_LOG to a writable file",
        ) from None
    if out_dir is None:
        return
    try:
        result.write(out_dir)
    except OSError as exc:
        raise InputError(
            "--out", f"{out_dir} cannot hold result.json ({exc.strerror or exc}); nothing was changed"
        ) from None


def _settle_open_intents(log: AuditLog, result: Result) -> None:
    """Close what a killed run left open: its writes are judged by this run's fresh reads and plan."""
    history = read_history(log.path, target=log.target, app=log.app, incarnation=log.incarnation)
    for intent in history.open_intents:
        log.close_foreign(
            intent, "the run that wrote this intent ended before its outcome; this run re-reads the world"
        )
    if history.open_intents:
        result.notes.append(f"audit log: closed {len(history.open_intents)} intent(s) an interrupted run left open")


def _run(ctx: ApplyContext, plan: Plan, result: Result, out_dir: str | Path | None) -> None:
    stopped = False
    for i, action in enumerate(plan.actions):
        if stopped:
            result.actions.append(Outcome(action.code, action.target, "skipped", NOT_RUN, action.read, None))
            continue
        try:
            outcome = registry.get(action.code).apply(ctx, action)
        except PreconditionError as exc:
            outcome = Outcome(action.code, action.target, "skipped", exc.message, action.read, None)
        except Exception as exc:  # ApiError, TransportError, a raw httpx error, a malformed answer
            outcome = Outcome(action.code, action.target, "failed", describe_error(exc), action.read, None)
        except BaseException:
            why = "interrupted while applying: the next run re-reads the world and settles it"
            result.actions.append(Outcome(action.code, action.target, "failed", why, action.read, None))
            rest = plan.actions[i + 1 :]
            result.actions += [Outcome(a.code, a.target, "skipped", INTERRUPTED, a.read, None) for a in rest]
            raise
        result.actions.append(outcome)
        stopped = outcome.status == "failed"
        if out_dir is not None:
            result.audit_lines = list(ctx.log.lines)
            result.write(out_dir)


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"

"""One platform write as a small transaction: intent, the call, a re-read, the outcome.

What the platform answered is not what happened: an answer can be lost (a timeout,
a 5xx after the fact) or malformed while the write took effect, and a 200 can come
back for a write that matched nothing. So every write is judged by reading the
world again: ``applied`` only when the re-read shows the desired state, ``failed``
when it shows the old one, ``unknown`` when even the re-read fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from vyxops.act.fixes.audit_log import AuditLog
from vyxops.act.fixes.model import Outcome
from vyxops.core.errors import PreconditionError, VyxopsError, redact

#: (done, what was seen): the re-read's verdict on one write.
Confirm = Callable[[], tuple[bool, Any]]


@dataclass
class Step:
    """What one write did, as judged by the re-read."""

    status: str  # applied | failed | unknown
    after: Any
    reason: str
    answer_lost: str | None = None  # the error that hid the answer of a write that took effect


def describe_error(exc: BaseException) -> str:
    """A vyxops error's message; for anything else (a raw httpx error, a malformed answer) its type and text."""
    if isinstance(exc, VyxopsError):
        return exc.message
    kind = "transport error" if isinstance(exc, httpx.HTTPError) else "unexpected answer"
    return redact(f"{kind}: {type(exc).__name__}: {exc}")[:300]


def run_write(
    log: AuditLog,
    action: str,
    step: str,
    entity: str,
    *,
    write: Callable[[], object],
    confirm: Confirm,
    done: str,
    before: Any = None,
    planned: Any = None,
    intent: dict[str, Any] | None = None,
    outcome: dict[str, Any] | None = None,
) -> Step:
    """Log the intent, make the write, re-read with ``confirm``, log the outcome.

    ``done`` is the sentence for success. ``confirm`` may raise PreconditionError when
    the write matched nothing because the world moved (logged ``skipped``, re-raised).
    A KeyboardInterrupt or SystemExit is logged
    as ``interrupted`` and re-raised: the next run re-reads the world and settles it.
    """
    txn = log.intent(action, step, entity, before=before, after=planned, **(intent or {}))
    extra = dict(outcome or {})
    error: str | None = None
    try:
        try:
            write()
        except Exception as exc:  # every error type: judged by the re-read below
            error = describe_error(exc)
        try:
            ok, seen = confirm()
        except PreconditionError as exc:  # the write matched nothing because the world moved: a guard held
            log.outcome(txn, "skipped", exc.message, before=before, **extra)
            raise
        except Exception as exc:
            why = f"could not re-read after the write ({describe_error(exc)})"
            why = f"{error}; {why}" if error else f"the platform accepted the write but {why}"
            log.outcome(txn, "unknown", why, before=before, **extra)
            return Step("unknown", None, f"unconfirmed: {why}")
    except Exception:  # PreconditionError, already logged as skipped
        raise
    except BaseException:  # KeyboardInterrupt, SystemExit: a kill in all but name
        log.outcome(txn, "interrupted", "the run was interrupted during this write", before=before, **extra)
        raise
    if ok:
        reason = done if error is None else f"{done} (the answer was lost: {error}; re-reading shows it took effect)"
        log.outcome(txn, "applied", reason, before=before, after=seen, answer_lost=error, **extra)
        return Step("applied", seen, reason, answer_lost=error)
    reason = error or f"the platform answered, but re-reading shows {_seen(seen)}"
    log.outcome(txn, "failed", reason, before=before, after=seen, **extra)
    return Step("failed", seen, reason)


def _seen(seen: Any) -> str:
    if isinstance(seen, dict):
        return ", ".join(f"{k} {v}" for k, v in seen.items())
    return str(seen)


def outcome_of(step: Step, code: str, target: str, before: Any) -> Outcome:
    """The action's outcome from its one write: applied when the re-read confirmed it, else failed."""
    return Outcome(code, target, "applied" if step.status == "applied" else "failed", step.reason, before, step.after)

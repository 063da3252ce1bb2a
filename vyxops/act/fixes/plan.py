"""Planning: every registered fix, in order, looks at the investigation and the audit history; nothing is called."""

from __future__ import annotations

from pathlib import Path

from vyxops.act.fixes import registry
from vyxops.act.fixes.audit_log import History, read_history
from vyxops.act.fixes.context import STRATEGY_FIXES, PlanContext, image_facts
from vyxops.act.fixes.model import Plan
from vyxops.act.fixes.registry import Place
from vyxops.analysis.advice import next_steps, release_health
from vyxops.analysis.investigate import Investigation
from vyxops.core import config
from vyxops.core.checks import check_fixes
from vyxops.core.errors import InputError, redact
from vyxops.core.timeutil import iso

#: pin: the image secret = the release's image by tag; pin-digest: by digest (survives a
#: re-pushed tag); latest: tag the release image :latest, then unset the image secret.
STRATEGIES = tuple(STRATEGY_FIXES)


def plan_fixes(
    inv: Investigation,
    *,
    fixes: list[str] | None = None,
    strategy: str = "pin",
    project_ref: str | None = None,
    history: History | None = None,
    audit_log: Path | None = None,
) -> Plan:
    """Build the actions that fix ``inv``'s findings, in apply order; no platform is called.

    The findings say which fixes they need; ``strategy`` says how the image is fixed;
    ``fixes`` restricts the plan to those codes (a canary an earlier run left behind is
    cleaned up whatever it says). ``history`` is what earlier runs left in the audit log
    (read from ``audit_log`` or ``$VYXOPS_AUDIT_LOG`` when not given): their leftover
    canaries are cleaned up, and fixes they applied but never verified are verified.
    An action whose desired state already holds is not planned: the notes say so.
    ``project_ref`` goes into the commands a person could type instead (never a token).
    Raises InputError for an unknown fix code or strategy.
    """
    if strategy not in STRATEGIES:
        raise InputError("--strategy", f"unknown strategy {strategy!r}", allowed=list(STRATEGIES))
    wanted = check_fixes(fixes, registry.codes())
    e = inv.evidence
    if history is None:
        history = read_history(
            audit_log or config.audit_log_path(), target=e.target, app=e.app, incarnation=e.incarnation
        )
    place = Place(e.app, project_ref, e.contract)
    health = release_health(e, inv.context.tz)
    ctx = PlanContext(inv, strategy, wanted, history, place, health, image_facts(e))
    for fix in registry.fixes():
        for action in fix.plan(ctx):
            action.native = [redact(c) for c in fix.native(action, place)]
            action.dashboard = [redact(u) for u in fix.dashboard(action, place)]
            ctx.actions.append(action)
    if history.open_intents:
        steps = ", ".join(f"{x.get('action')} {x.get('step')} at {x.get('time')}" for x in history.open_intents[:5])
        ctx.notes.append(
            f"audit log: an interrupted run left {len(history.open_intents)} write(s) without an outcome ({steps}); "
            "this plan is made from the world as it is now, and an apply records them as interrupted"
        )
    if not ctx.actions and not ctx.notes:
        ctx.notes.append("nothing to do: no finding calls for a change")
    return Plan(
        app=e.app,
        target=e.target,
        strategy=strategy,
        actions=ctx.actions,
        notes=ctx.notes,
        generated_at=iso(e.now),
        project_ref=project_ref,
        contract=e.contract,
        recommendations=next_steps(e, inv.root, inv.findings, health, project_ref),
    )

"""What the remediate notebook shows: a plan, what applying it did, the verification and the audit lines."""

from __future__ import annotations

from vyxops.fixes import Plan, Result
from vyxops.nbtools.display import md


def show_plan(plan: Plan, dry_run: bool = True) -> None:
    """The plan as a table a person reads, and the fixes that were not planned (with why)."""
    from IPython.display import display

    mode = "dry run: nothing will change" if dry_run else "applying (confirmed)"
    if plan.actions:
        md(
            f"**{len(plan.actions)} action(s)** for `{plan.app}` on `{plan.target}`, strategy `{plan.strategy}` — {mode}."
        )
        display(plan.frame().style.hide(axis="index"))
    else:
        md(f"**Nothing to do** for `{plan.app}` on `{plan.target}`.")
    if plan.notes:
        md("\n".join(f"- {n}" for n in plan.notes))


def show_result(result: Result) -> None:
    """What each action did (or, on a dry run, that nothing was done)."""
    from IPython.display import display

    if result.dry_run:
        md("Dry run: **nothing was changed**. Apply with `vyxops remediate --apply --confirm " + result.app + "`.")
    else:
        counts = {s: sum(a.status == s for a in result.actions) for s in ("applied", "skipped", "failed")}
        md(f"Applied **{counts['applied']}**, skipped **{counts['skipped']}**, failed **{counts['failed']}**.")
    if result.actions:
        display(result.frame().style.hide(axis="index"))


def show_verification(result: Result) -> None:
    """What VERIFY_PROVISIONING saw: the canary machine's state, its row, the cleanup."""
    from IPython.display import display

    verify = next((a for a in result.actions if a.code == "VERIFY_PROVISIONING"), None)
    if verify is None:
        md("Provisioning was not verified (VERIFY_PROVISIONING is not in the plan).")
        return
    if result.verification is None:
        md(f"Provisioning was not verified: {verify.status} — {verify.reason}")
        return
    md(f"**{verify.status}**: {verify.reason}")
    display(result.verification_frame().style.hide(axis="index"))


def show_audit(result: Result) -> None:
    """The audit lines this run appended, and where the log is."""
    from IPython.display import display

    if not result.audit_lines:
        md("No audit line appended (nothing was applied).")
        return
    md(f"{len(result.audit_lines)} line(s) appended to `{result.audit_log}`:")
    display(result.audit_frame().style.hide(axis="index"))

"""What the remediate notebook shows: the investigation, the plan, what applying it did, the verification, the audit.

Everything a platform, a scenario or an argument put into a string is data, never
markup: paragraphs are built with ``html.escape`` (not Markdown, which passes raw
HTML through), tables, commands and links with :mod:`vyxops.views.display`.
Tables are left-aligned, show no index and leave empty cells blank; each command a
person could type is its own block with a Copy button; dashboard pages are links.
"""

from __future__ import annotations

from html import escape

import pandas as pd

from vyxops.act.fixes import Action, Plan, Result
from vyxops.analysis.investigate import Investigation
from vyxops.core.present import fmt_time
from vyxops.views.display import command_block, link, table
from vyxops.views.next_steps import next_steps_html


def table_html(df: pd.DataFrame) -> str:
    """A table as escaped HTML: left-aligned, no index, empty cells blank, line breaks kept, times on one line."""
    return table(df)


def paragraph(text: str, bold: str = "") -> str:
    """One escaped paragraph, with an optional escaped bold lead."""
    lead = f"<b>{escape(bold)}</b> " if bold else ""
    return f"<p>{lead}{escape(text)}</p>"


def bullets(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>" if items else ""


def by_hand_html(actions: list[Action]) -> str:
    """Per action: each command a person could type instead in its own copyable block, and the dashboard pages as
    links."""
    out = ""
    for a in actions:
        if not (a.native or a.dashboard):
            continue
        out += f"<p><b>{escape(a.code)}</b> {escape(a.target)}</p>" + (command_block(*a.native) if a.native else "")
        if a.dashboard:
            out += "<p>Dashboard: " + " · ".join(link(url) for url in a.dashboard) + "</p>"
    return out


def investigation_html(inv: Investigation) -> str:
    """The headline and the findings the plan starts from."""
    e = inv.evidence
    head = paragraph(f"target {e.target} · app {e.app} · now {fmt_time(e.now, inv.context.tz)}")
    if inv.root is None:
        body = paragraph(f"{len(inv.findings)} finding(s), none critical.", "No root cause:")
    else:
        body = paragraph(inv.summary, f"Root cause {inv.root.code}:")
    return head + body + (table_html(inv.findings_frame()) if inv.findings else "")


def plan_html(plan: Plan, dry_run: bool = True) -> str:
    """The plan as a table a person reads, what to type instead, and the fixes not planned (with why)."""
    mode = "dry run: nothing will change" if dry_run else "applying (confirmed)"
    if not plan.actions:
        nothing = paragraph(f"for {plan.app} on {plan.target}.", "Nothing to do") + bullets(plan.notes)
        return nothing + next_steps_html(plan.recommendations)
    head = paragraph(
        f"for {plan.app} on {plan.target}, strategy {plan.strategy} — {mode}.", f"{len(plan.actions)} action(s)"
    )
    by_hand = paragraph("the commands a person could type instead, and where to see it in the dashboards:", "By hand:")
    warned = paragraph("", "Warnings:") + bullets(plan.warnings()) if plan.warnings() else ""
    body = head + table_html(plan.frame()) + warned
    body += by_hand + by_hand_html(plan.actions) + bullets(plan.notes)
    return body + next_steps_html(plan.recommendations)


def result_html(result: Result, apply_command: str = "") -> str:
    """What each action did (or, on a dry run, that nothing was done and how to apply)."""
    if result.dry_run:
        out = paragraph("nothing was changed.", "Dry run:")
        if apply_command and result.actions:
            out += paragraph("", "Apply with:") + command_block(apply_command)
    else:
        counts = {s: sum(a.status == s for a in result.actions) for s in ("applied", "skipped", "failed")}
        out = paragraph(
            f"applied {counts['applied']}, skipped {counts['skipped']}, failed {counts['failed']}.", "Result:"
        )
    if result.actions:
        out += table_html(result.frame())
    return out + bullets([n for n in result.notes if n.startswith(("lock:", "audit log:"))])


def verification_html(result: Result) -> str:
    """What VERIFY_PROVISIONING saw: the canary machine's state, its row, the cleanup."""
    verify = next((a for a in result.actions if a.code == "VERIFY_PROVISIONING"), None)
    if verify is None:
        return paragraph("Provisioning was not verified (VERIFY_PROVISIONING is not in the plan).")
    if result.verification is None:
        return paragraph(f"{verify.status} — {verify.reason}", "Provisioning was not verified:")
    return paragraph(verify.reason, f"{verify.status}:") + table_html(result.verification_frame())


def audit_html(result: Result) -> str:
    """The audit lines this run appended (intents and outcomes), and where the log is."""
    if not result.audit_lines:
        return paragraph("No audit line appended (nothing was written to a platform).")
    return paragraph(f"{len(result.audit_lines)} line(s) appended to {result.audit_log}:") + table_html(
        result.audit_frame()
    )


def _show(html: str) -> None:
    from IPython.display import HTML, display

    display(HTML(html))  # IPython ships no types: untyped calls are allowed in nbtools (pyproject)


def show_investigation(inv: Investigation) -> None:
    _show(investigation_html(inv))


def show_plan(plan: Plan, dry_run: bool = True) -> None:
    _show(plan_html(plan, dry_run))


def show_result(result: Result, apply_command: str = "") -> None:
    _show(result_html(result, apply_command))


def show_verification(result: Result) -> None:
    _show(verification_html(result))


def show_audit(result: Result) -> None:
    _show(audit_html(result))

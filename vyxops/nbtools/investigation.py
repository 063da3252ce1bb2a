"""What the investigate and audit notebooks show, in the order a person reads at 3 am.

Summary (verdict, impact, dashboards), findings (root cause first), recommended
fixes as commands that run as printed (each in its own block with a Copy button), then the incident's timeline, then the
whole timeline. One time format (:func:`vyxops.core.present.fmt_time`). Every string
that comes from a platform, a scenario or an argument is escaped: it is data.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import pandas as pd

from vyxops.core import facts
from vyxops.core.coverage import Gap
from vyxops.core.present import fmt_time, in_zone, vyxops_command
from vyxops.views.display import command_block, md, show_html, table
from vyxops.views.next_steps import next_steps_html

if TYPE_CHECKING:
    from vyxops.analysis.investigate import Investigation

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
VERDICT_HEADINGS = {
    "root_cause": "Root cause",
    "healthy": "Healthy: nothing critical found",
    "inconclusive": "Inconclusive: nothing critical seen, but the evidence is incomplete",
}


def esc(text: object) -> str:
    """Text from a platform, a scenario or an argument, safe inside Markdown and HTML (markup is escaped;
    a backtick still makes a code span, whose content Markdown escapes too)."""
    return html.escape(str(text), quote=True)


def show_header(inv: Investigation, tz: str = "UTC") -> None:
    """Target (naming the sandbox's scenario), app, window and the target's now; the pipeline contract the run
    used, and for a discovered one the evidence for each value."""
    e = inv.evidence
    md(
        f"**Target** {esc(e.target)} · **app** {esc(e.app)} · **window** {fmt_time(e.since, tz)} – "
        f"{fmt_time(e.until, tz)}"
        + (f" ({esc(inv.window_note)})" if inv.window_note else "")
        + f" · **now** {fmt_time(e.now, tz)}\n\n**Pipeline.** {esc(e.contract.header_line())}"
        + "".join(f"\n- `{esc(key)}`: {esc(why.replace(chr(10), '; '))}" for key, why in e.contract.evidence)
    )


def show_summary(inv: Investigation, tz: str = "UTC") -> None:
    """The verdict, the chain of evidence, who was affected and where to look in the dashboards."""
    heading = VERDICT_HEADINGS[inv.verdict]
    if inv.root is not None:
        heading += f": {esc(inv.root.code)}"
    links = facts.dashboard_links(inv.evidence.app, inv.project_ref, inv.evidence.contract.function)
    dashboards = " · ".join(f"[{name}]({url})" for name, url in links.items())
    md(
        f"### {heading}\n\n{esc(inv.summary_in(tz))}\n\n**Impact.** {esc(inv.impact.sentence(tz))}\n\n"
        f"**Dashboards.** {dashboards}"
    )


def show_probe(probed: object) -> None:
    """What ``--probe`` did: its canary's outcome, or why it did not run (nothing when not asked)."""
    if probed is None:
        return
    result = getattr(probed, "result", None)
    if result is None:
        md(f"**Probe not run:** {esc(getattr(probed, 'skipped', ''))}")
        return
    verify = next((a for a in result.actions if a.code == "VERIFY_PROVISIONING"), None)
    if verify is not None:
        md(f"**Probe:** a canary was provisioned now — {esc(verify.status)}: {esc(verify.reason)}")


def show_error(error: Exception) -> None:
    """An app the audit could not investigate: its typed error, as text."""
    md(f"**Could not be investigated** ({esc(type(error).__name__)}): {esc(error)}")


def show_incomplete(gaps: list[Gap], tz: str = "UTC") -> None:
    """What the evidence could not show, each gap with its source and span (times in ``tz``); nothing when complete."""
    if gaps:
        lines = [
            f"- **{esc(g.source)}**{f' {esc(in_zone(g.since, tz))} – {esc(in_zone(g.until, tz))}' if g.since else ''}: "
            f"{esc(in_zone(g.why, tz))}"
            for g in gaps
        ]
        md("**Incomplete evidence** (a missing record is not proof that nothing happened):\n\n" + "\n".join(lines))


def ordered_findings(inv: Investigation) -> list:  # type: ignore[type-arg]
    """Root cause first, then by severity, then as found."""
    return sorted(inv.findings, key=lambda f: (inv.root is not f, SEVERITY_ORDER.get(f.severity, 3)))


#: Findings shown in full with their evidence; on a busy day the rest go in one table.
FINDINGS_IN_FULL = 20


def show_findings(inv: Investigation, tz: str = "UTC", in_full: int = FINDINGS_IN_FULL) -> None:
    """Each finding, the root cause first, with its evidence table and the fixes that address it."""
    if not inv.findings:
        md("No findings.")
        return
    from IPython.display import HTML, display

    ordered = ordered_findings(inv)
    for f in ordered[:in_full]:
        root = " — root cause" if inv.root is f else ""
        fixes = ", ".join(esc(x) for x in f.fixes) or "none"
        md(f"#### {esc(f.code)}{root}\n\n{esc(f.title)}\n\n**{f.severity.upper()}** · {esc(f.entity)} · fixes: {fixes}")
        evidence = pd.DataFrame(f.evidence, columns=["time", "source", "detail"])
        evidence["time"] = [fmt_time(t, tz) if t else "" for t in evidence["time"]]
        display(HTML(table(evidence)))
    rest = ordered[in_full:]
    if rest:
        md(f"#### {len(rest)} more finding(s)\n\nThe same kinds as above; each in findings.json with its evidence.")
        rows = [{"code": f.code, "severity": f.severity, "entity": f.entity, "title": f.title} for f in rest]
        display(HTML(table(pd.DataFrame(rows, columns=["code", "severity", "entity", "title"]))))


def show_fixes(inv: Investigation, target: str, scenario: str | None) -> None:
    """The fixes the findings recommend, with the commands that plan and apply them, as they run; first, what a
    person must do where the root cause has no automated fix (a refused token, no capacity), with the command."""
    wanted = inv.recommended_fixes()
    show_next_steps(inv)
    action = inv.root.facts.get("action") if inv.root is not None and not inv.next_steps else None
    if isinstance(action, str):
        md(f"**What to do** ({esc(inv.root.code if inv.root else '')}): {esc(action)}." + (
            " Then verify provisioning:" if wanted else ""))  # fmt: skip
    if not wanted:
        md("No automated fix is recommended." if action or inv.next_steps else "No fix is recommended.")
        return
    app = inv.evidence.app
    out = f"out/remediate-{app}"
    plan = vyxops_command("remediate", app, target, scenario, out)
    apply = vyxops_command("remediate", app, target, scenario, out, "--apply", "--confirm", app)
    md("\n".join(f"1. {esc(c)}" for c in wanted))
    show_html(f"<p>Plan them (a dry run, nothing changes):</p>{command_block(plan)}")
    show_html(f"<p>then apply them:</p>{command_block(apply)}")


def show_next_steps(inv: Investigation) -> None:
    """The root cause's recommended actions (vyxops.analysis.advice): what a person does where no automated fix
    is safe."""
    if inv.next_steps:
        from IPython.display import HTML, display

        display(HTML(next_steps_html(inv.next_steps)))


def show_timeline(tl: pd.DataFrame, tz: str = "UTC", limit: int = 500, note: str = "") -> None:
    """A timeline as a table a person reads: one time format, left-aligned, newest last."""
    from IPython.display import HTML, display

    said = f"<p>{esc(note)}</p>" if note else ""
    if not len(tl):  # no table of headers over nothing
        display(HTML(said or "<p>No events in the window.</p>"))
        return
    view = tl[["time", "source", "entity", "kind", "message"]].tail(limit)
    cut = f"<p>the last {limit} of {len(tl)} events</p>" if len(tl) > limit else ""
    display(HTML(said + cut + table(view, tz=tz)))

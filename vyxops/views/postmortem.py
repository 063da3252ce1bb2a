"""``postmortem.md``: the investigation as a document that pastes cleanly into a postmortem.

Summary, impact, the incident's timeline, the root cause with its evidence, what
was done (the fixes' audit log, when fixes were applied) and action items (the
recommended fixes not applied yet). Written after a fix, the incident is still the
incident: with no root cause standing, the window's resolved incident
(:mod:`vyxops.analysis.resolved`) titles it, and what the audit log says was done names the cause
mended (the secret's old image, the image the failed machines ran). "What was done" holds
only this target's incarnation (a sandbox's reset starts a new one). Plain GitHub-flavoured Markdown: headings,
lists and pipe tables; every value from a platform is escaped (:func:`cell`: no link, image, emphasis or HTML
of its own, whatever a log line, user id or row error holds).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from vyxops.act.fixes.audit_log import NOT_FIXES
from vyxops.core.config import audit_log_path, target_of_label
from vyxops.core.present import fmt_time, in_zone, vyxops_command
from vyxops.core.text import md
from vyxops.views.next_steps import next_steps_markdown

if TYPE_CHECKING:
    from vyxops.analysis.investigate import Investigation
    from vyxops.analysis.resolved import Resolved

TIMELINE_ROWS = 60


def cell(text: object) -> str:
    """A value safe in Markdown, a table cell included: one line, and every link, image, emphasis, code span,
    HTML tag or pipe it holds shown as text (:func:`vyxops.core.text.md`, the one escape for platform text)."""
    return md(text)


def code(text: object) -> str:
    """One of vyxops' own codes (``PIN_SECRET_TO_RELEASE``) as a code span; anything else as :func:`cell`."""
    value = "" if text is None else str(text)
    return f"`{value}`" if _CODE.fullmatch(value) else cell(value)


_CODE = re.compile(r"[A-Z][A-Z0-9_]*")


def write_postmortem(
    inv: Investigation, out_dir: str | Path, *, tz: str = "UTC", audit_log: Path | None = None
) -> Path:
    """Write ``postmortem.md`` into ``out_dir``."""
    path = Path(out_dir) / "postmortem.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_postmortem(inv, tz=tz, audit_log=audit_log), encoding="utf-8")
    return path


def render_postmortem(inv: Investigation, *, tz: str = "UTC", audit_log: Path | None = None) -> str:
    """The whole document."""
    e = inv.evidence
    done = read_audit_lines(audit_log or audit_log_path(), e.app, e.target, e.incarnation)
    cause = _mended(inv.resolved, done)
    head = f"{inv.root.code}: {inv.root.title}" if inv.root is not None else inv.root_line
    if inv.root is None and inv.resolved is not None:
        head = _resolved_head(inv.resolved, cause, tz)
    parts = [
        f"# Postmortem: {cell(e.app)} — {cell(head)}",
        "",
        f"_Written by vyxops from {cell(e.target)} at {fmt_time(e.now, tz)}; "
        f"window {fmt_time(e.since, tz)} – {fmt_time(e.until, tz)}"
        + (f" ({cell(inv.window_note)})" if inv.window_note else "")
        + "._",
        "",
        "## Summary",
        "",
        f"**Verdict:** {cell(inv.verdict)}."
        + (f" **Root cause:** {code(inv.root.code)}." if inv.root is not None else "")
        + (" **Resolved incident:** see below." if inv.root is None and inv.resolved is not None else ""),
        "",
        cell(inv.summary_in(tz)) if inv.summary else "",
        "",
        "## Impact",
        "",
        inv.impact.sentence(tz),
        "",
        *_timeline(inv, tz, cause),
        *_evidence(inv, tz, cause),
        *next_steps_markdown(inv.next_steps),
        *_done(done, tz),
        *_action_items(inv, done),
        *_gaps(inv, tz),
    ]
    return "\n".join(parts).rstrip() + "\n"


def _timeline(inv: Investigation, tz: str, cause: list[dict[str, Any]]) -> list[str]:
    tl = inv.incident_timeline()
    window = inv.incident_window()
    if window is None and inv.resolved is not None:  # after the fix: the incident that happened, to its mending
        window = _resolved_window(inv.resolved, cause)
        tl = _within(inv.timeline, window) if window is not None else tl
    out = ["## Timeline", ""]
    if window is None or tl.empty:
        return [*out, "No incident in the window.", ""]
    out += [f"From {fmt_time(window[0], tz)} to {fmt_time(window[1], tz)}:", ""]
    out += ["| time | source | what happened |", "|---|---|---|"]
    shown = tl.tail(TIMELINE_ROWS)
    out += [f"| {fmt_time(r.time, tz)} | {cell(r.source)} | {cell(r.message)} |" for r in shown.itertuples()]
    if len(tl) > TIMELINE_ROWS:
        out += ["", f"_The last {TIMELINE_ROWS} of {len(tl)} events; the report and timeline.parquet hold them all._"]
    return [*out, ""]


def _evidence(inv: Investigation, tz: str, cause: list[dict[str, Any]]) -> list[str]:
    out = ["## Root cause and evidence", ""]
    shown: list[object] = [inv.root]
    if inv.root is None and inv.resolved is not None:
        out += _resolved_evidence(inv.resolved, cause, tz)
        shown += inv.resolved.symptoms
    elif inv.root is None:
        out += [cell(inv.root_line[:1].upper() + inv.root_line[1:]) + ".", ""]
    else:
        out += [f"**{code(inv.root.code)}** — {cell(inv.root.title)}", ""]
        out += [
            f"- {fmt_time(x['time'], tz) or '—'} · {cell(x['source'])} · {cell(x['detail'])}" for x in inv.root.evidence
        ]
        out.append("")
    others = [f for f in inv.findings if all(f is not s for s in shown)]
    if others:
        out += ["Other findings:", ""]
        out += [f"- {code(f.code)} ({cell(f.severity)}) — {cell(f.title)}" for f in others]
        out.append("")
    return out


def read_audit_lines(path: Path, app: str, target: str, incarnation: str = "") -> list[dict[str, Any]]:
    """What the fixes did to ``app`` on ``target`` (in its ``incarnation``): the audit log's outcome lines
    (an intent is not a deed)."""
    from vyxops.act.fixes.audit_log import read_history

    history = read_history(path, target=target, app=app, incarnation=incarnation)
    return [x for x in history.lines if x.get("kind", "outcome") == "outcome"]


def _done(lines: list[dict[str, Any]], tz: str) -> list[str]:
    out = ["## What was done", ""]
    if not lines:
        return [*out, "No fix has been applied through vyxops for this app on this target.", ""]
    out += ["| when | action | step | on | result | why |", "|---|---|---|---|---|---|"]
    for x in lines:
        when = fmt_time(x.get("time"), tz)
        step = cell(x.get("step") or "")
        out.append(
            f"| {when} | {code(x.get('action'))} | {step} | {cell(x.get('entity'))} | {cell(x.get('result'))} "
            f"| {cell(x.get('reason'))} |"
        )
    return [*out, ""]


def _action_items(inv: Investigation, done: list[dict[str, Any]]) -> list[str]:
    applied = {x.get("action") for x in done if x.get("result") == "applied"}
    todo = [c for c in inv.recommended_fixes() if c not in applied]
    out = ["## Action items", ""]
    action = inv.root.facts.get("action") if inv.root is not None else None
    if isinstance(action, str):  # a root cause no automated fix mends: what a person does, with the command
        out.append(f"- [ ] {cell(action)}")
    if not todo:
        return [*out, "None outstanding." if not isinstance(action, str) else "", ""]
    target, scenario = target_of_label(inv.evidence.target)
    command = vyxops_command("remediate", inv.evidence.app, target, scenario, f"out/remediate-{inv.evidence.app}")
    out += [f"- [ ] {code(c)}" for c in todo]
    return [*out, "", f"Plan them with `{command}` (a dry run), then add `--apply --confirm {inv.evidence.app}`.", ""]


def _gaps(inv: Investigation, tz: str) -> list[str]:
    if not inv.gaps:
        return []
    out = ["## Evidence that could not be seen", ""]
    out += [
        f"- {cell(g.source)}{f' ({cell(in_zone(g.since, tz))} – {cell(in_zone(g.until, tz))})' if g.since else ''}: "
        f"{cell(in_zone(g.why, tz))}"
        for g in inv.gaps
    ]
    return [*out, ""]


def _mended(resolved: Resolved | None, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fixes applied after the resolved incident began (audit outcomes), the check and tidy steps left out."""
    if resolved is None:
        return []
    start = resolved.first
    return [
        x
        for x in lines
        if x.get("result") == "applied"
        and x.get("action") not in NOT_FIXES
        and (start is None or (_at(x) or start) >= start)
    ]


def _at(line: dict[str, Any]) -> pd.Timestamp | None:
    try:
        at = pd.Timestamp(str(line.get("time")))
    except ValueError:
        return None
    return None if pd.isna(at) else at.tz_localize("UTC") if at.tzinfo is None else at


def _images(resolved: Resolved) -> dict[str, list[str]]:
    """image reference -> the machines of the incident that ran it."""
    out: dict[str, list[str]] = {}
    for f in resolved.symptoms:
        image, machine = f.facts.get("image"), f.facts.get("machine_id")
        if isinstance(image, str) and isinstance(machine, str):
            out.setdefault(image, []).append(machine)
    return out


def _chain(line: dict[str, Any], resolved: Resolved) -> str | None:
    """``<image secret> pointed at X, the image machine M ran`` when a fix changed a value the failed machines used."""
    before = line.get("before")
    ref = before.get("ref") if isinstance(before, dict) else None
    machines = _images(resolved).get(ref) if isinstance(ref, str) else None
    if not machines:
        return None
    entity = str(line.get("entity") or "")
    name = entity.partition(":")[2] or entity
    ran = f"the image machine {machines[0]} ran" if len(machines) == 1 else f"the image {len(machines)} machines ran"
    return f"{name} pointed at {ref}, {ran}"


def _resolved_head(resolved: Resolved, cause: list[dict[str, Any]], tz: str) -> str:
    """The title: the cause mended (from the audit log) when one is known, else the first failure, and when."""
    chained = [(x, c) for x in cause if (c := _chain(x, resolved)) is not None]
    if chained:
        line, what = chained[0]
        return f"resolved: {what} (fixed by {line.get('action')} at {fmt_time(line.get('time'), tz)})"
    when = f" (provisioning worked again at {fmt_time(resolved.resolved_at, tz)})" if resolved.resolved_at else ""
    return f"resolved: {re.sub(r' [(]resolved at [^)]*[)]$', '', resolved.head.title)}{when}"


def _resolved_window(resolved: Resolved, cause: list[dict[str, Any]]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    from vyxops.analysis.investigate import INCIDENT_MARGIN

    ends = [t for t in [resolved.last, resolved.resolved_at, *map(_at, cause)] if t is not None]
    if resolved.first is None or not ends:
        return None
    return resolved.first - INCIDENT_MARGIN, max(ends) + INCIDENT_MARGIN


def _within(timeline: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp]) -> pd.DataFrame:
    from vyxops.analysis.timeline import filter_timeline

    return filter_timeline(timeline, since=window[0], until=window[1])


def _resolved_evidence(resolved: Resolved, cause: list[dict[str, Any]], tz: str) -> list[str]:
    """The resolved incident: what was mended and when, then each failure with its evidence."""
    out = ["**Resolved incident.** Nothing fails now; what failed in the window:", ""]
    for x in cause:
        chain = _chain(x, resolved)
        said = f"{chain}; {x.get('reason')}" if chain else str(x.get("reason") or "")
        out.append(f"- Cause mended: {code(x.get('action'))} at {fmt_time(x.get('time'), tz)} — {cell(said)}")
    if not cause:
        out.append("- Cause mended: not in vyxops' audit log for this target (mended by hand, or elsewhere)")
    if resolved.resolved_at is not None:
        out.append(f"- Provisioning worked again at {fmt_time(resolved.resolved_at, tz)}")
    out.append("")
    for f in resolved.symptoms:
        out += [f"**{code(f.code)}** — {cell(f.title)}", ""]
        out += [f"- {fmt_time(x['time'], tz) or '—'} · {cell(x['source'])} · {cell(x['detail'])}" for x in f.evidence]
        out.append("")
    return out

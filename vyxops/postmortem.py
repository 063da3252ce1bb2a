"""``postmortem.md``: the investigation as a document that pastes cleanly into a postmortem.

Summary, impact, the incident's timeline, the root cause with its evidence, what
was done (the fixes' audit log, when fixes were applied) and action items (the
recommended fixes not applied yet). Plain GitHub-flavoured Markdown: headings,
lists and pipe tables; every value from a platform is escaped (:func:`cell`: no link, image, emphasis or HTML
of its own, whatever a log line, user id or row error holds).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vyxops.config import audit_log_path
from vyxops.present import fmt_time, vyxops_command
from vyxops.text import md

if TYPE_CHECKING:
    from vyxops.investigate import Investigation

TIMELINE_ROWS = 60


def cell(text: object) -> str:
    """A value safe in Markdown, a table cell included: one line, and every link, image, emphasis, code span,
    HTML tag or pipe it holds shown as text (:func:`vyxops.text.md`, the one escape for platform text)."""
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
    head = f"{inv.root.code}: {inv.root.title}" if inv.root is not None else inv.root_line
    parts = [
        f"# Postmortem: {cell(e.app)} — {cell(head)}",
        "",
        f"_Written by vyxops from {cell(e.target)} at {fmt_time(e.now, tz)}; "
        f"window {fmt_time(e.since, tz)} – {fmt_time(e.until, tz)}._",
        "",
        "## Summary",
        "",
        f"**Verdict:** {cell(inv.verdict)}."
        + (f" **Root cause:** {code(inv.root.code)}." if inv.root is not None else ""),
        "",
        cell(inv.summary_in(tz)) if inv.summary else "",
        "",
        "## Impact",
        "",
        inv.impact.sentence(),
        "",
        *_timeline(inv, tz),
        *_evidence(inv, tz),
        *_done(inv, tz, audit_log),
        *_action_items(inv, audit_log),
        *_gaps(inv),
    ]
    return "\n".join(parts).rstrip() + "\n"


def _timeline(inv: Investigation, tz: str) -> list[str]:
    tl = inv.incident_timeline()
    window = inv.incident_window()
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


def _evidence(inv: Investigation, tz: str) -> list[str]:
    out = ["## Root cause and evidence", ""]
    if inv.root is None:
        out += ["No root cause: " + cell(inv.root_line) + ".", ""]
    else:
        out += [f"**{code(inv.root.code)}** — {cell(inv.root.title)}", ""]
        out += [
            f"- {fmt_time(x['time'], tz) or '—'} · {cell(x['source'])} · {cell(x['detail'])}" for x in inv.root.evidence
        ]
        out.append("")
    others = [f for f in inv.findings if f is not inv.root]
    if others:
        out += ["Other findings:", ""]
        out += [f"- {code(f.code)} ({cell(f.severity)}) — {cell(f.title)}" for f in others]
        out.append("")
    return out


def read_audit_lines(path: Path, app: str, target: str) -> list[dict[str, Any]]:
    """What the fixes did to ``app`` on ``target``: the audit log's outcome lines (an intent is not a deed)."""
    from vyxops.fixes.audit_log import read_history

    return [x for x in read_history(path, target=target, app=app).lines if x.get("kind", "outcome") == "outcome"]


def _done(inv: Investigation, tz: str, audit_log: Path | None) -> list[str]:
    lines = read_audit_lines(audit_log or audit_log_path(), inv.evidence.app, inv.evidence.target)
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


def _action_items(inv: Investigation, audit_log: Path | None) -> list[str]:
    done = read_audit_lines(audit_log or audit_log_path(), inv.evidence.app, inv.evidence.target)
    applied = {x.get("action") for x in done if x.get("result") == "applied"}
    todo = [c for c in inv.recommended_fixes() if c not in applied]
    out = ["## Action items", ""]
    action = inv.root.facts.get("action") if inv.root is not None else None
    if isinstance(action, str):  # a root cause no automated fix mends: what a person does, with the command
        out.append(f"- [ ] {cell(action)}")
    if not todo:
        return [*out, "None outstanding." if not isinstance(action, str) else "", ""]
    target = inv.evidence.target
    kind, _, scenario = target.partition(":")
    command = vyxops_command(
        "remediate", inv.evidence.app, kind if kind in ("sandbox", "live") else target,
        scenario if kind == "sandbox" else None, f"out/remediate-{inv.evidence.app}",
    )  # fmt: skip
    out += [f"- [ ] {code(c)}" for c in todo]
    return [*out, "", f"Plan them with `{command}` (a dry run), then add `--apply --confirm {inv.evidence.app}`.", ""]


def _gaps(inv: Investigation) -> list[str]:
    if not inv.gaps:
        return []
    out = ["## Evidence that could not be seen", ""]
    out += [
        f"- {cell(g.source)}{f' ({cell(g.since)} – {cell(g.until)})' if g.since else ''}: {cell(g.why)}"
        for g in inv.gaps
    ]
    return [*out, ""]

"""An investigation: evidence → timeline → findings → root cause, for one app and window."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vyxops.analysis.advice import NextStep, next_steps, release_health, settle_fixes
from vyxops.analysis.collect import collect_evidence
from vyxops.analysis.detect import (
    Context,
    Finding,
    Thresholds,
    build_context,
    findings_document,
    rank,
    run_detectors,
    summarize,
)
from vyxops.analysis.discover import resolve_contract
from vyxops.analysis.evidence import Evidence, ProjectReads, parse_window, window_note
from vyxops.analysis.impact import Impact, impact_of
from vyxops.analysis.resolved import Resolved, resolved_incident
from vyxops.core.checks import STUCK_AFTER_MIN, check_app, check_machine_id, check_stuck_after
from vyxops.core.contract import Contract
from vyxops.core.coverage import Gap
from vyxops.fetch import fanout
from vyxops.fetch.session import Session

INCIDENT_MARGIN = pd.Timedelta(minutes=15)


@dataclass
class Investigation:
    """What an investigation found, ready for a notebook, a report or findings.json."""

    evidence: Evidence
    findings: list[Finding]
    root: Finding | None
    summary: str
    document: dict[str, Any]
    gaps: list[Gap]
    context: Context
    impact: Impact
    project_ref: str | None = None
    resolved: Resolved | None = None  # with no root cause: the failures of the window that are history
    next_steps: list[NextStep] = field(default_factory=list)  # the root's recommended actions (vyxops.analysis.advice)
    window_note: str = ""  # how --since/--until were read, when a duration or a zone-less time (evidence.window_note)

    @functools.cached_property
    def timeline(self) -> pd.DataFrame:
        """Every event of the evidence in one frame (:mod:`vyxops.analysis.timeline`), focused on the
        investigation's machine if it has one. Built when first asked for: the findings do not
        read it, and an audit, which reports only findings, spent a fifth of its analysis on it."""
        from vyxops.analysis.sources import build_timeline
        from vyxops.analysis.timeline import filter_timeline

        timeline = build_timeline(**self.evidence.frames())
        machine_id = self.evidence.machine_id
        return filter_timeline(timeline, machine_id=machine_id) if machine_id else timeline

    def incident_window(self, margin: pd.Timedelta = INCIDENT_MARGIN) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """From the first current symptom (or the root cause's time) to the last, with a margin; None when healthy."""
        times = [f.at for f in self.findings if f.at is not None and f.symptom and f.current]
        if self.root is not None and self.root.at is not None:
            times.append(self.root.at)
        if not times:
            return None
        return min(times) - margin, max(times) + margin

    def incident_timeline(self) -> pd.DataFrame:
        """The timeline within :meth:`incident_window` (empty when there is no incident)."""
        from vyxops.analysis.timeline import filter_timeline

        window = self.incident_window()
        if window is None:
            return self.timeline.iloc[0:0]
        return filter_timeline(self.timeline, since=window[0], until=window[1])

    @property
    def verdict(self) -> str:
        """``root_cause``, ``healthy`` (complete evidence, nothing wrong) or ``inconclusive``."""
        return str(self.document["verdict"])

    @property
    def root_line(self) -> str:
        """The root cause in one line, for a terminal."""
        if self.root is not None:
            return f"{self.root.code}: {self.root.title}"
        if any(g.decides for g in self.gaps):
            return "inconclusive: nothing critical seen, but the evidence is incomplete"
        return "no root cause: nothing critical found"

    def findings_frame(self) -> pd.DataFrame:
        """One row per finding: code, severity, title, entity, fixes, evidence count."""
        return pd.DataFrame(
            [
                {
                    "code": f.code,
                    "severity": f.severity,
                    "title": f.title,
                    "entity": f.entity,
                    "fixes": ", ".join(f.fixes),
                    "evidence": len(f.evidence),
                }
                for f in self.findings
            ],
            columns=["code", "severity", "title", "entity", "fixes", "evidence"],
        )

    def summary_in(self, tz: str) -> str:
        """The summary told with times in ``tz`` (the investigation's own is in its ``--tz``: ``context.tz``)."""
        same = (tz or "UTC") == self.context.tz
        return self.summary if same else summarize(self.context, self.root, self.findings, self.gaps, tz)

    def recommended_fixes(self) -> list[str]:
        """The fix codes the root cause and the critical findings ask for, root cause first."""
        wanted: list[str] = []
        for f in sorted(self.findings, key=lambda f: (self.root is not f, f.severity != "critical")):
            if f.severity == "critical" or self.root is f:
                wanted += [c for c in f.fixes if c not in wanted]
        return wanted

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write findings.json and timeline.parquet into ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"findings": out_dir / "findings.json", "timeline": out_dir / "timeline.parquet"}
        paths["findings"].write_text(json.dumps(self.document, indent=2) + "\n", encoding="utf-8")
        self.timeline.to_parquet(paths["timeline"], index=False)
        return paths


def investigate(
    session: Session,
    app: str,
    *,
    contract: Contract | str | Path | None = None,
    since: Any = None,
    until: Any = None,
    machine_id: str | None = None,
    stuck_after_minutes: float = STUCK_AFTER_MIN,
    project: ProjectReads | None = None,
    tz: str = "UTC",
) -> Investigation:
    """Reconstruct what happened to ``app`` and name the root cause with its evidence.

    The ranking always looks at the whole app; ``machine_id`` then focuses the timeline and
    the machine findings on one machine, keeping the app-wide findings (secret, images,
    ``:latest``, refused creates) and the root cause whole (SPEC.md). ``project`` shares
    project-wide reads between the apps of one audit. ``contract`` is the team's pipeline
    (a Contract, or a file as ``--contract`` names it); without one, the project's declared
    contract, else one discovered from the platforms (:func:`vyxops.analysis.discover.resolve_contract`).
    ``tz`` reads a zone-less ``since``/``until`` and tells the findings' times (their RFC 3339 fields stay UTC).
    """
    check_app(app)
    check_machine_id(machine_id)
    check_stuck_after(stuck_after_minutes)
    project = project or ProjectReads(session)
    start, end = parse_window(session.now(), since, until, tz)
    wait_ahead = fanout.ahead(lambda: project.read_ahead(app, start, end))  # no contract decides these reads
    try:
        contract = resolve_contract(session, [app], declared=contract, project=project, since=start, until=end)
    finally:
        wait_ahead()
    evidence = collect_evidence(
        session, app, contract=contract, since=start, until=end, machine_id=machine_id, project=project
    )
    inv = analyse(evidence, stuck_after_minutes=stuck_after_minutes, project_ref=session.project_ref, tz=tz)
    inv.window_note = window_note(since, until, tz)
    return inv


def analyse(
    evidence: Evidence, *, stuck_after_minutes: float = STUCK_AFTER_MIN, project_ref: str | None = None, tz: str = "UTC"
) -> Investigation:
    """What :func:`investigate` does once the evidence is in: timeline, detectors, ranking (no request)."""
    machine_id = evidence.machine_id
    ctx = build_context(evidence, Thresholds(stuck_after_minutes=stuck_after_minutes), tz)
    root, findings = rank(run_detectors(ctx), ctx.tz)
    findings = sorted(findings, key=lambda f: (int(f.link), f.code, f.entity))
    if machine_id:
        root_mid = root.facts.get("machine_id") if root is not None else None
        focus = {machine_id} | ({root_mid} if isinstance(root_mid, str) else set())
        findings = [f for f in findings if f is root or _concerns(f, focus)]
    gaps = list(dict.fromkeys(evidence.gaps + ctx.gaps))
    health = release_health(evidence, ctx.tz, judge=root is not None)  # only a root is rolled back
    settle_fixes(evidence, root, findings, health)
    steps = next_steps(evidence, root, findings, health, project_ref, ctx.tz)
    summary = summarize(ctx, root, findings, gaps, ctx.tz)
    document = findings_document(ctx, root, findings, summary, gaps)
    if document["root_cause"] is not None:  # additive to vyxops.findings/1
        document["root_cause"]["next_steps"] = [s.as_json() for s in steps]
    impact = impact_of(ctx, findings)
    resolved = resolved_incident(root, findings)
    if resolved is not None:
        document["resolved"] = resolved.as_json()
    return Investigation(evidence, findings, root, summary, document, gaps, ctx, impact, project_ref, resolved, steps)


#: Findings about a machine that speak for the app: a deploy's release command (why an image is not a release).
APP_WIDE_MACHINE_CODES = frozenset({"RELEASE_COMMAND_FAILED"})


def _concerns(f: Finding, machines: set[str]) -> bool:
    """Whether a finding stays in a focus: app-wide ones do, machine and row ones only for the focused machine or
    the root's (the root stays whole, with its row: SPEC.md); a row naming no machine is no machine's."""
    mid = f.facts.get("machine_id")
    if mid is None:
        return "row" not in f.facts
    return mid in machines or f.code in APP_WIDE_MACHINE_CODES

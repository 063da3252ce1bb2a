"""An investigation: evidence → timeline → findings → root cause, for one app and window."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vyxops.detect import Finding, Thresholds, findings_document, rank, run_detectors, summarize
from vyxops.evidence import Evidence, collect_evidence


@dataclass
class Investigation:
    """What an investigation found, ready for a notebook, a report or findings.json."""

    evidence: Evidence
    timeline: pd.DataFrame
    findings: list[Finding]
    root: Finding | None
    summary: str
    document: dict[str, Any]

    @property
    def root_line(self) -> str:
        """The root cause in one line, for a terminal."""
        if self.root is None:
            return "no root cause: nothing critical found"
        return f"{self.root.code}: {self.root.title}"

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

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write findings.json and timeline.parquet into ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"findings": out_dir / "findings.json", "timeline": out_dir / "timeline.parquet"}
        paths["findings"].write_text(json.dumps(self.document, indent=2) + "\n", encoding="utf-8")
        self.timeline.to_parquet(paths["timeline"], index=False)
        return paths


def investigate(
    session: Any,
    app: str,
    *,
    since: Any = None,
    until: Any = None,
    machine_id: str | None = None,
    stuck_after_minutes: float = 10.0,
    project: Any = None,
) -> Investigation:
    """Reconstruct what happened to ``app`` and name the root cause with its evidence.

    ``project`` (an :class:`~vyxops.evidence.ProjectReads`) shares project-wide reads between apps.
    """
    from vyxops.timeline import build_timeline, filter_timeline

    evidence = collect_evidence(session, app, since=since, until=until, machine_id=machine_id, project=project)
    timeline = build_timeline(**evidence.frames())
    timeline = filter_timeline(timeline, machine_id=machine_id) if machine_id else timeline
    findings = run_detectors(evidence, Thresholds(stuck_after_minutes=stuck_after_minutes))
    root, findings = rank(evidence, findings)
    summary = summarize(evidence, root, findings)
    return Investigation(
        evidence, timeline, findings, root, summary, findings_document(evidence, root, findings, summary)
    )

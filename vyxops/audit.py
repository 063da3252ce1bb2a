"""Scheduled audits: investigate several apps and say which need attention."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vyxops.investigate import Investigation, investigate
from vyxops.timeutil import iso

AUDIT_SCHEMA = "vyxops.audit/1"
_RANK = {"critical": 2, "warning": 1, "info": 0}


@dataclass
class Audit:
    """One investigation per app, and the worst severity each reached."""

    target: str
    generated_at: pd.Timestamp
    investigations: dict[str, Investigation]

    def frame(self) -> pd.DataFrame:
        rows = []
        for app, inv in self.investigations.items():
            rows.append(
                {
                    "app": app,
                    "worst": worst(inv),
                    "root_cause": inv.root.code if inv.root else None,
                    "findings": len(inv.findings),
                    "summary": inv.summary,
                }
            )
        return pd.DataFrame(rows, columns=["app", "worst", "root_cause", "findings", "summary"])

    def document(self, fail_on: str) -> dict[str, Any]:
        return {
            "schema": AUDIT_SCHEMA,
            "target": self.target,
            "generated_at": iso(self.generated_at),
            "fail_on": fail_on,
            "apps": [
                {
                    "app": app,
                    "worst": worst(inv),
                    "verdict": inv.verdict,
                    "root_cause": inv.root.code if inv.root else None,
                    "gaps": [g.as_json() for g in inv.gaps],
                    "findings": [f.as_json() for f in inv.findings],
                }
                for app, inv in self.investigations.items()
            ],
        }

    def write(self, out_dir: Path, fail_on: str) -> Path:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "audit.json"
        path.write_text(json.dumps(self.document(fail_on), indent=2) + "\n", encoding="utf-8")
        return path


def worst(inv: Investigation) -> str | None:
    """The highest severity among an investigation's findings, or None when there are none.

    An inconclusive verdict (no root cause, incomplete evidence) counts as a warning (SPEC.md).
    """
    levels = [f.severity for f in inv.findings] + (["warning"] if inv.verdict == "inconclusive" else [])
    if not levels:
        return None
    return max(levels, key=lambda s: _RANK.get(s, 0))


def run_audit(session: Any, apps: list[str] | None = None, *, stuck_after_minutes: float = 10.0) -> Audit:
    """Investigate each app (every app of the org when ``apps`` is empty), over one window.

    The window is fixed once (the target's now, 24 h back), and the project-wide
    reads (secrets, functions, function logs) are made once for all the apps.
    """
    from vyxops.evidence import ProjectReads

    names = list(apps or []) or [a["name"] for a in session.fly.list_apps(session.org)]
    until = session.now()
    project = ProjectReads(session)
    investigations = {
        app: investigate(session, app, until=until, stuck_after_minutes=stuck_after_minutes, project=project)
        for app in names
    }
    return Audit(session.label, session.now(), investigations)

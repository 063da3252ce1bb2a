"""What a plan and its result are: data a person reads and ``plan.json``/``result.json`` hold (SPEC.md "Fixes")."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vyxops.act.fixes.values import brief, describe_change, jsonable, write_json
from vyxops.analysis.advice import NextStep
from vyxops.core.contract import Contract

REMEDIATION_SCHEMA = "vyxops.remediation/1"
NOT_RUN = "not run: an earlier action failed"
STATUSES = ("planned", "applied", "skipped", "failed")


@dataclass
class Action:
    """One planned platform change, with what was read when it was planned.

    ``read`` holds the facts the apply step re-checks (digests, versions, the row's
    status and raw ``updated_at``); ``desired`` is the state the action produces.
    ``native`` are the commands a person could type instead, ``dashboard`` the pages
    where the same change is made or seen by hand (no token in either).
    """

    code: str
    target: str
    current: str  # what a person reads in the plan: the value or digest now
    new: str  # what it becomes
    precondition: str  # what must still hold when it is applied
    risk: str
    reason: str  # why it is planned: the findings (or the audit log) that ask for it
    read: dict[str, Any] = field(default_factory=dict)
    desired: dict[str, Any] = field(default_factory=dict)
    native: list[str] = field(default_factory=list)
    dashboard: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what the change does beyond its target

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "target": self.target,
            "status": "planned",
            "reason": self.reason,
            "before": jsonable(self.read),
            "after": jsonable(self.desired),
            "native": list(self.native),
            "dashboard": list(self.dashboard),
            "warnings": list(self.warnings),
        }


def cold_start_warning(functions: int | None) -> str:
    """What writing any secret does to the project: every function restarts and bumps its version
    (Supabase knowledge base, "Edge Function versions increment across all functions after updating
    secrets": "Prepare for a cold start latency on the first invocation of each function")."""
    which = (
        "every Edge Function of the project"
        if functions is None
        else f"all {functions} Edge Function(s) of the project"
    )
    return (
        f"writing a secret restarts {which}: each gets a new version and cold-starts on its next "
        "invocation (not a redeploy; the code is unchanged)"
    )


@dataclass
class Plan:
    """The actions that would fix an investigation's findings, in apply order."""

    app: str
    target: str  # the session label, e.g. sandbox:stub-image
    strategy: str
    actions: list[Action]
    notes: list[str] = field(default_factory=list)  # fixes asked for but not planned, and why
    generated_at: str = ""
    project_ref: str | None = None
    contract: Contract = field(default_factory=Contract)  # the pipeline the plan was made for
    recommendations: list[NextStep] = field(default_factory=list)  # what a person does where no fix is safe

    def frame(self) -> pd.DataFrame:
        """One row per action: action, target, current, new, precondition, risk."""
        cols = ["action", "target", "current", "new", "precondition", "risk"]
        rows = [[a.code, a.target, a.current, a.new, a.precondition, a.risk] for a in self.actions]
        return pd.DataFrame(rows, columns=cols)

    def warnings(self) -> list[str]:
        """Each action's warnings, ``CODE target: warning``."""
        return [f"{a.code} {a.target}: {w}" for a in self.actions for w in a.warnings]

    def document(self, dry_run: bool = True) -> dict[str, Any]:
        """``plan.json`` (schema vyxops.remediation/1): every action ``planned``."""
        return {
            "schema": REMEDIATION_SCHEMA,
            "dry_run": bool(dry_run),
            "target": self.target,
            "app": self.app,
            "strategy": self.strategy,
            "generated_at": self.generated_at,
            "actions": [a.as_json() for a in self.actions],
            "notes": list(self.notes),
            "recommendations": [r.as_json() for r in self.recommendations],
        }

    def write(self, out_dir: str | Path, dry_run: bool = True) -> Path:
        """Write ``plan.json`` into ``out_dir``."""
        return write_json(Path(out_dir) / "plan.json", self.document(dry_run))


@dataclass
class Outcome:
    """What became of one action: planned (dry run), applied, skipped or failed, and why."""

    code: str
    target: str
    status: str  # planned | applied | skipped | failed
    reason: str
    before: Any = None
    after: Any = None

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "target": self.target,
            "status": self.status,
            "reason": self.reason,
            "before": jsonable(self.before),
            "after": jsonable(self.after),
        }


@dataclass
class Result:
    """The outcome of applying (or dry-running) a plan, and the audit lines it appended."""

    app: str
    target: str
    dry_run: bool
    actions: list[Outcome]
    audit_lines: list[dict[str, Any]] = field(default_factory=list)
    audit_log: Path | None = None
    verification: dict[str, Any] | None = None  # what VERIFY_PROVISIONING saw, when it ran
    finished_at: str = ""
    notes: list[str] = field(default_factory=list)  # the plan's notes, then what this run settled

    @property
    def ok(self) -> bool:
        return not any(a.status == "failed" for a in self.actions)

    @property
    def changed(self) -> bool:
        """Whether anything was applied (VERIFY_PROVISIONING included: it made and removed a canary)."""
        return any(a.status == "applied" for a in self.actions)

    def frame(self) -> pd.DataFrame:
        """One row per action: action, target, status, reason, and the change as a readable diff."""
        rows = [[a.code, a.target, a.status, a.reason, _change(a)] for a in self.actions]
        return pd.DataFrame(rows, columns=["action", "target", "status", "reason", "change"])

    def verification_frame(self) -> pd.DataFrame:
        """What VERIFY_PROVISIONING saw, one row per fact (empty when it did not run)."""
        v = self.verification or {}
        return pd.DataFrame([{"what": k, "seen": brief(x)} for k, x in v.items()], columns=["what", "seen"])

    def audit_frame(self) -> pd.DataFrame:
        """The audit lines this run appended: intents and the outcomes that close them."""
        cols = ["time", "kind", "action", "step", "entity", "result", "reason"]
        return pd.DataFrame([{k: line.get(k) for k in cols} for line in self.audit_lines], columns=cols)

    def document(self) -> dict[str, Any]:
        """``result.json`` (schema vyxops.remediation/1), same shape as the plan."""
        doc: dict[str, Any] = {
            "schema": REMEDIATION_SCHEMA,
            "dry_run": bool(self.dry_run),
            "target": self.target,
            "app": self.app,
            "finished_at": self.finished_at,
            "actions": [a.as_json() for a in self.actions],
            "notes": list(self.notes),
        }
        if self.verification is not None:
            doc["verification"] = jsonable(self.verification)
        return doc

    def write(self, out_dir: str | Path) -> Path:
        """Write ``result.json`` into ``out_dir`` (atomically: a kill never leaves half a file)."""
        return write_json(Path(out_dir) / "result.json", self.document())


def _change(a: Outcome) -> str:
    """The outcome's diff; for a planned action, only over what it would set (what it read besides is not a change)."""
    before = a.before
    if a.status == "planned" and isinstance(before, dict) and isinstance(a.after, dict):
        before = {k: v for k, v in before.items() if k in a.after}
    return describe_change(before, a.after)

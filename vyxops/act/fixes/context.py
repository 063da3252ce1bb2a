"""What planners and appliers are handed: the investigation and the audit history, or the session and the log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vyxops.act.fixes.audit_log import AuditLog, History
from vyxops.act.fixes.model import Action
from vyxops.act.fixes.registry import Place
from vyxops.analysis.advice import ReleaseHealth, release_fails
from vyxops.analysis.evidence import Evidence
from vyxops.analysis.investigate import Investigation
from vyxops.core.contract import Contract
from vyxops.fetch.session import Session

#: The fixes that decide which image provisioning uses, and the ones each strategy plans.
IMAGE_FIXES = ("PIN_SECRET_TO_RELEASE", "TAG_LATEST", "UNSET_SECRET")
STRATEGY_FIXES = {
    "pin": ["PIN_SECRET_TO_RELEASE"],
    "pin-digest": ["PIN_SECRET_TO_RELEASE"],
    "latest": ["TAG_LATEST", "UNSET_SECRET"],
}


@dataclass
class PlanContext:
    """One plan being made: the investigation, the audit history, and what is planned so far."""

    inv: Investigation
    strategy: str
    wanted: list[str]  # --fix codes (empty: whatever the findings call for)
    history: History
    place: Place
    health: ReleaseHealth
    facts: dict[str, Any]  # the secret, the current release and :latest as the investigation read them
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def evidence(self) -> Evidence:
        return self.inv.evidence

    def allowed(self, code: str) -> bool:
        """Whether ``--fix`` lets ``code`` be planned."""
        return not self.wanted or code in self.wanted

    def asked(self, code: str) -> list[str]:
        """The finding codes asking for fix ``code``."""
        return list(dict.fromkeys(f.code for f in self.inv.findings if code in f.fixes))

    def asked_critically(self, code: str) -> bool:
        return any(code in f.fixes for f in self.inv.findings if f.severity == "critical" or self.inv.root is f)

    def note(self, code: str, text: str) -> None:
        self.notes.append(f"{code}: {text}")

    def release_fails(self) -> str | None:
        """Why the current release's own image is known to fail (the evidence), or None."""
        return release_fails(self.inv.root, self.health, self.evidence)

    def image_choice(self, code: str) -> str | None:
        """Why image fix ``code`` is planned ("" when only its state is reported), or None when it is not in play."""
        named = [c for c in IMAGE_FIXES if c in self.wanted]
        reasons = list(dict.fromkeys(c for fix in IMAGE_FIXES for c in self.asked(fix)))
        if reasons or named:
            # A function that reads no image secret has only its fallback to fix, whatever the strategy.
            chosen = named or (STRATEGY_FIXES[self.strategy] if self.facts["secret_name"] else ["TAG_LATEST"])
            if code not in chosen or not self.allowed(code):
                return None
            return "asked for by " + ", ".join(reasons) if reasons else "named with --fix " + " ".join(named)
        if not self.wanted and code in STRATEGY_FIXES[self.strategy]:
            return ""
        return None


@dataclass
class ApplyContext:
    """One apply: the session, the audit log, and what the verification saw."""

    session: Session
    app: str
    contract: Contract
    log: AuditLog
    verification: dict[str, Any] | None = None

    @property
    def table(self) -> str:
        return self.contract.table.name


def image_facts(e: Evidence) -> dict[str, Any]:
    """The image secret, the current release and the fallback (``:latest``) as the investigation read them."""
    release = e.current_release()
    latest = e.contract.fallback_ref(e.app)
    secret = e.docker_image()
    rel_image = None if release is None or pd.isna(release["image"]) else str(release["image"])
    rel_exists, rel_digest = e.head(rel_image)
    latest_exists, latest_digest = e.head(latest)
    functions = e.functions
    return {
        # how many functions a secret write restarts; None when the functions list was not read whole
        "function_count": len(functions) if functions.attrs.get("complete") else None,
        "secret_name": e.contract.image_secret,
        "secret_digest": secret["digest"],
        "secret_ref": secret["ref"],
        "release_version": None if release is None else int(release["version"]),
        "release_said": e.current_said(short=True),
        "release_image": rel_image,
        "release_exists": rel_exists,
        "release_digest": rel_digest,
        "latest_ref": latest,
        "latest_exists": latest_exists,
        "latest_digest": latest_digest,
    }

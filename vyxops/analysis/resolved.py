"""A resolved incident: what failed in the window though nothing fails now.

After a fix the detectors see the failures as history (``info``, "resolved at …", see
:mod:`vyxops.analysis.detect.rank`), and the cause that was mended is gone from the platforms
(the secret names the release's image again). The incident is still what happened:
:func:`resolved_incident` gathers the history symptoms (vyxops's own canaries are not
users) with their span and the time provisioning worked again, for findings.json's
``resolved`` block and the postmortem, which adds what the audit log says was done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from vyxops.analysis.detect import Finding
from vyxops.core.timeutil import iso


@dataclass(frozen=True)
class Resolved:
    """The history symptoms of one window, most upstream first, and when the evidence shows them over."""

    symptoms: list[Finding]
    first: pd.Timestamp | None  # the first of them
    last: pd.Timestamp | None  # the last of them
    resolved_at: pd.Timestamp | None  # the first provisioning that worked after the last of them (None: unknown)

    @property
    def head(self) -> Finding:
        return self.symptoms[0]

    def as_json(self) -> dict[str, Any]:
        """findings.json's ``resolved`` block (additive: readers of vyxops.findings/1 may ignore it)."""
        return {
            "code": self.head.code,
            "title": self.head.title,
            "entity": self.head.entity,
            "codes": list(dict.fromkeys(f.code for f in self.symptoms)),
            "first": iso(self.first) if self.first is not None else None,
            "last": iso(self.last) if self.last is not None else None,
            "resolved_at": iso(self.resolved_at) if self.resolved_at is not None else None,
        }


def resolved_incident(root: Finding | None, findings: list[Finding]) -> Resolved | None:
    """The window's resolved incident, or None when a root cause stands (the incident is current) or none failed."""
    if root is not None:
        return None
    past = [f for f in findings if f.symptom and not f.current and f.facts.get("origin") != "canary"]
    if not past:
        return None
    past.sort(key=lambda f: (int(f.link), f.at if f.at is not None else pd.Timestamp.max.tz_localize("UTC")))
    times = [f.at for f in past if f.at is not None]
    ends = [f.resolved_at for f in past if f.resolved_at is not None]
    return Resolved(
        symptoms=past,
        first=min(times) if times else None,
        last=max(times) if times else None,
        resolved_at=max(ends) if ends else None,
    )

"""What a fetch could not see: gaps in the evidence, named with their source, span and reason.

A fetcher that stops early, meets data past a platform's retention, or may not
read something (a registry repository the token cannot see) records a
:class:`Gap` on its frame (``df.attrs["gaps"]``). Missing evidence is never
evidence that nothing happened (PLATFORM.md): the investigation turns gaps into
``complete``/``gaps``/``verdict`` in findings.json (SPEC.md "Findings").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Gap:
    """One thing a source could not show: ``since``/``until`` are RFC 3339 ("" when not a span of time)."""

    source: str  # e.g. "supabase.function_logs", "fly.registry"
    why: str  # what happened, and how to see it anyway when there is a way
    since: str = ""
    until: str = ""
    # Whether this gap can hide what decides health (SPEC.md "Findings"): a source that only corroborates says
    # False, and its gap is listed with ``"decides": false`` and leaves the verdict and ``complete`` alone. Which
    # sources decide is the sources table's word (vyxops.analysis.sources), applied as the evidence is collected.
    decides: bool = True

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        if out.pop("decides") is False:
            out["decides"] = False
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Gap:
        since, until = str(data.get("since") or ""), str(data.get("until") or "")
        return cls(str(data["source"]), str(data["why"]), since, until, data.get("decides") is not False)

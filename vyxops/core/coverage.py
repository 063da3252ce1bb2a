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

#: Sources that corroborate but do not decide health (SPEC.md "Findings"): Fly's app logs. A gap there is
#: listed with ``"decides": false`` and leaves the verdict and ``complete`` alone.
CORROBORATING = frozenset({"fly.logs"})


@dataclass(frozen=True)
class Gap:
    """One thing a source could not show: ``since``/``until`` are RFC 3339 ("" when not a span of time)."""

    source: str  # e.g. "supabase.function_logs", "fly.registry"
    why: str  # what happened, and how to see it anyway when there is a way
    since: str = ""
    until: str = ""

    @property
    def decides(self) -> bool:
        """Whether this gap can hide what decides health (every source but those that only corroborate)."""
        return self.source not in CORROBORATING

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        if not self.decides:
            out["decides"] = False
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Gap:
        return cls(str(data["source"]), str(data["why"]), str(data.get("since") or ""), str(data.get("until") or ""))

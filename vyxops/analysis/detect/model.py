"""What a finding is, the chain its code speaks for, and the registry detectors join.

A detector is a function ``(Context) -> list[Finding]`` registered with the codes
it may emit and the link of the causal chain those codes speak for (SPEC.md
"Findings"): secret or ``:latest`` → image → create → pull/launch → run →
exit/destroy → DB row. The ranking (:mod:`vyxops.analysis.detect.rank`) reads only the
registry and the findings, so adding a detector is one module that registers itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import pandas as pd

from vyxops.core.checks import STUCK_AFTER_MIN
from vyxops.core.timeutil import iso

if TYPE_CHECKING:
    from vyxops.analysis.detect.context import Context


class Link(IntEnum):
    """The links of the causal chain, most upstream first."""

    SECRET = 0  # the image secret, or the fallback (:latest) when it is unset
    IMAGE = 1  # the image reference resolves (or not) in the registry
    CREATE = 2  # the Machines API accepts the create
    LAUNCH = 3  # the host pulls the image and starts the machine
    RUN = 4  # the process runs (and keeps running)
    EXIT = 5  # the process exits; auto_destroy removes the machine
    DB = 6  # the DB row says what happened


@dataclass
class Thresholds:
    """Tunable limits; defaults suit per-user session machines."""

    stuck_after_minutes: float = STUCK_AFTER_MIN  # a row may sit in a transitional status this long
    drift_after_minutes: float = 5.0  # Fly and the DB may disagree this long (the app's callback)
    restart_loop_exits: int = 3  # exits (none asked for) that make a restarting machine "constantly restarting"


@dataclass(eq=False)  # identity: findings hold frames, and the ranking compares them by who they are
class Finding:
    """One thing found, with its evidence; ``link``/``at``/``current``/``facts`` serve the ranking and summary."""

    code: str
    severity: str  # critical | warning | info
    title: str
    entity: str
    evidence: list[dict[str, str]]
    fixes: list[str]
    facts: dict[str, Any] = field(default_factory=dict)
    link: Link = Link.DB
    at: pd.Timestamp | None = None  # when the symptom happened, or since when the cause holds
    symptom: bool = False  # something that happened to provisioning (a refusal, a failure, a row)
    current: bool = True  # False: history, its cause no longer in effect
    resolved_at: pd.Timestamp | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.code, self.entity)

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "entity": self.entity,
            "evidence": list(self.evidence),
            "fixes": list(self.fixes),
        }


def ev(source: str, time: Any, detail: str) -> dict[str, str]:
    """One piece of evidence: where it was read, when it happened ("" when untimed), what it says."""
    timed = time is not None and not (isinstance(time, float) and pd.isna(time)) and time is not pd.NaT
    return {"source": source, "time": iso(time) if timed and not pd.isna(time) else "", "detail": detail}


Detect = Callable[["Context"], list[Finding]]
Explains = Callable[[Finding, Finding], bool]


@dataclass(frozen=True)
class Detector:
    """A registered detector: the codes it emits, their link, and which findings they explain."""

    name: str
    codes: tuple[str, ...]
    link: Link
    detect: Detect
    symptom: bool = False  # its findings are things that happened to provisioning, not states that cause them
    explains: Explains | None = None  # (cause, symptom) -> whether the cause explains the symptom
    certain: bool = False  # in effect now, it makes every provisioning fail (root even before a symptom)


DETECTORS: list[Detector] = []
#: Every finding code, in registration order (a stable order for findings.json).
CODES: list[str] = []


def register(
    *codes: str, link: Link, symptom: bool = False, explains: Explains | None = None, certain: bool = False
) -> Callable[[Detect], Detect]:
    """Decorator: register a detector emitting ``codes``, which speak for ``link``.

    ``symptom``: its findings are things that happened (a refusal, a failed machine, a
    row); ``explains(cause, symptom)``: which symptoms its findings explain; ``certain``:
    while its finding holds, every provisioning fails, so it is the root even before a
    symptom is seen.
    """

    def wrap(fn: Detect) -> Detect:
        for code in codes:
            if code in CODES:
                raise ValueError(f"finding code {code} is registered twice")
            CODES.append(code)
        DETECTORS.append(Detector(fn.__name__, tuple(codes), link, fn, symptom, explains, certain))
        return fn

    return wrap


def detector_for(code: str) -> Detector:
    """The detector that emits ``code``."""
    for d in DETECTORS:
        if code in d.codes:
            return d
    raise KeyError(code)


#: The links at which a machine fails after its create was accepted.
MACHINE_LINKS = frozenset({Link.LAUNCH, Link.RUN, Link.EXIT})


def is_machine_failure(code: str) -> bool:
    """Whether ``code`` is a machine that failed after its create was accepted (launch, run or exit link)."""
    d = _detector_or_none(code)
    return d is not None and d.symptom and d.link in MACHINE_LINKS


def is_db_discrepancy(code: str) -> bool:
    """Whether ``code`` speaks for the DB row (the last link)."""
    d = _detector_or_none(code)
    return d is not None and d.link == Link.DB


def _detector_or_none(code: str) -> Detector | None:
    """The detector that emits ``code``; None for a finding no detector makes (``--probe``'s PROVISIONING_PROBE_FAILED,
    vyxops.act.probe), which is neither a machine failure nor the DB's."""
    return next((d for d in DETECTORS if code in d.codes), None)

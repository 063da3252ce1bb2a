"""What a recommended action is, and the registry the action modules join.

A root cause gets a next step: an automated fix remediate plans, or, where none is
safe, a recommended action a person carries out, with the platform's own commands,
the dashboard pages, and the evidence it rests on. One module per concern registers
its actions (:func:`register`) with the root codes they answer; :func:`next_steps`
asks those registered for the root's code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vyxops.analysis.advice.place import Place
from vyxops.analysis.advice.served import ReleaseHealth, ReleaseRecord
from vyxops.analysis.detect.model import Finding
from vyxops.analysis.evidence import Evidence

#: Root causes that mean "the image itself fails", when it is the current release's image.
IMAGE_FAILURES = ("MACHINE_EXITED_AUTO_DESTROYED", "MACHINE_EXITED", "MACHINE_LAUNCH_FAILED", "MACHINE_RESTART_LOOP")


@dataclass(frozen=True)
class NextStep:
    """One recommended action: what to do, the commands that do it, where to see it, and why."""

    code: str
    title: str
    commands: tuple[str, ...]
    dashboard: tuple[str, ...]
    evidence: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "title": self.title,
            "commands": list(self.commands),
            "dashboard": list(self.dashboard),
            "evidence": list(self.evidence),
        }


@dataclass
class Situation:
    """What an action is advised from: the evidence, the root cause, every finding, and what each release did."""

    evidence: Evidence
    root: Finding
    findings: list[Finding]
    place: Place
    health: ReleaseHealth
    notes: list[str] = field(default_factory=list)
    tz: str = "UTC"  # the zone a person reads times in (--tz)

    def release_fails(self) -> str | None:
        """Why the current release's own image is known to fail, or None."""
        return release_fails(self.root, self.health, self.evidence)


Advise = Callable[[Situation], "NextStep | None"]


@dataclass(frozen=True)
class Kind:
    """A registered recommended action: its code, what it is, the root codes it answers, and how it is advised."""

    code: str
    description: str
    roots: tuple[str, ...]
    advise: Advise


_KINDS: dict[str, Kind] = {}


def register(code: str, description: str, *roots: str) -> Callable[[Advise], Advise]:
    """Decorator: register action ``code``, advised for roots of ``roots`` (it returns None where it does not fit)."""

    def wrap(fn: Advise) -> Advise:
        if code in _KINDS:
            raise ValueError(f"recommended action {code} is registered twice")
        _KINDS[code] = Kind(code, description, tuple(roots), fn)
        return fn

    return wrap


def kinds() -> list[Kind]:
    """Every registered recommended action, in registration order."""
    return list(_KINDS.values())


def advised_roots() -> set[str]:
    """Every root code some recommended action answers."""
    return {r for k in _KINDS.values() for r in k.roots}


def release_fails(root: Finding | None, health: ReleaseHealth, e: Evidence) -> str | None:
    """Why the current release's own image is known to fail (the evidence), or None: the root cause is a machine
    on that image failing, or the release's machines failed and none served (:mod:`vyxops.analysis.advice.served`)."""
    cur = health.current
    if cur is None:
        return None
    if root is not None and root.code in IMAGE_FAILURES:
        image, digest = root.facts.get("image"), root.facts.get("digest")
        if image == cur.image or e.identity.same(digest, cur.digest):
            return f"root cause {root.code}: {root.title}"
    if cur.fails:
        return "; ".join(cur.failed[:3])
    return None


def release_said(r: ReleaseRecord) -> str:
    """``release v2's image REF (sha256:…)``: a release named with its image and digest."""
    digest = f" ({r.digest})" if r.digest else ""
    return f"release v{r.version}'s image {r.image}{digest}"

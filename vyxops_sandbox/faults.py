"""Fault injection, set per sandbox (not per scenario): latency, 429, 5xx, timeouts, malformed bodies.

Rules live in ``<sandbox_dir>/faults.json`` (so every process using the sandbox sees
them) or are passed in directly by tests. Each rule fires at a rate (from a seeded
RNG, so runs repeat) or on the Nth matching call.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vyxops.errors import InputError

KINDS = ("latency", "429", "5xx", "timeout", "malformed")


@dataclass
class FaultRule:
    """One fault: what it does, which calls it matches, and when it fires."""

    kind: str
    rate: float | None = None  # probability per matching call
    nth: int | None = None  # fire on the Nth matching call only (1-based)
    times: int | None = None  # at most this many injections
    path: str | None = None  # regex searched in the request path
    method: str | None = None
    status: int = 503  # for 5xx
    retry_after: float | None = None  # for 429: None sends no Retry-After header
    latency_ms: int = 2000  # for latency (and how long a timeout hangs when served)
    when: str = "before"  # "after": the call takes effect, then the fault hides the answer
    seen: int = field(default=0, repr=False)
    fired: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError("fault.kind", f"unknown fault {self.kind!r}", allowed=list(KINDS))
        if self.rate is None and self.nth is None:
            self.rate = 1.0
        if self.rate is not None and not 0 <= self.rate <= 1:
            raise InputError("fault.rate", f"{self.rate} is not a probability", allowed="0..1")
        if self.when not in ("before", "after"):
            raise InputError("fault.when", f"{self.when!r}", allowed=["before", "after"])
        if self.kind == "5xx" and not 500 <= self.status <= 599:
            raise InputError("fault.status", f"{self.status} is not a 5xx status", allowed="500-599")

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, path) is not None


class Faults:
    """The sandbox's fault rules and their counters."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self.rules = list(rules or [])
        self.rng = random.Random(seed)

    @classmethod
    def load(cls, sandbox_dir: Path) -> Faults:
        path = Path(sandbox_dir) / "faults.json"
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        return cls([FaultRule(**r) for r in data.get("rules", [])], seed=int(data.get("seed", 0)))

    def save(self, sandbox_dir: Path) -> None:
        Path(sandbox_dir).mkdir(parents=True, exist_ok=True)
        rules = [{k: v for k, v in asdict(r).items() if k not in ("seen", "fired")} for r in self.rules]
        (Path(sandbox_dir) / "faults.json").write_text(json.dumps({"seed": 0, "rules": rules}, indent=1))

    def pick(self, method: str, path: str, when: str) -> FaultRule | None:
        """The rule that fires for this call at this moment, counting the call."""
        for rule in self.rules:
            if rule.when != when or not rule.matches(method, path):
                continue
            rule.seen += 1
            if rule.times is not None and rule.fired >= rule.times:
                continue
            fire = rule.seen == rule.nth if rule.nth is not None else self.rng.random() < (rule.rate or 0)
            if fire:
                rule.fired += 1
                return rule
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"rules": [asdict(r) for r in self.rules]}

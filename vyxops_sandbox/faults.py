"""Fault injection, set per sandbox (not per scenario): latency, 429, 5xx, timeouts, malformed bodies.

Rules live in ``<sandbox_dir>/faults.json`` (so every process using the sandbox sees
them) or are passed in directly by tests. Each rule fires at a rate (from a seeded
RNG, so runs repeat) or on the Nth matching call.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vyxops.core.errors import InputError

KINDS = ("latency", "429", "5xx", "timeout", "malformed")
MAX_LATENCY_MS = 60_000
MAX_RETRY_AFTER_S = 86_400  # a day: longer than any rate-limit window of either platform


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
        # A latency moves the in-process (virtual) clock by that much: an unbounded one moved a saved sandbox's
        # clock decades ahead. A minute is past every client timeout vyxops sets, so nothing longer tests more.
        if isinstance(self.latency_ms, bool) or not 0 <= self.latency_ms <= MAX_LATENCY_MS:
            raise InputError("fault.latency_ms", f"{self.latency_ms!r} is out of range", allowed=f"0..{MAX_LATENCY_MS}")
        # Retry-After is delay-seconds, a non-negative integer (RFC 9110 section 10.2.3); a fraction is kept (some
        # servers send one), a negative, NaN or infinite one is no header a server sends.
        if self.retry_after is not None and not (
            isinstance(self.retry_after, (int, float))
            and not isinstance(self.retry_after, bool)
            and math.isfinite(self.retry_after)
            and 0 <= self.retry_after <= MAX_RETRY_AFTER_S
        ):
            raise InputError(
                "fault.retry_after", f"{self.retry_after!r} is not a delay", allowed=f"0..{MAX_RETRY_AFTER_S} seconds"
            )

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, path) is not None


_FAULTS_HINT = "fix or delete the file; README 'Fault injection' shows the format"
# field -> the JSON types it takes (bool is refused where a number is meant: True is not 1 here)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "rate": (int, float),
    "nth": (int,),
    "times": (int,),
    "path": (str,),
    "method": (str,),
    "status": (int,),
    "retry_after": (int, float),
    "latency_ms": (int,),
    "when": (str,),
}


def _rule(path: Path, index: int, data: Any) -> FaultRule:
    """One rule of faults.json, checked field by field; InputError names the file, the rule and the field."""
    where = f"{path}: rules[{index}]"
    if not isinstance(data, dict):
        raise InputError(where, "a rule is an object", allowed=sorted(_FIELD_TYPES), hint=_FAULTS_HINT)
    for key, value in data.items():
        types = _FIELD_TYPES.get(key)
        if types is None:
            raise InputError(f"{where}.{key}", "unknown field", allowed=sorted(_FIELD_TYPES), hint=_FAULTS_HINT)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            kind = " or ".join(t.__name__ for t in types)
            raise InputError(
                f"{where}.{key}", f"{value!r} is not {'an' if kind[0] == 'i' else 'a'} {kind}", hint=_FAULTS_HINT
            )
    if "kind" not in data:
        raise InputError(f"{where}.kind", "is required", allowed=list(KINDS), hint=_FAULTS_HINT)
    for key in ("nth", "times", "latency_ms"):
        if data.get(key) is not None and data[key] < (1 if key == "nth" else 0):
            raise InputError(f"{where}.{key}", f"{data[key]} is out of range", hint=_FAULTS_HINT)
    if data.get("path") is not None:
        try:
            re.compile(data["path"])
        except re.error as exc:
            raise InputError(f"{where}.path", f"not a regular expression: {exc}", hint=_FAULTS_HINT) from None
    try:
        return FaultRule(**data)
    except InputError as exc:
        field = exc.name.removeprefix("fault.")
        raise InputError(f"{where}.{field}", exc.message.split(": ", 1)[-1], hint=_FAULTS_HINT) from None


class Faults:
    """The sandbox's fault rules and their counters."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self.rules = list(rules or [])
        self.rng = random.Random(seed)

    @classmethod
    def load(cls, sandbox_dir: Path) -> Faults:
        """The rules in ``<sandbox_dir>/faults.json`` (none when absent); InputError naming the file when malformed."""
        path = Path(sandbox_dir) / "faults.json"
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InputError(str(path), f"not JSON: {exc}", hint=_FAULTS_HINT) from None
        if not isinstance(data, dict) or not isinstance(data.get("rules", []), list):
            raise InputError(str(path), 'must be {"seed": N, "rules": [...]}', hint=_FAULTS_HINT)
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InputError(f"{path}: seed", f"{seed!r} is not an integer", hint=_FAULTS_HINT)
        return cls([_rule(path, i, r) for i, r in enumerate(data.get("rules", []))], seed=seed)

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

"""Typed checks of scenario values, each failing with a ScenarioError that names the file, key and line.

The scenario reader (:mod:`vyxops_sandbox.scenario`) says *which* keys exist; this
module says what a value of each type may be. Checks are strict where YAML is
loose: ``'no'`` (a string) is not a boolean, ``.inf`` is not a number of
seconds, ``true`` is not an exit code, and a time must fall in a sane range.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, NoReturn

import yaml

from vyxops.core.errors import ScenarioError
from vyxops.core.timeutil import parse_rfc3339_ms

Keys = list[Any]

# A sane range for scenario times: no platform in the story existed before 2000, and
# a clock past 2100 is a typo (`now: 9999-…` made every later computation overflow).
TIME_MIN_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
TIME_MAX_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
MAX_SECONDS = 30 * 24 * 3600  # a modelled duration (after_s, session_s) beyond 30 days is a typo

# Names the scenario and its pipeline block share (one home: scenario.py and pipeline.py import them).
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # scenario, app, org and function names
IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")  # table and column names
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IMAGE_REF = re.compile(r"^[a-z0-9.\-]+(:[0-9]+)?/[a-z0-9._\-/]+(:[A-Za-z0-9_.\-]+|@sha256:[0-9a-f]{64})$")


def dotted(keys: Keys) -> str:
    """``["steps", 3, "deploy", "image"]`` → ``steps[3].deploy.image``."""
    return ".".join(f"[{k}]" if isinstance(k, int) else str(k) for k in keys).replace(".[", "[") or "(file)"


class Checker:
    """Checks values of one scenario file; finds a key path's line in the composed YAML node tree."""

    def __init__(self, path: str, root: yaml.Node) -> None:
        self.path = path
        self.root = root

    def line(self, keys: Keys) -> int | None:
        node = self.root
        found = node.start_mark.line + 1
        for key in keys:
            nxt = None
            if isinstance(node, yaml.MappingNode):
                for k, val in node.value:
                    if k.value == str(key):
                        nxt, found = val, k.start_mark.line + 1
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                nxt = node.value[key]
                found = nxt.start_mark.line + 1
            if nxt is None:
                break
            node = nxt
        return found

    def fail(self, keys: Keys, message: str, *, allowed: Any = None) -> NoReturn:
        raise ScenarioError(self.path, dotted(keys), message, line=self.line(keys), allowed=allowed)

    # ------------------------------------------------------------------ containers
    def mapping(self, value: Any, keys: Keys, allowed_keys: Sequence[str] | None = None) -> dict[str, Any]:
        """``value`` as a mapping whose keys are all in ``allowed_keys`` (when given)."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(keys, "must be a mapping", allowed=list(allowed_keys) if allowed_keys else None)
        if allowed_keys is not None:
            for key in value:
                if key not in allowed_keys:
                    self.fail([*keys, key], "unknown key", allowed=list(allowed_keys))
        return value

    def require(self, mapping: dict[str, Any], keys: Keys, key: str) -> Any:
        if mapping.get(key) is None:
            self.fail([*keys, key], "is required")
        return mapping[key]

    # ------------------------------------------------------------------ scalars
    def boolean(self, value: Any, keys: Keys) -> bool:
        # YAML 1.1 reads unquoted yes/no/true/false as booleans; a quoted 'no' is text,
        # which `bool('no')` would have taken as true.
        if not isinstance(value, bool):
            self.fail(keys, f"{value!r} is not a boolean", allowed=["true", "false"])
        return value

    def integer(self, value: Any, keys: Keys, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(keys, f"{value!r} is not a whole number from {low} to {high}", allowed=f"{low}-{high}")
        return value

    def seconds(self, value: Any, keys: Keys, *, positive: bool = False) -> float:
        """A finite number of seconds in [0, 30 days] (> 0 when ``positive``); ints stay ints."""
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < 0 or value > MAX_SECONDS or (positive and value == 0):
            low = "> 0" if positive else ">= 0"
            self.fail(
                keys,
                f"{value!r} is not a number of seconds {low}",
                allowed=f"a finite number {low}, at most {MAX_SECONDS}",
            )
        return value

    def text(self, value: Any, keys: Keys, *, pattern: Any = None, what: str = "a string") -> str:
        if not isinstance(value, str) or not value or (pattern is not None and not pattern.match(value)):
            self.fail(keys, f"{value!r} is not {what}")
        return value

    def choice(self, value: Any, keys: Keys, options: Sequence[str]) -> str:
        if not isinstance(value, str) or value not in options:
            self.fail(keys, f"{value!r} is not one of the allowed values", allowed=list(options))
        return value

    def time(self, mapping: dict[str, Any], keys: Keys) -> int:
        """An RFC 3339 time (a YAML timestamp or a string) as Unix ms, within 2000..2100."""
        key = keys[-1]
        if key not in mapping:
            self.fail(keys, "is required (an RFC 3339 time, e.g. 2025-10-02T17:25:00Z)")
        value = mapping[key]
        try:
            text = value.isoformat() if hasattr(value, "isoformat") else value
            if not isinstance(text, str):
                raise TypeError(text)
            ms = parse_rfc3339_ms(text)
        except (ValueError, TypeError, OverflowError):
            self.fail(keys, f"{value!r} is not a time", allowed="RFC 3339, e.g. 2025-10-02T17:25:00Z")
        if not TIME_MIN_MS <= ms < TIME_MAX_MS:
            self.fail(keys, f"{value!r} is outside the sandbox's range", allowed="2000-01-01 .. 2099-12-31")
        return ms


def find_duplicate_key(node: yaml.Node) -> yaml.Node | None:
    """The first mapping key that appears twice in its mapping (YAML loaders silently keep the last one)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        return key
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return None

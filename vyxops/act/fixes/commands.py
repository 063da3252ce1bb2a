"""The ``vyxops remediate`` command line that repeats a run, complete and quoted so it runs as printed."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from vyxops.core.checks import STUCK_AFTER_MIN
from vyxops.core.present import target_flags

DEFAULT_TARGET = "sandbox"
DEFAULT_STRATEGY = "pin"


def remediate_command(
    app: str,
    *,
    out_dir: str,
    target: str = DEFAULT_TARGET,
    scenario: str | None = None,
    fixes: Sequence[str] = (),
    strategy: str = DEFAULT_STRATEGY,
    stuck_after_minutes: float = STUCK_AFTER_MIN,
    apply: bool = True,
) -> str:
    """``vyxops remediate --app APP [--target T] [--scenario S] … [--apply --confirm APP] --out DIR``.

    Options at their defaults are left out; every value is shell-quoted.
    """
    words = ["vyxops", "remediate", *target_flags(target, scenario), "--app", app]
    if fixes:
        words += ["--fix", *fixes]
    if strategy != DEFAULT_STRATEGY:
        words += ["--strategy", strategy]
    if stuck_after_minutes != STUCK_AFTER_MIN:
        words += ["--stuck-after", f"{stuck_after_minutes:g}"]
    if apply:
        words += ["--apply", "--confirm", app]
    words += ["--out", out_dir]
    return shlex.join(words)

"""How things read in every report (HTML, Markdown, terminal): one time format, runnable commands."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pandas as pd

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def fmt_time(ts: Any, tz: str = "UTC") -> str:
    """One format everywhere: ``2025-10-02 16:18:40.123 UTC`` (to the millisecond, in ``tz``); "" when unknown."""
    if ts is None or (isinstance(ts, str) and not ts.strip()) or (not isinstance(ts, str) and pd.isna(ts)):
        return ""
    t = pd.Timestamp(ts)
    if pd.isna(t):
        return ""
    t = t.tz_localize("UTC") if t.tzinfo is None else t
    local = t.tz_convert(tz or "UTC")
    return f"{local.strftime(TIME_FORMAT)[:-3]} {local.tzname()}"


#: How a sentence names a time the platform did not report (a missing field, Go's zero time).
NOT_REPORTED = "(time not reported)"


def fmt_time_in_text(ts: Any, tz: str = "UTC") -> str:
    """:func:`fmt_time` for a sentence: an unknown time reads :data:`NOT_REPORTED`, never "?" or a blank."""
    return fmt_time(ts, tz) or NOT_REPORTED


def fmt_times(series: pd.Series, tz: str = "UTC") -> pd.Series:
    """:func:`fmt_time` over a column, vectorised (a busy day's timeline has 100,000 rows)."""
    local = series.dt.tz_convert(tz or "UTC")
    text: pd.Series = local.dt.strftime(TIME_FORMAT).str[:-3] + " " + local.dt.strftime("%Z")
    return text.where(series.notna(), "")


#: An instant as vyxops writes it into its own sentences (vyxops.core.timeutil.iso: RFC 3339, UTC, ms when non-zero).
_ISO_UTC = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z\b")


def in_zone(text: str, tz: str = "UTC") -> str:
    """vyxops's own sentence (a gap's reason, its span) with each RFC 3339 UTC instant told as :func:`fmt_time` in
    ``tz``; never for a platform's text (a log line), which is evidence as it was written."""
    return _ISO_UTC.sub(lambda m: fmt_time(m.group(0), tz), text)


def target_flags(target: str | None, scenario: str | None = None) -> list[str]:
    """The one place a target becomes command-line words: ``--target T`` unless the sandbox (the default), and
    ``--scenario S`` only on the sandbox (the CLI refuses it elsewhere). A report's label:
    :func:`vyxops.core.config.target_of_label` first."""
    if target and target != "sandbox":
        return ["--target", target]
    return ["--scenario", str(scenario)] if scenario else []


def vyxops_command(verb: str, app: str, target: str, scenario: str | None, out: str, *extra: str) -> str:
    """A complete ``vyxops`` command that runs as printed (target and scenario only when not the defaults)."""
    words = ["vyxops", verb, "--app", app, *target_flags(target, scenario), *extra, "--out", out]
    return " ".join(shlex.quote(w) for w in words)

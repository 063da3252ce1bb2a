"""One notion of time: every frame holds ``datetime64[ns, UTC]``.

Four formats meet in a timeline: RFC 3339 strings, ms integers (Fly events,
function times), µs integers (Supabase logs) and ns integers (Fly log cursors).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

UNITS = ("s", "ms", "us", "ns")


def to_utc(value: Any, unit: str | None = None) -> pd.Timestamp | None:
    """Convert one value to a UTC ``pd.Timestamp``; ``None``/NaN/"" give ``None``.

    Integers (and digit strings) need ``unit``; strings without a zone are UTC.
    """
    import pandas as pd  # here, not at the top: the CLI's input checks must stay light

    if value is None or value == "" or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
    if isinstance(value, datetime):
        ts = pd.Timestamp(value)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if unit not in UNITS:
            raise ValueError(f"numeric time {value!r} needs a unit, one of {UNITS}")
        return pd.Timestamp(int(value), unit=unit, tz="UTC")
    ts = pd.Timestamp(str(value))
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def series_to_utc(values: Any, unit: str | None = None) -> pd.Series:
    """Convert a sequence to a ``datetime64[ns, UTC]`` Series (``NaT`` for missing)."""
    import pandas as pd

    converted = [to_utc(v, unit) or pd.NaT for v in values]
    return pd.Series(pd.to_datetime(pd.Series(converted, dtype=object), utc=True), dtype="datetime64[ns, UTC]")


def iso(ts: Any) -> str:
    """Render a time as RFC 3339 UTC: ``2025-10-02T16:18:40Z``, with ms when non-zero.

    Integers are Unix ms. Plain ints and strings are handled without pandas, since
    the sandbox renders every time it stores through here.
    """
    if isinstance(ts, int) and not isinstance(ts, bool):
        py = datetime.fromtimestamp(ts // 1000, tz=timezone.utc).replace(microsecond=(ts % 1000) * 1000)
    else:
        t = to_utc(ts, "ms") if not isinstance(ts, str) else to_utc(ts)
        if t is None:
            return ""
        py = t.to_pydatetime().astimezone(timezone.utc)
    if py.microsecond // 1000:
        return py.strftime("%Y-%m-%dT%H:%M:%S.") + f"{py.microsecond // 1000:03d}Z"
    return py.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339_ms(text: str) -> int:
    """Unix ms of an RFC 3339 string (no zone means UTC), without pandas; ValueError if not a time."""
    value = text.strip().replace("z", "Z")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000) if dt.microsecond == 0 else int(dt.timestamp()) * 1000 + dt.microsecond // 1000


def to_ms(value: Any, unit: str | None = None) -> int:
    """Unix milliseconds of a time value (see :func:`to_utc`)."""
    t = to_utc(value, unit)
    if t is None:
        raise ValueError("no time given")
    return int(t.value // 1_000_000)

"""One notion of time: every frame holds ``datetime64[ns, UTC]``.

Four formats meet in a timeline: RFC 3339 strings, ms integers (Fly events,
function times), µs integers (Supabase logs) and ns integers (Fly log cursors).
A number is never read without its unit, and each unit comes from where the
number was read (the ``*_UNIT`` constants below, one home for them all).

Go's zero time is "not reported", not a date: ``encoding/json`` writes an unset
``time.Time`` as ``0001-01-01T00:00:00Z`` in every field without ``omitempty``
(fly-go @22d6e518 ``machine_types.go`` ``MachineExitEvent.ExitedAt time.Time `json:"exited_at"```;
``types.go`` ``Release.CreatedAt time.Time``). fly-go's ``Machine.CreatedAt``/``UpdatedAt`` are
strings with ``omitempty`` (left out when empty), yet whatever the server renders into them is read
by the same rule. It reads as missing (None, NaT), never as a year-1 instant (which
``datetime64[ns]`` cannot hold: pandas raised ``OutOfBoundsDatetime``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd
    from pandas.arrays import DatetimeArray

UNITS = ("s", "ms", "us", "ns")
TimeUnit = Literal["s", "ms", "us", "ns"]
_UNIT: dict[str, TimeUnit] = {"s": "s", "ms": "ms", "us": "us", "ns": "ns"}

#: Fly machine events' ``timestamp``: Unix ms (fly-go ``MachineEvent.Timestamp int64``, whose
#: ``Time()`` is ``time.Unix(Timestamp/1000, Timestamp%1000*1e6)``).
FLY_EVENT_UNIT = "ms"
#: An exit event's ``exited_at`` when it is a number: Unix ms (Fly's 2023 docs sample,
#: reference/fly/machines-get-with-exit-event.response.docs-2023-01.json: ``1653346105255``);
#: fly-go writes it as RFC 3339 (``time.Time``), or Go's zero time when unset.
FLY_EXITED_AT_UNIT = "ms"
#: Fly logs' ``next_token``: a Unix ns timestamp (Fly's logs API docs, PLATFORM.md).
FLY_LOG_CURSOR_UNIT = "ns"
#: Supabase log rows' ``timestamp`` when it is a number or a digit string: Unix µs. The logs
#: endpoint renders ``DateTime64`` as ``2026-06-22T09:34:06.215000`` (µs, UTC, no zone), but
#: Studio's own queries select ``toUnixTimestamp64Micro(timestamp)``, ``logs.all`` answered
#: integers (``1748960833498211``), and ClickHouse may quote 64-bit integers as strings. Studio
#: reads all of them: supabase/supabase @0116d668 ``apps/studio/components/interfaces/Settings/Logs/
#: Logs.utils.ts`` (``unixMicroToIsoTimestamp``: ``dayjs.utc(Number(unix) / 1000)``, and
#: ``isUnixMicro``: 16 digits), so vyxops does too.
SUPABASE_LOG_UNIT = "us"
#: The Supabase functions list's ``created_at``/``updated_at``: Unix ms (mgmt-functions-list.sample.json).
SUPABASE_FUNCTION_UNIT = "ms"

#: Go's zero ``time.Time`` as ``encoding/json`` writes it (RFC 3339, UTC).
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_GO_ZERO = datetime(1, 1, 1, tzinfo=timezone.utc)


def is_go_zero_time(value: object) -> bool:
    """Whether ``value`` is Go's zero time (``0001-01-01T00:00:00Z``, any spelling of that instant)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)) == _GO_ZERO
    if not isinstance(value, str) or not value.strip().startswith("0001-01-01"):
        return False
    text = value.strip().replace("z", "Z")
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return False
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)) == _GO_ZERO


def go_zero_count(values: Iterable[object]) -> int:
    """How many of ``values`` are Go's zero time (for a frame's note: times not reported)."""
    return sum(1 for v in values if is_go_zero_time(v))


def to_utc(value: Any, unit: str | None = None) -> pd.Timestamp | None:
    """Convert one value to a UTC ``pd.Timestamp``; ``None``/NaN/""/Go's zero time give ``None``.

    Integers (and digit strings) need ``unit``; strings without a zone are UTC.
    """
    import pandas as pd  # here, not at the top: the CLI's input checks must stay light

    if value is None or value == "" or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    if is_go_zero_time(value):
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


def time_array(values: list[Any], unit: str | None = None) -> DatetimeArray:
    """A ``datetime64[ns, UTC]`` array of ``values``, as :func:`to_utc` reads each, in a few vectorized calls.

    Numbers and digit strings are read in ``unit`` (a number without one is refused, never
    guessed); other strings are RFC 3339 (no zone means UTC, a space may stand for ``T``);
    missing values and Go's zero time are NaT. Cells of the three kinds may mix in one column.
    """
    import numpy as np
    import pandas as pd

    fast = _one_kind(values, unit)
    if fast is not None:
        return fast
    out = np.full(len(values), np.datetime64("NaT", "ns"))
    numbers: dict[int, float] = {}
    texts: dict[int, str] = {}
    for i, v in enumerate(values):
        if isinstance(v, str):
            text = v.strip()
            if text.lstrip("-").isdigit():
                numbers[i] = int(text)
            elif text and not is_go_zero_time(text):
                texts[i] = text
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            if v == v:  # not NaN
                numbers[i] = v
        elif v is not None and v is not pd.NaT and v is not pd.NA:
            t = to_utc(v, unit)
            if t is not None:
                out[i] = t.tz_convert(None).as_unit("ns").to_datetime64()
    if numbers:
        if unit is None or unit not in _UNIT:
            raise ValueError(f"numeric time {next(iter(numbers.values()))!r} needs a unit, one of {UNITS}")
        kind = "float64" if any(isinstance(v, float) for v in numbers.values()) else "int64"
        counted = pd.to_datetime(pd.Series(list(numbers.values()), dtype=kind), unit=_UNIT[unit])
        out[list(numbers)] = counted.dt.as_unit("ns").to_numpy()
    if texts:
        written = pd.to_datetime(list(texts.values()), utc=True, format="ISO8601")
        out[list(texts)] = written.tz_convert(None).as_unit("ns").to_numpy()
    return pd.array(out, dtype="datetime64[ns]").tz_localize("UTC")


def _one_kind(values: list[Any], unit: str | None) -> DatetimeArray | None:
    """:func:`time_array` in one pandas call, when every cell is text or a time (or missing) and none is digits
    or Go's zero time, or every cell is an integer (or missing); None when the cells need reading one by one."""
    import pandas as pd

    kinds = set(map(type, values)) - {type(None)}
    try:
        if kinds <= {str, pd.Timestamp, datetime}:
            # digits are not RFC 3339 (ValueError); Go's zero time parses, but not into ns (OutOfBoundsDatetime)
            written = pd.to_datetime(values, utc=True, format="ISO8601")
            return written.as_unit("ns").array
        if kinds <= {int} and unit is not None and unit in _UNIT:
            counted = pd.to_datetime(pd.Series(values, dtype="Int64"), unit=_UNIT[unit], utc=True)
            return counted.dt.as_unit("ns").array
    except (ValueError, OverflowError):
        return None
    return None


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

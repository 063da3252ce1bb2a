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

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
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
        if kinds <= {str} and len(values) <= _FEW:
            few = _written_few(values)
            if few is not None:
                return few
        if kinds <= {str, pd.Timestamp, datetime}:
            # digits are not RFC 3339 (ValueError); Go's zero time parses, but not into ns (OutOfBoundsDatetime)
            written = pd.to_datetime(values, utc=True, format="ISO8601")
            return written.as_unit("ns").array
        if kinds <= {int} and unit is not None and unit in _UNIT:
            fast = _counted(values, unit)
            if fast is not None:
                return fast
            counted = pd.to_datetime(pd.Series(values, dtype="Int64"), unit=_UNIT[unit], utc=True)
            return counted.dt.as_unit("ns").array
    except (ValueError, OverflowError):
        return None
    return None


_NS_PER = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
#: A column this short is read cell by cell in C (``datetime.fromisoformat``) faster than ``pd.to_datetime`` is
#: called once; a longer one the other way round.
_FEW = 64
#: RFC 3339 as the platforms write it, to µs, in years ``datetime64[ns]`` holds whole: what
#: ``datetime.fromisoformat`` reads exactly as ``pd.to_datetime(format="ISO8601")`` does.
_RFC3339_US = re.compile(r"(?:1[7-9]\d\d|2[01]\d\d)-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _written_few(values: list[str | None]) -> DatetimeArray | None:
    """A short column of RFC 3339 text (or None) read cell by cell; None when a cell is of another form."""
    import numpy as np
    import pandas as pd

    ns = np.full(len(values), np.iinfo(np.int64).min, dtype=np.int64)  # NaT
    for i, v in enumerate(values):
        if v is None:
            continue
        if _RFC3339_US.fullmatch(v) is None:
            return None
        try:
            delta = datetime.fromisoformat(v[:-1] + "+00:00" if v[-1] == "Z" else v) - _EPOCH
        except ValueError:  # a month 13, an hour 24: pandas' own error
            return None
        ns[i] = ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000
    return pd.DatetimeIndex(ns.view("M8[ns]"), tz="UTC").array


def _counted(values: list[int | None], unit: str) -> DatetimeArray | None:
    """Integers (or None) in ``unit`` as ns since the epoch in numpy, one multiplication, no per-cell pandas:
    ``pd.to_datetime`` costs ten times as much on a frame's few dozen cells. None when a count would leave
    ``datetime64[ns]`` (pandas' own conversion says why)."""
    import numpy as np
    import pandas as pd

    n, scale = len(values), _NS_PER[unit]
    try:
        counts = np.fromiter((0 if v is None else v for v in values), dtype=np.int64, count=n)
    except OverflowError:
        return None
    limit = np.iinfo(np.int64).max // scale
    if n and (int(counts.max()) > limit or int(counts.min()) < -limit):
        return None
    ns = counts * scale
    ns[np.fromiter((v is None for v in values), dtype=bool, count=n)] = np.iinfo(np.int64).min  # NaT
    return pd.DatetimeIndex(ns.view("M8[ns]"), tz="UTC").array


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


# --------------------------------------------------------------------------- time input (--since/--until)

#: What ``--since``/``--until`` accept, for an error's "allowed" list and the CLI's help.
TIME_FORMS = (
    "RFC 3339 (2025-10-02T16:18:40Z, 2025-10-02T18:18:40.120+02:00)",
    "the report's own format (2025-10-02 16:18:40.120 UTC, or the --tz zone's name: 2025-10-02 18:18:40.120 CEST)",
    "a time or date without a zone, read in --tz (2025-10-02 18:18, 2025-10-02)",
    "a duration before --until, or before now when --until is not given (30m, 2h, 3d, 1d12h)",
)
#: A duration: weeks, days, hours, minutes, seconds, largest first, each at most once (``1d12h``).
_DURATION = re.compile(r"(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")
_DURATION_MS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}
#: A date, and optionally a wall-clock time (seconds and fractions optional), then optionally a zone: ``Z``,
#: an offset (``+02:00``, ``+0200``, ``+02``: what ``strftime('%Z')`` names a zone that has no abbreviation),
#: or after a space a zone's name (``UTC``, ``CEST``) as the report prints it (vyxops.core.present.fmt_time).
_WRITTEN = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<clock>\d{2}:\d{2})(?::(?P<sec>\d{2})(?:[.,](?P<frac>\d{1,9}))?)?)?"
    r"(?:\s*(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)|\s+(?P<name>[A-Za-z]{2,6}))?"
)
_UTC_NAMES = frozenset({"UTC", "GMT", "Z"})


@dataclass(frozen=True)
class TimeInput:
    """One ``--since``/``--until`` value, read: an instant (``ms``) or a duration before an anchor (``ago_ms``).

    ``read_in`` is the zone a time given without one was read in (None when the text named its zone,
    or is a duration): the report says so (:meth:`note`).
    """

    text: str
    ms: int | None = None
    ago_ms: int | None = None
    read_in: str | None = None

    def at(self, anchor_ms: int) -> int:
        """Unix ms of this time: itself, or its duration before ``anchor_ms`` (--until, or the target's now)."""
        return self.ms if self.ms is not None else anchor_ms - (self.ago_ms or 0)

    def note(self, name: str, anchor: str) -> str:
        """How the report says this value was read, or "" when it named its own zone."""
        if self.ago_ms is not None:
            return f"{name} {self.text}: {self.text} before {anchor}"
        if self.read_in is not None:
            return f"{name} {self.text} was given without a zone: read in --tz {self.read_in}"
        return ""


def parse_time_input(text: str, tz: str = "UTC") -> TimeInput:
    """Read a ``--since``/``--until`` value: any of :data:`TIME_FORMS`; ValueError saying what is wrong.

    A time without a zone is read in ``tz``. A wall-clock time that ``tz`` skips (a spring-forward
    gap) or shows twice (the autumn hour) is refused, naming it: which instant was meant cannot
    be guessed. The report's own format names the zone (``CEST``/``CET``), so it is never ambiguous.
    """
    value = text.strip()
    if not value:
        raise ValueError("is empty")
    duration = _DURATION.fullmatch(value.lower())
    if duration and any(duration.groupdict().values()):
        ago = sum(int(n) * _DURATION_MS[k] for k, n in duration.groupdict().items() if n)
        if ago <= 0:
            raise ValueError("is a duration of zero")
        return TimeInput(value, ago_ms=ago)
    written = _WRITTEN.fullmatch(value)
    if written is None:
        raise ValueError("is not a time")
    wall = _wall_clock(written)
    offset, name = written["offset"], written["name"]
    if offset or (name and name.upper() in _UTC_NAMES):
        zone = timezone.utc if not offset or offset in "Zz" else _fixed_offset(offset)
        return TimeInput(value, ms=_ms(wall.replace(tzinfo=zone)))
    if name:
        return TimeInput(value, ms=_ms(_by_zone_name(wall, name, tz)))
    return TimeInput(value, ms=_ms(_local(wall, tz)), read_in=tz)


def _wall_clock(m: re.Match[str]) -> datetime:
    frac = (m["frac"] or "").ljust(6, "0")[:6]  # ns from a platform's RFC 3339: vyxops keeps µs at most
    clock = f"T{m['clock']}:{m['sec'] or '00'}.{frac}" if m["clock"] else "T00:00:00.000000"
    return datetime.fromisoformat(m["date"] + clock)


def _fixed_offset(offset: str) -> timezone:
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"has an offset {offset} that is not one")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _zone(tz: str) -> tzinfo:
    from zoneinfo import ZoneInfo

    return timezone.utc if tz in ("", "UTC") else ZoneInfo(tz)


def _local(wall: datetime, tz: str) -> datetime:
    """``wall`` read in ``tz``; ValueError naming a wall time ``tz`` skips or shows twice."""
    zone = _zone(tz)
    early, late = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if early.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != wall:
        raise ValueError(f"does not exist in {tz}: its clocks skip it (daylight saving time); give an offset")
    if early.utcoffset() != late.utcoffset():
        raise ValueError(
            f"happens twice in {tz} (clocks go back), at {_offset_text(early)} and {_offset_text(late)}: "
            "give the offset or the zone's name (as the report prints it)"
        )
    return early


def _by_zone_name(wall: datetime, name: str, tz: str) -> datetime:
    """``wall`` in ``tz`` where ``tz`` calls that moment ``name`` (``CEST`` or ``CET``: which side of a change)."""
    zone = _zone(tz)
    for fold in (0, 1):
        t = wall.replace(tzinfo=zone, fold=fold)
        if t.tzname() == name.upper() and t.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) == wall:
            return t
    raise ValueError(
        f"names the zone {name}, which is not what --tz {tz or 'UTC'} calls that time: "
        "pass the --tz the report was written with, or give an offset (+02:00)"
    )


def _offset_text(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _ms(t: datetime) -> int:
    utc = t.astimezone(timezone.utc)
    return int(utc.replace(microsecond=0).timestamp()) * 1000 + utc.microsecond // 1000

"""One notion of time: four source formats become the same UTC instant."""

from __future__ import annotations

import pandas as pd
import pytest

from vyxops.timeutil import iso, parse_rfc3339_ms, series_to_utc, to_ms, to_utc

INSTANT = pd.Timestamp("2025-10-02T16:18:44.130Z")


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        ("2025-10-02T16:18:44.130Z", None),
        ("2025-10-02T18:18:44.130+02:00", None),
        ("2025-10-02T16:18:44.130000", None),  # ClickHouse logs: µs, no zone, UTC
        (1759421924130, "ms"),  # Fly events, function times
        (1759421924130000, "us"),  # Supabase log timestamps
        (1759421924130000000, "ns"),  # Fly log cursors
        ("1759421924130", "ms"),  # digits as a string
    ],
)
def test_every_format_becomes_the_same_utc_instant(value: object, unit: str | None) -> None:
    """RFC 3339 (any offset or none), ms, µs and ns all convert to one UTC timestamp."""
    t = to_utc(value, unit)
    assert t == INSTANT and str(t.tz) == "UTC"


def test_numbers_need_a_unit_and_missing_values_are_none() -> None:
    """A bare number without a unit is refused; None and '' are missing, not epoch."""
    with pytest.raises(ValueError, match="unit"):
        to_utc(1759421924130)
    assert to_utc(None) is None and to_utc("") is None


def test_series_are_datetime64_ns_utc_with_nat_for_missing() -> None:
    """series_to_utc gives datetime64[ns, UTC] and NaT where a value is missing."""
    s = series_to_utc([1759421924130, None], unit="ms")
    assert str(s.dtype) == "datetime64[ns, UTC]" and s.iloc[0] == INSTANT and pd.isna(s.iloc[1])


def test_iso_renders_ms_only_when_present_and_round_trips() -> None:
    """iso() renders Z times with ms only when non-zero, and parses back to the same ms."""
    assert iso(1759421924130) == "2025-10-02T16:18:44.130Z"
    assert iso(1759421924000) == "2025-10-02T16:18:44Z"
    assert iso(INSTANT) == "2025-10-02T16:18:44.130Z"
    assert parse_rfc3339_ms(iso(1759421924130)) == 1759421924130 == to_ms("2025-10-02T16:18:44.130Z")

"""One notion of time: four source formats become the same UTC instant."""

from __future__ import annotations

import pandas as pd
import pytest

from vyxops.core.timeutil import SUPABASE_LOG_UNIT, iso, parse_rfc3339_ms, time_array, to_ms, to_utc

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


def test_a_time_array_is_datetime64_ns_utc_with_nat_for_missing() -> None:
    """time_array (what every frame's time column is made with) gives datetime64[ns, UTC] and NaT where a value
    is missing."""
    a = time_array([1759421924130, None], unit="ms")
    assert str(a.dtype) == "datetime64[ns, UTC]" and a[0] == INSTANT and pd.isna(a[1])


def test_iso_renders_ms_only_when_present_and_round_trips() -> None:
    """iso() renders Z times with ms only when non-zero, and parses back to the same ms."""
    assert iso(1759421924130) == "2025-10-02T16:18:44.130Z"
    assert iso(1759421924000) == "2025-10-02T16:18:44Z"
    assert iso(INSTANT) == "2025-10-02T16:18:44.130Z"
    assert parse_rfc3339_ms(iso(1759421924130)) == 1759421924130 == to_ms("2025-10-02T16:18:44.130Z")


@pytest.mark.parametrize("zero", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00+00:00"])
def test_gos_zero_time_is_not_reported_not_a_date(zero: str) -> None:
    """fly-go writes an unset time.Time (MachineExitEvent.ExitedAt) as 0001-01-01T00:00:00Z: no time, no crash."""
    assert to_utc(zero) is None
    assert pd.isna(time_array([zero]).tolist()[0])


def test_a_time_array_reads_supabase_log_timestamps_in_every_shape_the_endpoint_sends() -> None:
    """The logs endpoint's text, µs integers and µs digit strings (Studio's isUnixMicro) are one instant each."""
    text, us = "2025-10-02T16:18:44.130000", 1759421924130000
    cells = [text, "2025-10-02 16:18:44.130000", us, str(us), None, "0001-01-01T00:00:00Z"]
    got = time_array(cells, SUPABASE_LOG_UNIT)
    assert str(got.dtype) == "datetime64[ns, UTC]"
    assert got.tolist()[:4] == [INSTANT] * 4 and all(pd.isna(t) for t in got.tolist()[4:])


def test_a_time_array_refuses_a_number_without_its_unit() -> None:
    """A bare integer is never guessed: µs read as ns would be January 1970."""
    with pytest.raises(ValueError, match="unit"):
        time_array([1759421924130000])


# --------------------------------------------------------------------------- time input (issue 20)
from vyxops.core.present import fmt_time  # noqa: E402
from vyxops.core.timeutil import parse_time_input  # noqa: E402

SHOWN = pd.Timestamp("2025-10-02T16:18:40.120Z")
SHOWN_MS = int(SHOWN.value // 1_000_000)


@pytest.mark.parametrize(
    "tz", ["UTC", "Europe/Paris", "Asia/Tokyo", "America/Sao_Paulo", "Asia/Kolkata", "Europe/Istanbul"]
)
@pytest.mark.parametrize("at", [SHOWN, pd.Timestamp("2025-10-26T00:30:00.5Z"), pd.Timestamp("2025-10-26T01:30:00Z")])
def test_every_time_the_report_prints_reads_back_to_the_same_instant(tz: str, at: pd.Timestamp) -> None:
    """fmt_time's text (a zone's abbreviation, a bare offset like '-03', or UTC) parses back with the same --tz,
    including Paris's autumn hour, which happens twice and is told apart by CEST/CET."""
    shown = fmt_time(at, tz)
    assert parse_time_input(shown, tz).ms == int(at.value // 1_000_000), shown


@pytest.mark.parametrize(
    "text",
    [
        "2025-10-02T16:18:40.120Z",
        "2025-10-02t16:18:40.120z",
        "2025-10-02T18:18:40.12+02:00",
        "2025-10-02T16:18:40.120000999Z",
        "2025-10-02 16:18:40.120 UTC",
        "2025-10-02 18:18:40.120 CEST",
    ],
)
def test_rfc_3339_and_the_report_format_name_their_zone(text: str) -> None:
    given = parse_time_input(text, "Europe/Paris")
    assert given.ms == SHOWN_MS and given.read_in is None


def test_a_zone_less_time_or_date_is_read_in_tz_and_says_so() -> None:
    given = parse_time_input("2025-10-02 18:18:40.120", "Europe/Paris")
    assert given.ms == SHOWN_MS and given.read_in == "Europe/Paris"
    assert "read in --tz Europe/Paris" in given.note("--since", "--until")
    assert parse_time_input("2025-10-02", "Asia/Tokyo").ms == parse_rfc3339_ms("2025-10-01T15:00:00Z")
    assert parse_time_input("2025-10-02T16:18", "UTC").ms == parse_rfc3339_ms("2025-10-02T16:18:00Z")


@pytest.mark.parametrize(("text", "ms"), [("30m", 1_800_000), ("2h", 7_200_000), ("3d", 259_200_000),
                                          ("1d12h", 129_600_000), ("1w", 604_800_000), ("90s", 90_000)])  # fmt: skip
def test_a_duration_counts_back_from_its_anchor(text: str, ms: int) -> None:
    given = parse_time_input(text)
    assert given.ms is None and given.at(SHOWN_MS) == SHOWN_MS - ms
    assert given.note("--since", "--until") == f"--since {text}: {text} before --until"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2025-03-30 02:30", "does not exist in Europe/Paris"),  # spring forward skips 02:00-03:00
        ("2025-10-26 02:30", "happens twice in Europe/Paris"),  # autumn: 02:30 CEST, then 02:30 CET
        ("2025-10-02 16:18 JST", "not what --tz Europe/Paris calls"),
        ("0h", "zero"),
        ("2h30", "not a time"),
        ("now", "not a time"),
        ("yesterday", "not a time"),
        ("2025-10-02T16:18:40+25:00", "offset"),
    ],
)
def test_a_time_that_cannot_be_read_one_way_is_refused_naming_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_time_input(text, "Europe/Paris")

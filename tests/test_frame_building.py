"""Building frames from cells: the fast conversions give what pandas' own conversion gives, the columnar
machine_rows path gives what a record per row gives, and no credential reaches a frame through either."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from vyxops.core.contract import SEED
from vyxops.core.errors import register_secret
from vyxops.fetch import frames

CREDENTIAL = "pg-pass-" + "q7Zx2" * 4  # registered below; long enough to be searched encoded too


def _event(i: int, **given: object) -> dict[str, object]:
    return {"app": "a", "machine_id": "m", "event_id": f"e{i}", **given}


@pytest.mark.parametrize(
    ("column", "cells"),
    [
        ("exit_code", [1, None, 137, -1, 0]),
        ("exit_code", [1.0, None, 2]),  # a float that is a whole number, as JSON may carry it
        ("oom_killed", [True, None, False, True, None]),
        ("time", [1_759_411_120_000, None, 0, -5, 1_759_411_120_001]),
        ("time", [2**62, 1]),  # past datetime64[ns] in ms: pandas' own error
        ("error", ["boom", None, "", "tab\there", "x" * 300]),
        ("error", [7, None, "seven"]),  # not text: the column holds it as text
    ],
)
def test_typed_columns_hold_what_pandas_conversion_gives(column: str, cells: list[object]) -> None:
    records = [_event(i, **{column: v}) for i, v in enumerate(cells)]
    dtype = frames.SCHEMAS["machine_events"][column]
    try:
        if dtype == frames.TIME:
            want = pd.to_datetime(pd.Series(cells, dtype="Int64"), unit="ms", utc=True).dt.as_unit("ns").array
        else:
            want = pd.array(cells, dtype=object).astype(dtype)
    except (ValueError, OverflowError) as exc:
        with pytest.raises(type(exc)):
            frames.make_frame("machine_events", records, units={"time": "ms"})
        return
    got = frames.make_frame("machine_events", records, units={"time": "ms"})
    assert str(got[column].dtype) == dtype
    pd.testing.assert_extension_array_equal(got[column].array, want)


def _rows(n: int) -> list[dict[str, object]]:
    statuses = ["starting", "running", "stopped", "failed", "mystery", None]
    return [
        {
            "id": str(uuid.UUID(int=i * 7919 + 1)),
            "user_id": f"u-{i % 17}",
            "machine_id": f"{i:014x}",
            "app": "vyx-app",
            "region": None if i % 5 == 0 else "iad",
            "image": "registry.fly.io/vyx-app:stub",
            "status": statuses[i % len(statuses)],
            "created_at": f"2025-10-02T16:{i % 60:02d}:40.5+00:00",
            "updated_at": None if i % 3 == 0 else f"2025-10-02T17:{i % 60:02d}:41+00:00",
            "extra": i,
        }
        for i in range(n)
    ]


def test_the_columnar_rows_frame_is_the_frame_of_one_record_per_row() -> None:
    rows = _rows(200)
    rows[3]["user_id"] = 42  # a number where text was expected: read as its text
    named = SEED.table.columns.named()
    records = [frames.row_record(r, named, SEED.table.name, SEED.status.role) for r in rows]
    want = frames.make_frame("machine_rows", records, source=f"supabase GET /rest/v1/{SEED.table.name}")
    got = frames.rows_frame(rows, SEED)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.attrs == want.attrs
    assert got.loc[3, "user_id"] == "42"


def test_a_credential_in_a_key_or_beside_keys_never_reaches_the_frame() -> None:
    """Keys shaped as UUIDs are searched for a credential as is; every other cell as is, escaped or encoded."""
    register_secret(CREDENTIAL)
    rows = _rows(50)
    rows[4]["id"] = CREDENTIAL[:8] + str(rows[4]["id"])[8:]  # not a UUID any more: searched in full
    rows[7]["image"] = f"registry.fly.io/app:{CREDENTIAL}"
    rows[9]["user_id"] = "u-" + CREDENTIAL.encode().hex()
    frame = frames.rows_frame(rows, SEED)
    text = frame.astype(str).to_string()
    assert CREDENTIAL not in text and CREDENTIAL.encode().hex() not in text
    assert frame.loc[7, "image"] != rows[7]["image"] and frame.loc[9, "user_id"] != rows[9]["user_id"]
    assert frame.loc[0, "id"] == rows[0]["id"]  # an ordinary key is kept as sent


def test_a_uuid_that_holds_a_credential_as_is_is_masked() -> None:
    short = "5f3a9c1e7b2d"  # hex, so it can be a UUID's last group
    register_secret(short)
    key = f"00000000-0000-4000-8000-{short}"
    frame = frames.rows_frame([{**_rows(1)[0], "id": key}], SEED)
    assert short not in str(frame.loc[0, "id"])


@pytest.mark.parametrize(
    "cells",
    [
        ["2025-10-02T16:18:40.5Z", None, "2025-10-02T16:18:40+00:00", "1970-01-01T00:00:00-07:00"],
        ["2025-10-02T18:18:40.123456+02:00", "1999-12-31T23:59:59.9Z"],
        ["2025-10-02T16:18:40.123456789Z", "2025-10-02T16:18:40Z"],  # ns: read by pandas
        ["2025-10-02 16:18:40Z", None],  # a space for T: read by pandas
    ],
)
def test_text_times_hold_what_pandas_reads(cells: list[str | None]) -> None:
    got = frames.make_frame("machine_events", [_event(i, exited_at=v) for i, v in enumerate(cells)])
    want = pd.to_datetime(cells, utc=True, format="ISO8601").as_unit("ns").array
    pd.testing.assert_extension_array_equal(got["exited_at"].array, want)

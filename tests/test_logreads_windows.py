"""Reading a source's logs page by page asks each page for a window that ends at the oldest row read so far.

Counted on the sandbox's logs endpoint (rows handed to the queries), not timed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from vyxops.fetch.frames import _FN_LOG_COLUMNS
from vyxops.fetch.logreads import read_source
from vyxops_sandbox import logsql


def test_later_pages_ask_for_the_window_older_than_what_was_read_not_the_whole_part() -> None:
    base_us = 1_760_000_040_000_000
    rows = [
        {"id": f"r{i:06d}", "timestamp_us": base_us + i * 700_000, "event_message": "x", "source": "function_logs"}
        for i in range(6_000)  # 70 minutes, six pages, read in slices
    ]
    now_ms = base_us // 1000 + 6_000 * 700

    def query(sql: str, start: str, end: str) -> list[dict[str, Any]]:
        return logsql.run_logs_query(rows, sql, start, end, now_ms)

    before = logsql.TAKEN[0]
    since, until = (pd.Timestamp(ms, unit="ms", tz="UTC") for ms in (base_us // 1000, now_ms))
    got, complete = read_source(query, _FN_LOG_COLUMNS["function_logs"], "function_logs", since, until, 200)
    assert complete and sorted(r["id"] for r in got) == [r["id"] for r in rows]
    # Asked for the part's whole window at every page, the endpoint was handed 3.1 rows for every row read;
    # ending each later page's window at the oldest row read so far, 2.3.
    assert logsql.TAKEN[0] - before <= 2.5 * len(rows)

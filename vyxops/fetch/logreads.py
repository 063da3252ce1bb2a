"""Read one Supabase log source over a window: 24 h chunks, keyset pages, and slices side by side.

The logs endpoint (``GET /v1/projects/{ref}/analytics/endpoints/logs``) runs one SQL query
per request and refuses a window over 24 h; it rounds each bound of its window parameters
to the minute (its OpenAPI text), so queries send them widened to whole minutes and keep
the exact bounds in the SQL. Rows come newest first, a page of :data:`LOG_PAGE` at a time,
and the next page starts strictly after the oldest row read (its timestamp, then its id),
as Supabase advises, so rows that share a microsecond are neither skipped nor read twice.
A row's ``timestamp`` is read by :func:`row_time`: text, or µs as a number or digit string
(:data:`vyxops.core.timeutil.SUPABASE_LOG_UNIT`), never as ns (which put the keyset in 1970).

Pages in a row are round trips in a row: a busy day's three pages took three. The chunks
are read side by side, and when a chunk's first page is full, the rest of it is cut into
slices by time, as many as the first page's density says it holds pages (at most
:data:`LOG_SLICES`), and the slices are read side by side, each paging on its own. The rows
come back in the order one query after another would have read them (newest first),
whatever order the answers arrive in.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from vyxops.core.timeutil import SUPABASE_LOG_UNIT, to_utc
from vyxops.fetch import fanout

LOG_PAGE = 1000
LOG_WINDOW = pd.Timedelta(hours=24)
#: At most this many slices of one chunk are read at once.
LOG_SLICES = 4

Query = Callable[[str, str, str], list[dict[str, Any]]]  # (sql, window start, window end) -> rows


@dataclass
class _Queries:
    """What is left of a read's query allowance, shared by its slices."""

    left: int
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> bool:
        with self._lock:
            self.left -= 1
            return self.left >= 0


def read_source(
    query: Query, columns: str, source: str, since: pd.Timestamp, until: pd.Timestamp, max_queries: int
) -> tuple[list[dict[str, Any]], bool]:
    """``source``'s rows in [since, until], newest first, and whether all were read in ``max_queries``.

    The window's 24 h chunks are read side by side (a day's window is two: widened to whole
    minutes, a day ends a sliver short of it), each as :func:`_read_chunk` reads it."""
    queries = _Queries(max_queries)
    chunks = []
    chunk_end, upper = until, f"timestamp <= '{ch_time(until)}'"
    while chunk_end > since:
        chunk_start = max(since, chunk_end.ceil("min") - LOG_WINDOW)
        lower = f"timestamp >= '{ch_time(chunk_start)}'"
        chunks.append(_Part(query, columns, source, chunk_start, chunk_end, lower, upper))
        # the next chunk ends strictly before this one's start, which this one reads (>=)
        chunk_end, upper = chunk_start, f"timestamp < '{ch_time(chunk_start)}'"
    got = fanout.map_ordered(lambda chunk: _read_chunk(chunk, queries), chunks)
    return [row for rows, _ in got for row in rows], all(complete for _, complete in got)


def _read_chunk(chunk: _Part, queries: _Queries) -> tuple[list[dict[str, Any]], bool]:
    """A chunk's rows, newest first: its first page, then, when that was full, the rest in slices."""
    rows, full, complete = chunk.page(queries)
    if full and complete:
        rest, complete = _rest_of_chunk(chunk, rows, queries)
        rows = rows + rest
    return rows, complete


@dataclass
class _Part:
    """A part of the window, its SQL bounds and the window sent for it; read page after page."""

    query: Query
    columns: str
    source: str
    start: pd.Timestamp
    end: pd.Timestamp
    lower: str  # SQL: the part's older side
    upper: str  # SQL: its newer side

    def page(self, queries: _Queries) -> tuple[list[dict[str, Any]], bool, bool]:
        """The part's newest page: (rows, whether it was full, whether the allowance held)."""
        if not queries.take():
            return [], False, False
        sql = (
            f"select {self.columns} from logs where source = '{self.source}' "
            f"and {self.lower} and {self.upper} order by timestamp desc, id desc limit {LOG_PAGE}"
        )
        rows = self.query(sql, z_time(self.start.floor("min")), z_time(self.end.ceil("min")))
        return rows, len(rows) >= LOG_PAGE, True

    def after(self, rows: list[dict[str, Any]]) -> _Part:
        """What of this part is older than ``rows`` (a page it answered): its keyset continuation.

        The window sent ends at the oldest row read (the minute after it, as sent): a page
        asked for the whole part's window made the endpoint scan every newer row again, so
        a part of n pages cost n² / 2 pages of scanning.
        """
        when = row_time(rows[-1])
        oldest = ch_time(when)
        last_id = str(rows[-1]["id"]).replace("'", "''")
        upper = f"(timestamp < '{oldest}' or (timestamp = '{oldest}' and id < '{last_id}'))"
        return replace(self, upper=upper, end=min(self.end, when))

    def all_pages(self, queries: _Queries) -> tuple[list[dict[str, Any]], bool]:
        """Every row of the part, page after page; whether the allowance held."""
        read: list[dict[str, Any]] = []
        part = self
        while True:
            rows, full, complete = part.page(queries)
            read += rows
            if not full or not complete:
                return read, complete
            part = part.after(rows)


def _rest_of_chunk(part: _Part, first: list[dict[str, Any]], queries: _Queries) -> tuple[list[dict[str, Any]], bool]:
    """The chunk's rows older than its full first page, read in time slices side by side."""
    rest = part.after(first)
    newest, oldest = row_time(first[0]), row_time(first[-1])
    left, span = oldest - part.start, newest - oldest
    guess = LOG_SLICES if span <= pd.Timedelta(0) else math.ceil(left / span)  # pages the rest may hold
    slices = max(1, min(LOG_SLICES, guess))
    starts = [part.start + left * k / slices for k in range(slices)]  # oldest slice first
    cuts = [ch_time(start) for start in starts[1:]]  # one text per boundary: both sides read it alike
    lowers = [part.lower, *(f"timestamp >= '{cut}'" for cut in cuts)]
    uppers = [*(f"timestamp < '{cut}'" for cut in cuts), rest.upper]
    ends = [*starts[1:], part.end]
    parts = [
        replace(part, start=start, end=end, lower=lower, upper=upper)
        for start, end, lower, upper in zip(starts, ends, lowers, uppers)
    ][::-1]  # newest first: the order the rows are read in
    got = fanout.map_ordered(lambda p: p.all_pages(queries), parts)
    return [row for rows, _ in got for row in rows], all(complete for _, complete in got)


def row_time(row: dict[str, Any]) -> pd.Timestamp:
    """A log row's ``timestamp``: ``2026-06-22T09:34:06.215000`` (UTC), or Unix µs as a number or digits.

    The rows are ordered by it, so every row has one; a row without one is refused (ValueError).
    """
    ts = to_utc(row.get("timestamp"), SUPABASE_LOG_UNIT)
    if ts is None:
        raise ValueError(f"log row {row.get('id')!r} has no timestamp")
    return ts


def ch_time(ts: pd.Timestamp) -> str:
    """A time as the logs' SQL compares it (microseconds, UTC)."""
    return ts.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S.%f")


def z_time(ts: pd.Timestamp) -> str:
    """A time as the endpoint's window parameters take it (RFC 3339, UTC)."""
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")

"""Fly's app logs read over the whole window, from its start forward (issue 18).

Fly's docs (superfly/docs monitoring/logs-api-options.mdx) say ``next_token`` is a ns Unix
timestamp that "Returns logs after this time, used either as a paging cursor or to backfill
from a specific moment", and that the API keeps about 7 days. SPEC.md: Fly's app logs
corroborate; a gap there has ``"decides": false`` and never makes a verdict inconclusive.

The stories of the issue's bar come out ``healthy`` with nothing missing: a busy day with
hundreds of log lines, a quiet app on a real-time clock (a served sandbox), and a 429 storm.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from vyxops.analysis.audit import run_audit
from vyxops.analysis.investigate import Investigation, investigate
from vyxops.analysis.sources import coverage
from vyxops.fetch import frames
from vyxops.fetch.session import open_session
from vyxops.fetch.targets import SANDBOX_URL_ENV
from vyxops.testing.fleet import generate_fleet
from vyxops_sandbox.faults import FaultRule, Faults
from vyxops_sandbox.server import make_server
from vyxops_sandbox.testing import world_of
from vyxops_sandbox.world import World

HERE = Path(__file__).parent / "scenarios"
BUSY = "bakeries-busy-healthy-day-many-log-lines"
NOW = pd.Timestamp("2026-03-11T23:30:00Z")
S = 1_000_000_000


# --------------------------------------------------------------------------- the fetcher, on a fake logs API


class FakeLogsApi:
    """The logs endpoint as Fly documents it: 100 lines after the token, oldest first; ``meta.next_token``
    the last line's ns (or the token asked with, on an empty page); lines older than ~7 days are gone."""

    def __init__(self, times_ns: list[int], now: pd.Timestamp) -> None:
        self.lines = sorted(times_ns)
        self.now_ns = now.value
        self.tokens: list[str | None] = []

    def logs_page(
        self, app: str, *, next_token: str | None = None, instance: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.tokens.append(next_token)
        kept = [t for t in self.lines if t >= self.now_ns - frames.FLY_LOG_RETENTION.value]
        page = [t for t in kept if next_token is not None and t > int(next_token)][: frames.FLY_LOG_PAGE]
        entries = [{"timestamp": pd.Timestamp(t, unit="ns", tz="UTC").isoformat(), "message": f"at {t}"} for t in page]
        return entries, str(page[-1]) if page else next_token


class NoClock:
    """A session whose window's end is given: reading the clock again would measure against a later time."""

    def __init__(self, fly: FakeLogsApi) -> None:
        self.fly = fly

    def now(self) -> pd.Timestamp:
        raise AssertionError("the window's end was fixed: the fetcher must not read the clock again")


def test_a_window_longer_than_the_line_budget_leaves_a_gap_that_does_not_decide() -> None:
    """A line a second for an hour, a budget of 300 lines: the first 300 are read, from the window's start,
    and the rest of the window is a fly.logs gap with decides: false, from the last line read to the end."""
    since = NOW - pd.Timedelta(hours=1)
    api = FakeLogsApi([since.value + i * S for i in range(3600)], NOW)
    logs = frames.fetch_fly_logs(NoClock(api), "oven-app", since=since, until=NOW, budget=300)
    assert len(logs) == 300 and logs["time"].iloc[0] == since and len(api.tokens) == 3
    [gap] = [g.as_json() for g in coverage("fly_logs", logs)]
    assert gap["source"] == "fly.logs" and gap["decides"] is False
    assert (gap["since"], gap["until"]) == ("2026-03-11T22:34:59Z", "2026-03-11T23:30:00Z")


def test_a_window_reaching_past_retention_has_a_gap_for_exactly_the_part_before_it() -> None:
    """A ten-day window ending now: the three days before the API's ~7 days, measured back from the window's
    end, are the gap; the read backfills from the retention's edge and every line the API keeps is read."""
    since, kept_from = NOW - pd.Timedelta(days=10), NOW - pd.Timedelta(days=7)
    api = FakeLogsApi([(since + pd.Timedelta(hours=h)).value for h in range(0, 240, 2)], NOW)
    logs = frames.fetch_fly_logs(NoClock(api), "oven-app", since=since, until=NOW)
    [gap] = [g.as_json() for g in coverage("fly_logs", logs)]
    assert (gap["source"], gap["decides"]) == ("fly.logs", False)
    assert (gap["since"], gap["until"]) == ("2026-03-01T23:30:00Z", "2026-03-04T23:30:00Z")
    assert api.tokens[0] == str(kept_from.value - 1)  # "after this time": a line at the edge is read too
    assert logs["time"].min() == kept_from and len(logs) == 84


def test_retention_is_counted_back_from_when_the_api_is_asked_not_from_the_windows_end() -> None:
    """A postmortem of a window that ended six days ago: the API keeps ~7 days before it is asked (the run's
    clock, read once), so the window's first two days are gone: a gap, not an empty past read as quiet."""
    since, until, kept_from = NOW - pd.Timedelta(days=9), NOW - pd.Timedelta(days=6), NOW - pd.Timedelta(days=7)
    api = FakeLogsApi([(since + pd.Timedelta(hours=h)).value for h in range(0, 72, 2)], NOW)
    logs = frames.fetch_fly_logs(NoClock(api), "oven-app", since=since, until=until, asked_at=NOW)
    [gap] = [g.as_json() for g in coverage("fly_logs", logs)]
    assert (gap["source"], gap["decides"]) == ("fly.logs", False)
    assert (gap["since"], gap["until"]) == ("2026-03-02T23:30:00Z", "2026-03-04T23:30:00Z")
    assert api.tokens[0] == str(kept_from.value - 1) and logs["time"].min() == kept_from


def test_a_window_inside_retention_and_the_budget_is_read_whole_with_no_gap() -> None:
    """350 lines, more than three pages: all of them, oldest first, the first one at the window's start."""
    since = NOW - pd.Timedelta(hours=2)
    api = FakeLogsApi([since.value + i * 20 * S for i in range(350)], NOW)
    logs = frames.fetch_fly_logs(NoClock(api), "oven-app", since=since, until=NOW)
    assert logs.attrs["gaps"] == [] and logs.attrs["complete"]
    assert len(logs) == 350 and logs["time"].is_monotonic_increasing and logs["time"].iloc[0] == since


def test_a_token_that_stops_moving_ends_the_read_with_a_gap_not_a_loop() -> None:
    """An answer whose next_token is the one asked with, though it held lines: the read stops there, and the
    rest of the window is a non-deciding gap from its last line, not an endless loop nor a silent end."""

    class Stuck(FakeLogsApi):
        def logs_page(self, app: str, **kw: Any) -> tuple[list[dict[str, Any]], str | None]:
            self.tokens.append(kw.get("next_token"))
            return [{"timestamp": "2026-03-11T23:00:00Z", "message": "same"}], kw.get("next_token")

    api = Stuck([], NOW)
    logs = frames.fetch_fly_logs(NoClock(api), "oven-app", since=NOW - pd.Timedelta(hours=1), until=NOW)
    [gap] = [g.as_json() for g in coverage("fly_logs", logs)]
    assert len(api.tokens) == 1 and (gap["since"], gap["until"]) == ("2026-03-11T23:00:00Z", "2026-03-11T23:30:00Z")
    assert "stopped moving" in gap["why"] and gap["decides"] is False


def test_without_a_window_start_the_fetch_is_the_apis_newest_page() -> None:
    """No ``since``: one request without a token (the API's default, its newest lines), no gap claimed."""

    class Default(FakeLogsApi):
        def logs_page(self, app: str, **kw: Any) -> tuple[list[dict[str, Any]], str | None]:
            self.tokens.append(kw.get("next_token"))
            return [{"timestamp": "2026-03-11T23:00:00Z", "message": "newest"}], "1"

    api = Default([], NOW)
    logs = frames.fetch_fly_logs(NoClock(api), "oven-app")
    assert api.tokens == [None] and logs["message"].tolist() == ["newest"] and logs.attrs["gaps"] == []


# --------------------------------------------------------------------------- the sandbox's logs endpoint


def _ns(entries: list[dict[str, Any]]) -> list[int]:
    return [pd.Timestamp(e["timestamp"]).value for e in entries]


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[Any]:
    with open_session("sandbox", scenario=HERE / f"{BUSY}.yaml", sandbox_dir=tmp_path / "sb") as s:
        yield s


def test_the_sandbox_backfills_from_any_moment_as_the_docs_describe(busy: Any) -> None:
    """A chosen ns timestamp answers the 100 lines after it, oldest first; meta.next_token pages on to the rest."""
    lines = sorted(e["ts_ns"] for e in world_of(busy).app("oven-app")["logs"])
    first, token = busy.fly.logs_page("oven-app", next_token=str(lines[10]))
    assert _ns(first) == lines[11:111]  # strictly after the token
    second, _ = busy.fly.logs_page("oven-app", next_token=token)
    assert _ns(second) == lines[111:211]


def test_the_sandbox_serves_nothing_older_than_its_retention_and_an_empty_page_keeps_the_token(busy: Any) -> None:
    """A token ten days back answers from the retention's edge (a line eight days old is gone); a page with
    nothing after the token answers no lines and that same token as meta.next_token."""
    world = world_of(busy)
    app = world.app("oven-app")
    old_ns = (world.now_ms - 8 * 24 * 3600 * 1000) * 1_000_000
    app["logs"].append(
        {"ts_ns": old_ns, "message": "eight days ago", "level": "info", "instance": "i", "region": "sjc"}
    )
    page, _ = busy.fly.logs_page("oven-app", next_token=str(old_ns - 2 * 24 * 3600 * S))
    assert page and "eight days ago" not in [e["message"] for e in page]
    assert _ns(page)[0] == min(e["ts_ns"] for e in app["logs"] if e["ts_ns"] != old_ns)
    newest = str(max(e["ts_ns"] for e in app["logs"]))
    assert busy.fly.logs_page("oven-app", next_token=newest) == ([], newest)


# --------------------------------------------------------------------------- the stories of the bar


def _assert_whole_and_healthy(inv: Investigation) -> None:
    doc = inv.document
    assert (doc["verdict"], doc["complete"], doc["gaps"]) == ("healthy", True, []), doc["summary"]


def test_a_busy_healthy_day_with_hundreds_of_log_lines_is_healthy_and_read_whole(tmp_path: Path) -> None:
    """Hundreds of Fly log lines in the window (the first page holds 100): healthy, no gap, every line read."""
    with open_session("sandbox", scenario=HERE / f"{BUSY}.yaml", sandbox_dir=tmp_path / "sb") as s:
        start, end = s.now() - pd.Timedelta(hours=24), s.now()
        in_window = [e for e in world_of(s).app("oven-app")["logs"] if start.value <= e["ts_ns"] <= end.value]
        inv = investigate(s, "oven-app")
    assert len(in_window) > 3 * frames.FLY_LOG_PAGE
    _assert_whole_and_healthy(inv)
    read = inv.evidence.fly_logs
    assert len(read) == len(in_window)
    assert read["time"].min().value == min(e["ts_ns"] for e in in_window)


@pytest.fixture
def served_realtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`vyxops sandbox serve`'s server (real time: wall time moves its clock), named in the environment."""
    server = make_server(World.load("healthy", tmp_path / "served"), port=0, realtime=True, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    monkeypatch.setenv(SANDBOX_URL_ENV, f"http://{host!s}:{port}")
    yield
    server.shutdown()
    server.server_close()


def test_a_quiet_healthy_app_on_a_real_time_clock_is_healthy_with_no_fly_logs_gap(served_realtime: None) -> None:
    """On a real-time clock the milliseconds between fixing the window's end and reading the logs are no gap."""
    with open_session("sandbox") as session:
        assert session.opened_by == "sandbox-served"
        inv = investigate(session, "vyx-app")
    _assert_whole_and_healthy(inv)
    assert len(inv.evidence.fly_logs) > 0


def test_a_429_storm_on_flys_apis_leaves_healthy_apps_healthy(tmp_path: Path) -> None:
    """The Fly logs and Machines APIs answer 429 (Retry-After 2 s) to their first calls: the retry waits move
    the clock past the window's end, yet every app of a healthy fleet's audit stays healthy, with no gap."""
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(generate_fleet(apps=3, machines_per_day=8, days=1, seed=5, failure_rate=0.0))
    storm = [
        FaultRule(kind="429", times=6, retry_after=2, path=r"^/api/v1/apps/[^/]+/logs$"),
        FaultRule(kind="429", times=4, retry_after=2, path=r"^/v1/apps/"),
    ]
    faults = Faults(storm)
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "sb", faults=faults) as s:
        before = s.now()
        audit = run_audit(s)
        waited = s.now() - before
    assert [rule.fired for rule in storm] == [6, 4] and waited >= pd.Timedelta(seconds=2)
    assert audit.errors == {} and len(audit.investigations) == 3
    for inv in audit.investigations.values():
        _assert_whole_and_healthy(inv)

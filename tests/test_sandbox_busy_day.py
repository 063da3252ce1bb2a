"""A busy day costs the sandbox in proportion to the day, counted (not timed): saves, sorts, copies, rows read.

Each test counts the work a quadratic sandbox did once per wait or once per page, so each
fails on that behaviour whatever the machine's speed. What a restart must keep (a change
at once, the clock when serving stops) is asserted beside the count.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from vyxops.fetch.session import open_session
from vyxops.fetch.targets import SANDBOX_URL_ENV as ENV
from vyxops.testing.fleet import generate_fleet
from vyxops_sandbox import fly_api, logsql, ordered, statefile, supabase_api
from vyxops_sandbox.hosted import HostedSandbox
from vyxops_sandbox.scenario import parse_scenario
from vyxops_sandbox.world import World

APP = "fleet-app-1"


@pytest.fixture(scope="module")
def fleet() -> World:
    """One app's day of 120 provisioned machines (a small busy day)."""
    text = generate_fleet(apps=1, machines_per_day=120, days=1, seed=1, failure_rate=0.1)
    return World.from_scenario(parse_scenario(text, "busy.yaml"))


def count_saves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    saves = [0]
    write = statefile.write_state

    def counted(directory: Path, text: str) -> statefile.Stamp | None:
        saves[0] += 1
        return write(directory, text)

    monkeypatch.setattr(statefile, "write_state", counted)
    return saves


def test_waits_save_nothing_a_change_is_saved_at_once_and_the_clock_when_serving_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "served"
    h = HostedSandbox.reserve()
    h.start(World.load("stub-image", directory), loaded_as="stub-image")
    monkeypatch.setenv(ENV, h.url)
    start = h.world.now_ms
    saves = count_saves(monkeypatch)
    try:
        with open_session("sandbox") as session:
            for _ in range(5):
                session.clock.sleep(3)  # what a client does on a 429: wait, then ask again
            assert saves[0] == 0  # the old sandbox wrote the whole world at every wait
            changed = session.supabase.update_rows("machines", {"status": "failed"}, [("status", "eq", "starting")])
            assert len(changed) == 1 and saves[0] == 1
            # A crash now loses no change: the row is on disk already, at the clock of the change.
            on_disk = json.loads((directory / "state.json").read_text())
            rows = on_disk["supabase"]["tables"]["machines"]["rows"]
            assert [r["status"] for r in rows if r["status"] == "failed"] == ["failed"]
            assert on_disk["now_ms"] == start + 15_000
            session.clock.sleep(30)
            assert saves[0] == 1
    finally:
        h.stop()
    assert saves[0] == 2  # the clock, once, when serving stops
    reopened = World.open(directory)
    assert reopened is not None and reopened.now_ms == start + 45_000


def test_paging_the_machines_list_sorts_the_fleet_once_and_copies_nothing(
    fleet: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = list_machines(fleet, {})
    deep_copies = [0]
    deepcopy = copy.deepcopy

    def counted_copy(value: Any, memo: Any = None) -> Any:
        deep_copies[0] += 1
        return deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counted_copy)
    keyed = [0]
    order = fly_api._machine_order

    def counted_order(m: dict[str, Any]) -> tuple[str, str]:
        keyed[0] += 1
        return order(m)

    monkeypatch.setattr(fly_api, "_machine_order", counted_order)
    sorts = ordered.SORTS[0]
    pages, cursor = [], None
    while True:
        params = {"limit": "10", **({"cursor": cursor} if cursor else {})}
        response = machines_response(fleet, params)
        pages.append(response.json())
        cursor = response.headers.get("fly-next-cursor")
        if not cursor:
            break
    assert [m["id"] for page in pages for m in page] == [m["id"] for m in everything]
    assert len(pages) >= 10
    assert deep_copies[0] == 0
    # One sort of the fleet (n keys) at most, then a key per page for its cursor; the old list sorted
    # and re-filtered the whole fleet for every page (pages × 2n keys).
    assert ordered.SORTS[0] - sorts <= 1
    assert keyed[0] <= len(everything) + len(pages)


def test_a_list_page_answers_what_the_state_holds_without_its_internal_keys(fleet: World) -> None:
    page = list_machines(fleet, {"limit": "3"})
    for got in page:
        held = fleet.machine(APP, got["id"])
        assert held is not None
        assert got == json.loads(json.dumps({k: v for k, v in held.items() if not k.startswith("_")}))


def test_a_logs_page_reads_its_window_not_the_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paging a day of log rows a minute at a time converts them once and hands each query only its minute."""
    base_us = 1_760_000_040_000_000  # on a minute: the endpoint rounds a window's bounds to minutes
    rows = [
        {"id": f"r{i}", "timestamp_us": base_us + 3_000_000 + i * 6_000_000, "event_message": f"{i}", "source": "x"}
        for i in range(2_000)  # a row every 6 s, none on a minute: 10 in each minute
    ]
    sql = "select id, event_message from logs order by timestamp"
    converted, taken = logsql.CONVERTED[0], logsql.TAKEN[0]
    seen: list[int] = []
    load = logsql._load_window

    def counted(con: Any, table: Any) -> None:
        seen.append(table.num_rows)
        load(con, table)

    monkeypatch.setattr(logsql, "_load_window", counted)
    got = []
    for minute in range(100):
        start = (base_us + minute * 60_000_000) // 1_000_000
        window = [
            f"{dt.datetime.fromtimestamp(s, dt.timezone.utc).replace(tzinfo=None).isoformat()}Z"
            for s in (start, start + 60)
        ]
        got += logsql.run_logs_query(rows, sql, window[0], window[1], (base_us // 1000) + 86_400_000)
    assert [r["id"] for r in got] == [f"r{i}" for i in range(1_000)]
    assert logsql.CONVERTED[0] - converted == len(rows)  # once, not once a page
    assert logsql.TAKEN[0] - taken == sum(seen) == 1_000  # each query its own minute's ten rows
    assert max(seen) == 10


def test_replay_does_work_in_proportion_to_its_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twice the day, twice the pending events looked at while replaying it (not four times)."""
    looked = [0]
    advance = World._advance

    def counted(self: World, ms: int) -> None:
        looked[0] += len(self.state["pending"])
        advance(self, ms)

    monkeypatch.setattr(World, "_advance", counted)
    work = []
    for n in (100, 200):
        looked[0] = 0
        text = generate_fleet(apps=1, machines_per_day=n, days=1, seed=1, failure_rate=0.1)
        World.from_scenario(parse_scenario(text, "busy.yaml"))
        work.append(looked[0])
    assert work[1] <= 2.5 * work[0]


def machines_response(world: World, params: dict[str, str]) -> httpx.Response:
    world.sleep(1)  # a second between pages: within the list's rate limit (1 a second, burst 3)
    token = world.credentials["fly_api_token"]
    request = httpx.Request(
        "GET",
        f"https://api.machines.dev/v1/apps/{APP}/machines",
        params={"include_deleted": "true", **params},
        headers={"authorization": f"Bearer {token}"},
    )
    response = fly_api.handle_machines(world, request)
    assert response is not None and response.status_code == 200, response
    return response


def list_machines(world: World, params: dict[str, str]) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = machines_response(world, params).json()
    return body


def test_a_held_world_is_kept_without_reading_its_scenario_again_and_a_changed_file_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vyxops_sandbox import scenario as scenario_module
    from vyxops_sandbox import world as world_module

    path = tmp_path / "busy.yaml"
    path.write_text(generate_fleet(apps=1, machines_per_day=20, days=1, seed=1, failure_rate=0.1))
    first = World.load(path, tmp_path / "sandbox")
    parsed = [0]
    load = scenario_module.load_scenario

    def counted(name: str | Path) -> Any:
        parsed[0] += 1
        return load(name)

    monkeypatch.setattr(world_module, "load_scenario", counted)
    again = World.load(path, tmp_path / "sandbox")
    assert parsed[0] == 0 and again.incarnation == first.incarnation
    path.write_text(path.read_text() + "# edited: another text, so another world\n")
    replayed = World.load(path, tmp_path / "sandbox")
    assert parsed[0] == 1 and replayed.incarnation != first.incarnation


def test_paging_a_filtered_table_filters_it_once_until_the_world_changes(
    fleet: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    matching = [0]
    match = supabase_api._matching

    def counted(rows: list[dict[str, Any]], filters: Any) -> list[dict[str, Any]]:
        matching[0] += 1
        return match(rows, filters)

    monkeypatch.setattr(supabase_api, "_matching", counted)
    table = fleet.state["supabase"]["machines_table"]
    key = fleet.credentials["supabase_service_role_key"]
    headers = {"apikey": key, "authorization": f"Bearer {key}"}

    def page(offset: int) -> list[dict[str, Any]]:
        params = {
            "select": "*",
            "status": "neq.failed",
            "order": "created_at.desc",
            "limit": "10",
            "offset": str(offset),
        }
        request = httpx.Request("GET", f"https://x.supabase.co/rest/v1/{table}", params=params, headers=headers)
        response = supabase_api.handle_postgrest(fleet, request)
        assert response is not None and response.status_code == 200, response
        body: list[dict[str, Any]] = response.json()
        return body

    pages = [page(offset) for offset in range(0, 100, 10)]
    assert matching[0] == 1 and all(len(p) == 10 for p in pages)
    first = pages[0][0]
    mid_column, status_column = fleet.pipeline.columns["machine_id"], fleet.pipeline.columns["status"]
    assert mid_column is not None and status_column is not None
    fleet.db_update(table, {mid_column: first[mid_column]}, {status_column: "failed"})
    assert page(0)[0] != first and matching[0] == 2  # a change is seen on the next page read

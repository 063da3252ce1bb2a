"""Times as the platforms' own clients write them (PLATFORM.md, third round, "Go's zero time").

- fly-go writes an unset ``time.Time`` without ``omitempty`` as ``0001-01-01T00:00:00Z``
  (``MachineExitEvent.ExitedAt``, machine_types.go): "not reported", never a date, never a crash.
- Supabase log rows may carry ``timestamp`` as Unix µs, a number or its digits (Studio's
  ``unixMicroToIsoTimestamp``): read in µs, end to end and through the logs' keyset paging.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from vyxops.analysis.investigate import investigate
from vyxops.core.errors import ScenarioError
from vyxops.core.timeutil import FLY_EVENT_UNIT, GO_ZERO_TIME
from vyxops.fetch import frames, logreads
from vyxops.fetch.session import Session, open_session
from vyxops.scenarios import __file__ as scenarios_init
from vyxops_sandbox.scenario import load_scenario
from vyxops_sandbox.testing import world_of

SEED = (Path(scenarios_init).parent / "stub-image.yaml").read_text()
SEED_MACHINE = "5683732efe3208"
INSTANT = pd.Timestamp("2025-10-02T16:18:44.130Z")
US_SHAPES = ("us", "us_string")


def seed_under(tmp_path: Path, platform: str) -> Path:
    """The seed scenario with a ``platform:`` block (how the platforms write their answers)."""
    assert "name: stub-image\n" in SEED
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "stub-image-times.yaml"
    path.write_text(SEED.replace("name: stub-image\n", f"name: stub-image-times\nplatform: {platform}\n"))
    return path


# --------------------------------------------------------------------------- Go's zero time


def exit_event(exited_at: object, *, nested: bool = False) -> dict[str, Any]:
    exit_ev = {"exit_code": 0, "exited_at": exited_at}
    request = {"MonitorEvent": {"exit_event": exit_ev}} if nested else {"exit_event": exit_ev}
    return {"id": "ev", "type": "exit", "status": "stopped", "source": "flyd", "timestamp": 1759421924130,
            "request": request}  # fmt: skip


def test_zero_times_of_a_machine_and_its_exit_events_are_not_reported_not_a_crash() -> None:
    """A machine whose created_at/updated_at and exit event's exited_at are Go's zero time: the frames hold NaT
    where the platform reported nothing, the real times where it did, and each frame's note says "not reported"."""
    machine = {
        "id": "m1",
        "state": "destroyed",
        "created_at": GO_ZERO_TIME,
        "updated_at": GO_ZERO_TIME,
        "config": {"image": "registry.fly.io/vyx-app:stub"},
        "events": [
            exit_event(GO_ZERO_TIME),
            exit_event("0001-01-01T00:00:00Z", nested=True),
            exit_event("2025-10-02T16:18:44.130Z"),
            exit_event(1759421924130),  # Fly's 2023 docs sample: ms
        ],
    }
    rows, events = frames.machine_records("vyx-app", [machine])
    m = frames.make_frame("machines", rows)
    e = frames.make_frame("machine_events", events, units={"time": FLY_EVENT_UNIT})
    assert m["created_at"].isna().all() and m["updated_at"].isna().all()
    assert "not reported" in m.attrs["note"] and "created_at" in m.attrs["note"]
    exited = e["exited_at"].tolist()
    assert pd.isna(exited[0]) and pd.isna(exited[1]) and exited[2:] == [INSTANT, INSTANT]
    assert (e["time"] == INSTANT).all() and e["exit_code"].tolist() == [0] * 4
    assert "not reported: exited_at in 2 row(s)" in e.attrs["note"]


def test_a_release_created_at_go_zero_time_is_not_reported() -> None:
    """fly-go's Release.CreatedAt is a time.Time too: its zero value is no date."""
    node = {"version": 3, "status": "complete", "imageRef": "registry.fly.io/vyx-app:v3", "createdAt": GO_ZERO_TIME}
    records, _ = frames.release_records("vyx-app", [node])
    df = frames.make_frame("releases", records)
    assert df["created_at"].isna().all() and "not reported" in df.attrs["note"]


def test_the_sandbox_writes_gos_zero_time_in_exited_at_under_the_platform_switch(tmp_path: Path) -> None:
    """`platform.fly.exited_at: zero`: the Machines API's exit event carries 0001-01-01T00:00:00Z, and the fetched
    events frame reads it as not reported."""
    path = seed_under(tmp_path, "{fly: {exited_at: zero}}")
    with open_session("sandbox", scenario=path, sandbox_dir=tmp_path / "sandbox") as s:
        machine = s.fly.get_machine("vyx-app", SEED_MACHINE)
        _, events = frames.fetch_machines(s, "vyx-app")
    [exit_ev] = [e["request"]["exit_event"] for e in machine["events"] if e["type"] == "exit"]
    assert exit_ev["exited_at"] == GO_ZERO_TIME
    exits = events[events["type"] == "exit"]
    assert len(exits) == 1 and exits["exited_at"].isna().all() and exits["time"].notna().all()
    assert "not reported" in events.attrs["note"]


# --------------------------------------------------------------------------- Supabase µs log timestamps


def logs_answer(s: Session, sql: str, start: str = "2025-10-02T16:00:00Z", end: str = "2025-10-02T17:00:00Z") -> Any:
    """The logs endpoint's rows for ``sql`` in [start, end], as the session's client reads them."""
    return s.supabase.query_logs(sql, start, end)


@pytest.mark.parametrize("shape", US_SHAPES)
def test_the_sandbox_writes_log_timestamps_in_us_under_the_platform_switch(tmp_path: Path, shape: str) -> None:
    """`platform.supabase.log_timestamps: us | us_string`: each row's timestamp is its documented text in Unix µs."""
    sql = "select id, timestamp from logs where source = 'function_edge_logs' order by timestamp desc limit 10"
    answers = {}
    for given in ("text", shape):
        path = seed_under(tmp_path / given, f"{{supabase: {{log_timestamps: {given}}}}}")
        with open_session("sandbox", scenario=path, sandbox_dir=tmp_path / given / "sandbox") as s:
            answers[given] = logs_answer(s, sql)
    text, us = answers["text"], answers[shape]
    assert text and [r["id"] for r in us] == [r["id"] for r in text]
    for t, u in zip(text, us):
        assert isinstance(u["timestamp"], int if shape == "us" else str)
        assert pd.Timestamp(t["timestamp"], tz="UTC").value // 1000 == int(u["timestamp"])


def function_logs(tmp_path: Path, platform: str, *, bulk: bool = False) -> pd.DataFrame:
    """The seed's function_logs frame (both sources) read through the sandbox under ``platform``."""
    path = seed_under(tmp_path, platform)
    with open_session("sandbox", scenario=path, sandbox_dir=tmp_path / "sandbox") as s:
        if bulk:
            add_bulk_logs(s)
        return frames.fetch_function_logs(s, s.now() - pd.Timedelta(hours=2), s.now())


def add_bulk_logs(s: Session) -> None:
    """2,500 rows a source half a second apart, and 300 that share one microsecond: pages past the 1,000 limit."""
    logs = world_of(s).state["supabase"]["logs"]
    start_us = (world_of(s).now_ms - 1_800_000) * 1000
    for source in ("function_edge_logs", "function_logs"):
        stamps = [start_us + i * 500_000 for i in range(2500)] + [start_us + 600 * 500_000 + 1] * 300
        for i, at in enumerate(stamps):
            logs.append({"id": f"{source}-{i:05d}", "timestamp_us": at, "source": source,
                         "event_message": f"line {i}\n", "severity_text": "INFO",
                         "log_attributes": {"function_id": "f", "execution_id": f"x{i}", "level": "info",
                                            "event_type": "Log", "response.status_code": "200"}})  # fmt: skip


@pytest.mark.parametrize("shape", US_SHAPES)
def test_function_logs_with_us_timestamps_read_end_to_end_as_the_text_ones(tmp_path: Path, shape: str) -> None:
    """Both sources' rows, their times and order are the same whether the endpoint writes text or µs."""
    text = function_logs(tmp_path / "text", "{supabase: {log_timestamps: text}}")
    us = function_logs(tmp_path / shape, f"{{supabase: {{log_timestamps: {shape}}}}}")
    assert set(text["source"]) == {"function_edge_logs", "function_logs"}
    columns = ["time", "source", "log_id", "status_code", "message"]
    pd.testing.assert_frame_equal(us[columns], text[columns])
    assert us["time"].min() > pd.Timestamp("2025-10-02T15:00:00Z") and us.attrs["complete"]


@pytest.mark.parametrize("shape", US_SHAPES)
def test_keyset_paging_continues_past_us_timestamps_without_a_reread_or_a_skip(tmp_path: Path, shape: str) -> None:
    """2,800 rows a source past the 1,000-row page, ties on one microsecond among them, all in µs: every row is
    read once, in the order the text answers give (read as ns, the keyset fell to 1970 and stopped at a page)."""
    text = function_logs(tmp_path / "text", "{supabase: {log_timestamps: text}}", bulk=True)
    us = function_logs(tmp_path / shape, f"{{supabase: {{log_timestamps: {shape}}}}}", bulk=True)
    for source in ("function_edge_logs", "function_logs"):
        ids = us.loc[us["source"] == source, "log_id"]
        assert ids.str.startswith(source).sum() == 2800 and ids.is_unique
    assert us["log_id"].tolist() == text["log_id"].tolist() and us["time"].equals(text["time"])
    assert us.attrs["complete"]


@pytest.mark.parametrize("shape", US_SHAPES)
def test_the_logs_keyset_reads_us_timestamps_as_us(tmp_path: Path, shape: str) -> None:
    """The raw read under the frame: each continuation starts just past the oldest row read, so the 2,800 rows
    come back once each, newest first, in as many queries as the text answers take."""

    def read(platform: str, where: Path) -> tuple[list[str], int]:
        with open_session("sandbox", scenario=seed_under(where, platform), sandbox_dir=where / "sandbox") as s:
            add_bulk_logs(s)
            asked: list[str] = []

            def query(sql: str, start: str, end: str) -> list[dict[str, Any]]:
                asked.append(sql)
                rows: list[dict[str, Any]] = logs_answer(s, sql, start, end)
                return rows

            rows, complete = logreads.read_source(query, "id, timestamp", "function_logs",
                                                  s.now() - pd.Timedelta(hours=1), s.now(), 400)  # fmt: skip
        assert complete
        return [str(r["id"]) for r in rows], len(asked)

    text_ids, text_queries = read("{supabase: {log_timestamps: text}}", tmp_path / "text")
    ids, queries = read(f"{{supabase: {{log_timestamps: {shape}}}}}", tmp_path / shape)
    assert len(ids) == len(set(ids)) == 2800 and ids == text_ids and queries == text_queries


# --------------------------------------------------------------------------- the seed, end to end


def test_the_seed_under_zero_exit_times_and_us_log_timestamps_gets_the_same_diagnosis(tmp_path: Path) -> None:
    """The seed incident where flyd reports no exit time and the logs come in µs: the same root cause and
    companions as the seed, and the events frame says the exit time was not reported."""
    told = {}
    for name, platform in [
        ("seed", "{}"),
        ("times", "{fly: {exited_at: zero, exit_events: omitempty}, supabase: {log_timestamps: us}}"),
    ]:
        with open_session("sandbox", scenario=seed_under(tmp_path / name, platform), sandbox_dir=tmp_path / name) as s:
            told[name] = investigate(s, "vyx-app")
    seed, inv = told["seed"], told["times"]
    assert inv.root is not None and inv.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
    assert (inv.verdict, sorted(f.code for f in inv.findings)) == (seed.verdict, sorted(f.code for f in seed.findings))
    assert "not reported: exited_at" in inv.evidence.machine_events.attrs["note"]
    assert inv.evidence.function_logs["time"].equals(seed.evidence.function_logs["time"])


def test_the_seed_with_zero_creation_times_keeps_its_diagnosis_and_says_the_times_were_not_reported(
    tmp_path: Path,
) -> None:
    """Machines and releases whose created_at/updated_at are Go's zero time (fly-go's Release.CreatedAt is a
    time.Time): the investigation runs, keeps the seed's root cause, and its frames say what was not reported."""
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as s:
        for app in world_of(s).state["fly"]["apps"].values():
            for m in app["machines"].values():
                m["created_at"] = m["updated_at"] = GO_ZERO_TIME
            for release in app["releases"]:
                release["createdAt"] = GO_ZERO_TIME
        inv = investigate(s, "vyx-app")
    assert inv.root is not None and inv.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
    assert inv.evidence.machines["created_at"].isna().all() and inv.evidence.releases["created_at"].isna().all()
    assert "not reported: created_at" in inv.evidence.machines.attrs["note"]
    assert "not reported: created_at" in inv.evidence.releases.attrs["note"]
    summary = inv.summary_in("UTC")
    assert "0001" not in summary and "?" not in summary
    assert "released (time not reported)" in summary


@pytest.mark.parametrize(("platform", "allowed"), [("{supabase: {log_timestamps: ns}}", "us_string"),
                                                    ("{fly: {exited_at: none}}", "zero")])  # fmt: skip
def test_a_typo_in_a_time_switch_is_refused_naming_the_allowed_values(
    tmp_path: Path, platform: str, allowed: str
) -> None:
    """A scenario's unknown time shape is an error naming the allowed values, not a silent default."""
    with pytest.raises(ScenarioError, match=allowed):
        load_scenario(seed_under(tmp_path, platform))

"""The fleet generator writes valid, deterministic scenarios; the frame builders match the schemas."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from vyxops.analysis.sources import build_timeline
from vyxops.fetch.frames import SCHEMAS
from vyxops.testing.fleet import fleet_frames, generate_fleet, generate_fleet_frames
from vyxops.testing.schemas import check_frame
from vyxops_sandbox.scenario import load_scenario, parse_scenario
from vyxops_sandbox.world import World

FRAME_NAMES = [
    "machines",
    "machine_events",
    "releases",
    "fly_logs",
    "machine_rows",
    "secrets",
    "functions",
    "function_logs",
]


def replay(text: str) -> World:
    return World.from_scenario(parse_scenario(text))


def test_same_seed_gives_the_same_yaml() -> None:
    """Two calls with the same arguments write byte-identical scenarios."""
    assert generate_fleet(apps=2, machines_per_day=5, days=2, seed=7) == generate_fleet(
        apps=2, machines_per_day=5, days=2, seed=7
    )


def test_another_seed_gives_another_fleet() -> None:
    """A different seed changes the scenario."""
    assert generate_fleet(seed=1) != generate_fleet(seed=2)


def test_fleet_is_a_valid_scenario_with_a_call_per_machine() -> None:
    """The text parses as a scenario: named apps, one invoke per machine a day per app, each naming its app."""
    sc = parse_scenario(generate_fleet(apps=3, machines_per_day=4, days=2, seed=0))
    assert sc.apps == ["fleet-app-1", "fleet-app-2", "fleet-app-3"]
    invokes = [s["args"] for s in sc.steps if s["kind"] == "invoke"]
    assert len(invokes) == 3 * 4 * 2
    assert {i["function"] for i in invokes} == {"provision-machine"}
    assert {i["body"]["app"] for i in invokes} == set(sc.apps)
    assert all(i["body"]["user_id"] and i["body"]["region"] for i in invokes)
    deploys = [s for s in sc.steps if s["kind"] == "deploy"]
    assert len(deploys) >= 3 * (2 + 1)  # a first release and one a day per app
    assert yaml.safe_load(generate_fleet())["name"] == "fleet-3a-50m-7d-s0"


def test_fleet_without_failures_provisions_every_machine() -> None:
    """At failure_rate 0 every call answers 200 and every machine reports running."""
    world = replay(generate_fleet(apps=2, machines_per_day=5, days=1, seed=4, failure_rate=0.0))
    frames = fleet_frames(world)
    codes = frames["function_logs"]["status_code"].dropna()
    assert len(codes) == 10 and (codes == 200).all()
    assert (frames["machine_rows"]["status"] == "running").all() and len(frames["machine_rows"]) == 10
    assert "DOCKER_IMAGE" not in set(frames["secrets"]["name"])


def test_fleet_at_full_failure_rate_fails_every_call_the_three_ways() -> None:
    """At failure_rate 1 no machine runs: calls are refused (500) or machines exit (0: the stub, non-zero: crashes)."""
    world = replay(generate_fleet(apps=2, machines_per_day=12, days=1, seed=5, failure_rate=1.0))
    frames = fleet_frames(world)
    codes = frames["function_logs"]["status_code"].dropna()
    refused = int((codes == 500).sum())
    exits = frames["machine_events"].loc[frames["machine_events"]["type"] == "exit", "exit_code"]
    assert refused + len(exits) == 24
    assert refused > 0 and (exits == 0).any() and (exits != 0).any()
    assert not (frames["machine_rows"]["status"] == "running").any()
    assert (frames["machines"]["state"] == "destroyed").all()


def test_fleet_replays_to_the_same_state() -> None:
    """The same fleet text replays to the same world bytes."""
    text = generate_fleet(apps=2, machines_per_day=3, days=1, seed=9, failure_rate=0.5)
    assert replay(text).dumps() == replay(text).dumps()


def test_bad_fleet_arguments_are_refused() -> None:
    """Zero apps or a failure rate outside [0, 1] are refused."""
    with pytest.raises(ValueError):
        generate_fleet(apps=0)
    with pytest.raises(ValueError):
        generate_fleet(failure_rate=1.5)


def test_fleet_frames_read_the_seed_world() -> None:
    """Frames built from the seed world hold its destroyed machine, four events, two releases and the starting row."""
    frames = fleet_frames(World.from_scenario(load_scenario("stub-image")))
    assert sorted(frames) == sorted(FRAME_NAMES)
    for name in FRAME_NAMES:
        check_frame(name, frames[name])
    m = frames["machines"].iloc[0]
    assert m["machine_id"] == "5683732efe3208" and bool(m["destroyed"]) and m["image"] == "registry.fly.io/vyx-app:stub"
    assert frames["machine_events"]["type"].tolist() == [
        "destroy",
        "exit",
        "start",
        "launch",
    ]  # newest first, as the API
    assert frames["releases"]["version"].tolist() == [2, 1] and frames["releases"]["current"].tolist() == [True, False]
    assert frames["machine_rows"]["status"].tolist() == ["starting"]
    assert "DOCKER_IMAGE" in set(frames["secrets"]["name"])
    assert set(frames["function_logs"]["source"]) == {"function_logs", "function_edge_logs"}


def test_synthetic_frames_have_the_schemas_and_the_exact_event_count() -> None:
    """generate_fleet_frames gives frames in the declared schemas whose timeline has exactly the events asked for."""
    frames = generate_fleet_frames(5_000, seed=1)
    for name in FRAME_NAMES:
        check_frame(name, frames[name])
        assert list(frames[name].columns) == list(SCHEMAS[name])
    tl = build_timeline(**frames)
    assert len(tl) == 5_000 and tl.attrs["duplicates"] == 0
    assert {"machine.exit", "machine.destroy", "db.row.updated", "function.invoked"} <= set(tl["kind"])
    assert tl.loc[tl["kind"] == "function.invoked", "message"].str.contains("invoked: 500 in ", regex=False).any()


def test_synthetic_frames_are_deterministic() -> None:
    """The same n_events and seed give equal frames; another seed gives other ids."""
    a, b = generate_fleet_frames(3_000, seed=2), generate_fleet_frames(3_000, seed=2)
    for name in FRAME_NAMES:
        pd.testing.assert_frame_equal(a[name], b[name])
    c = generate_fleet_frames(3_000, seed=3)
    assert set(a["machines"]["machine_id"]) != set(c["machines"]["machine_id"])

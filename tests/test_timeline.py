"""The timeline merges every source into one ordered event table, and the plot draws it.

Frames come straight from replayed sandbox worlds (``fleet_frames``), no HTTP.
"""

from __future__ import annotations

import matplotlib.colors as mcolors
import pandas as pd
import pytest
from matplotlib.figure import Figure

from vyxops.analysis.sources import build_timeline
from vyxops.analysis.timeline import TIMELINE_SCHEMA, filter_timeline
from vyxops.core.errors import InputError
from vyxops.fetch.frames import empty_frame
from vyxops.testing.fleet import fleet_frames, generate_fleet
from vyxops.views.plot import ERROR_COLOUR, OK_COLOUR, plot_timeline
from vyxops_sandbox.functions import add_function
from vyxops_sandbox.scenario import load_scenario, parse_scenario
from vyxops_sandbox.world import World

SEED_MACHINE = "5683732efe3208"


def frames_of(scenario: str) -> dict[str, pd.DataFrame]:
    return fleet_frames(World.from_scenario(load_scenario(scenario)))


@pytest.fixture(scope="module")
def seed_frames() -> dict[str, pd.DataFrame]:
    return frames_of("stub-image")


@pytest.fixture(scope="module")
def seed(seed_frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return build_timeline(**seed_frames)


@pytest.fixture(scope="module")
def fleet() -> pd.DataFrame:
    world = World.from_scenario(
        parse_scenario(generate_fleet(apps=2, machines_per_day=6, days=2, seed=3, failure_rate=0.3))
    )
    return build_timeline(**fleet_frames(world))


def first(tl: pd.DataFrame, kind: str, entity: str | None = None) -> pd.Series:
    rows = tl[(tl["kind"] == kind) & ((tl["entity"] == entity) if entity else True)]
    assert len(rows), f"no {kind} {entity or ''}"
    return rows.iloc[0]


# --------------------------------------------------------------------------- the seed incident


def test_seed_tells_secret_then_release_then_call_then_machine_lifecycle(seed: pd.DataFrame) -> None:
    """On the seed, DOCKER_IMAGE changes before release v2, which precedes the call, launch, start, exit and destroy."""
    chain = [
        first(seed, "secret.updated", "DOCKER_IMAGE"),
        first(seed, "release.created", "v2"),
        seed[seed["message"].str.startswith("Provisioning machine for user u-42")].iloc[0],
        first(seed, "machine.launch", SEED_MACHINE),
        first(seed, "function.invoked"),
        first(seed, "machine.start", SEED_MACHINE),
        first(seed, "machine.exit", SEED_MACHINE),
        first(seed, "machine.destroy", SEED_MACHINE),
    ]
    positions = [int(seed.index[seed["key"] == e["key"]][0]) for e in chain]
    assert positions == sorted(positions)
    assert [e["time"] for e in chain] == sorted(e["time"] for e in chain)


def test_seed_invocation_is_logged_when_the_response_is_sent(seed: pd.DataFrame) -> None:
    """The edge log (function.invoked, 200) lands after the machine's launch and before its start, as the platform
    writes it; its message says how long the call took, which puts the call's start before the launch."""
    invoked = first(seed, "function.invoked")
    assert invoked["message"] == "provision-machine invoked: 200 in 850 ms"
    assert invoked["source"] == "supabase.edge_logs" and invoked["entity"] == "provision-machine"
    launch = first(seed, "machine.launch", SEED_MACHINE)["time"]
    assert launch < invoked["time"] < first(seed, "machine.start", SEED_MACHINE)["time"]
    assert invoked["time"] - pd.Timedelta(milliseconds=850) < launch


def test_seed_exit_event_reads_exit_code_zero(seed: pd.DataFrame) -> None:
    """The machine's exit event says it exited with code 0 on its own (not a requested stop)."""
    assert (
        first(seed, "machine.exit", SEED_MACHINE)["message"]
        == f"machine {SEED_MACHINE} exited with code 0 (requested_stop=false)"
    )
    launch = first(seed, "machine.launch", SEED_MACHINE)
    assert "registry.fly.io/vyx-app:stub" in launch["message"]
    assert launch["key"].startswith(f"fly.events:{SEED_MACHINE}:")


def test_seed_row_is_created_starting_and_never_updated(seed: pd.DataFrame) -> None:
    """The seed's DB row has one created event with status starting and no later update."""
    rows = seed[seed["entity_type"] == "db_row"]
    assert rows["kind"].tolist() == ["db.row.created"]
    row = rows.iloc[0]
    assert row["message"].endswith(f"for machine {SEED_MACHINE} created with status starting")
    assert (
        row["app"] == "vyx-app" and row["key"].endswith(":created") and row["key"].startswith("supabase.rows:machines:")
    )


def test_secret_message_shows_a_digest_prefix_not_the_value(seed: pd.DataFrame) -> None:
    """A secret event names the secret and the start of its digest, never its value."""
    secret = first(seed, "secret.updated", "DOCKER_IMAGE")
    assert secret["message"].startswith("secret DOCKER_IMAGE updated (digest ") and secret["message"].endswith("…)")
    assert "stub" not in secret["message"]
    assert pd.isna(secret["app"])


def test_release_event_names_its_version_and_image(seed: pd.DataFrame) -> None:
    """A release event's entity is vN and its message names the image."""
    release = first(seed, "release.created", "v2")
    assert release["message"].startswith(
        "release v2 created: registry.fly.io/vyx-app:deployment-01K6JV132H7B7Y5PP8Y5QSR23X"
    )
    assert release["key"] == "fly.releases:vyx-app:v2"


# --------------------------------------------------------------------------- shape, order, repeats


def test_timeline_has_the_schema_with_utc_ns_times(seed: pd.DataFrame) -> None:
    """The timeline has exactly the declared columns and dtypes, times in UTC ns, and a 0..n-1 index."""
    assert list(seed.columns) == list(TIMELINE_SCHEMA)
    assert {c: str(t) for c, t in seed.dtypes.items()} == TIMELINE_SCHEMA
    assert str(seed["time"].dt.tz) == "UTC" and seed["time"].dtype.unit == "ns"
    assert list(seed.index) == list(range(len(seed)))
    assert seed["time"].notna().all() and seed["key"].notna().all()


def test_timeline_is_sorted_by_time_source_entity_kind(fleet: pd.DataFrame) -> None:
    """Events are ordered by time, then source, entity and kind."""
    keys = ["time", "source", "entity", "kind"]
    assert fleet[keys].equals(fleet[keys].sort_values(keys, kind="stable").reset_index(drop=True))
    assert fleet["time"].is_monotonic_increasing


def test_the_same_record_read_twice_yields_one_event(seed_frames: dict[str, pd.DataFrame], seed: pd.DataFrame) -> None:
    """Frames fetched twice (overlapping pages) give each event once."""
    doubled = {k: pd.concat([v, v], ignore_index=True) for k, v in seed_frames.items()}
    tl = build_timeline(**doubled)
    pd.testing.assert_frame_equal(tl, seed)
    assert tl.attrs["duplicates"] == len(seed)


def test_updated_row_yields_a_created_and_an_updated_event(seed_frames: dict[str, pd.DataFrame]) -> None:
    """A row whose updated_at differs from created_at gives two events; the update carries the current status."""
    rows = seed_frames["machine_rows"].copy()
    rows["status"] = pd.array(["running"], dtype="string")
    rows["updated_at"] = rows["created_at"] + pd.Timedelta(seconds=3)
    tl = build_timeline(machine_rows=rows)
    assert tl["kind"].tolist() == ["db.row.created", "db.row.updated"]
    created, updated = tl.iloc[0], tl.iloc[1]
    assert created["time"] == rows["created_at"].iloc[0] and updated["time"] == rows["updated_at"].iloc[0]
    assert updated["message"].endswith(f"for machine {SEED_MACHINE} updated to status running")
    assert "status" not in created["message"]  # the status it was created with is not known
    assert updated["key"].endswith(":updated")


def test_machines_frame_adds_created_only_when_no_launch_event(seed_frames: dict[str, pd.DataFrame]) -> None:
    """A machine with a launch event is not counted twice; without its events, the machines frame dates its creation."""
    both = build_timeline(machines=seed_frames["machines"], machine_events=seed_frames["machine_events"])
    assert "machine.created" not in set(both["kind"])
    assert both["kind"].tolist() == ["machine.launch", "machine.start", "machine.exit", "machine.destroy"]
    alone = build_timeline(machines=seed_frames["machines"])
    assert alone["kind"].tolist() == ["machine.created"]
    assert (
        alone["message"].iloc[0]
        == f"machine {SEED_MACHINE} created in sjc with image registry.fly.io/vyx-app:stub (state destroyed)"
    )


def test_empty_inputs_give_an_empty_timeline_with_the_schema() -> None:
    """No frames, or empty ones, give an empty timeline that still has every column and dtype."""
    for tl in (
        build_timeline(),
        build_timeline(machines=empty_frame("machines"), function_logs=empty_frame("function_logs")),
    ):
        assert len(tl) == 0
        assert {c: str(t) for c, t in tl.dtypes.items()} == TIMELINE_SCHEMA


def test_events_without_a_time_are_dropped_and_counted(seed_frames: dict[str, pd.DataFrame]) -> None:
    """An event with no time cannot be placed: it is left out and attrs['untimed'] says how many."""
    logs = seed_frames["fly_logs"].copy()
    logs.loc[0, "time"] = pd.NaT
    tl = build_timeline(fly_logs=logs)
    assert len(tl) == len(logs) - 1 and tl.attrs["untimed"] == 1


def test_a_frame_missing_columns_is_an_input_error(seed_frames: dict[str, pd.DataFrame]) -> None:
    """A frame without its schema's columns is refused with the frame's name."""
    with pytest.raises(InputError, match="machine_events"):
        build_timeline(machine_events=seed_frames["machine_events"].drop(columns=["type"]))


def test_refused_call_reads_500_and_makes_no_machine() -> None:
    """When the tag is missing, the invocations read 500 and no machine event exists."""
    tl = build_timeline(**frames_of("secret-tag-missing"))
    assert (
        tl.loc[tl["kind"] == "function.invoked", "message"].tolist() == ["provision-machine invoked: 500 in 850 ms"] * 2
    )
    assert not tl["kind"].str.startswith("machine.").any()
    assert tl["message"].str.contains("MANIFEST_UNKNOWN").any()


def test_pull_failure_reads_failed_to_launch_with_the_error() -> None:
    """A machine whose image cannot be pulled shows launch_failed with the pull error, then destroy."""
    tl = build_timeline(**frames_of("image-pull-fails"))
    failed = first(tl, "machine.launch_failed")
    assert "failed to launch: failed to pull image registry.fly.io/render-app:" in failed["message"]
    machine = tl[tl["entity"] == failed["entity"]]
    assert machine.loc[machine["kind"].str.startswith("machine."), "kind"].tolist() == [
        "machine.launch",
        "machine.launch_failed",
        "machine.destroy",
    ]


# --------------------------------------------------------------------------- filters


def test_filter_by_machine_keeps_its_events_row_and_log_lines(fleet: pd.DataFrame) -> None:
    """Filtering by machine keeps its own events, its DB row and the function lines naming it, and nothing of others."""
    mid = first(fleet, "machine.exit")["entity"]
    kept = filter_timeline(fleet, machine_id=mid)
    assert set(kept["kind"]) >= {
        "machine.launch",
        "machine.start",
        "machine.exit",
        "machine.destroy",
        "fly.log",
        "db.row.created",
        "function.log",
    }
    assert (kept.loc[kept["entity_type"] == "machine", "entity"] == mid).all()
    assert kept.loc[kept["kind"] == "function.log", "message"].str.contains(f"Created machine {mid}").all()
    assert kept.loc[kept["entity_type"] == "db_row", "message"].str.contains(f"for machine {mid}").all()
    assert len(kept[kept["entity_type"] == "db_row"]) == 1
    assert kept["time"].is_monotonic_increasing and list(kept.index) == list(range(len(kept)))


def test_filter_by_window_is_inclusive(seed: pd.DataFrame) -> None:
    """Events exactly at since and until are kept; events outside are not."""
    since, until = first(seed, "machine.launch")["time"], first(seed, "machine.start")["time"]
    kept = filter_timeline(seed, since=since, until=until.isoformat())
    assert kept["time"].min() == since and kept["time"].max() == until
    assert len(kept) == int(((seed["time"] >= since) & (seed["time"] <= until)).sum())


def test_filter_by_app_keeps_project_wide_events(fleet: pd.DataFrame) -> None:
    """Filtering by app drops other apps' events but keeps secrets and function events, which belong to no app."""
    kept = filter_timeline(fleet, app="fleet-app-1")
    assert set(kept["app"].dropna()) == {"fleet-app-1"}
    assert {"secret.updated", "function.invoked"} <= set(kept["kind"])
    assert (fleet["app"] == "fleet-app-2").any()


def test_filter_with_a_bad_time_is_an_input_error(seed: pd.DataFrame) -> None:
    """A window bound that is not a time is refused naming the bound."""
    with pytest.raises(InputError, match="since"):
        filter_timeline(seed, since="yesterday-ish")


# --------------------------------------------------------------------------- plot


def lane_labels(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_yticklabels()]


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_plot_has_a_lane_per_machine_and_row_and_marks_releases(seed: pd.DataFrame) -> None:
    """The seed plot has one lane for the machine, one for its row, an invocation row, and v1/v2 release markers."""
    fig = plot_timeline(seed, title="seed")
    assert isinstance(fig, Figure)
    assert lane_labels(fig) == [
        f"machine {SEED_MACHINE}",
        f"row {first(seed, 'db.row.created')['entity'][:8]} → {SEED_MACHINE}",
        "invocations (provision-machine)",
    ]
    labels = texts(fig)
    assert "v1" in labels and "v2" in labels and any("DOCKER_IMAGE" in t for t in labels)
    assert "destroyed" in labels and "starting" in labels  # each lane's last state
    vertical = [ln for ln in fig.axes[0].get_lines() if len(set(ln.get_xdata())) == 1]
    assert len(vertical) == 2 + 3  # two releases, three secrets
    assert len(fig.axes) == 2  # seconds of machine life on a day-long axis: a zoom panel is added
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert {"started", "stopped", "destroyed", "starting", "release (vN)"} <= set(legend)


def test_plot_colours_failed_invocations_as_errors() -> None:
    """Invocations answered 500 are drawn in the error colour, none in the ok colour."""
    fig = plot_timeline(build_timeline(**frames_of("secret-tag-missing")))
    coloured = {}
    for coll in fig.axes[0].collections:
        if len(coll.get_offsets()) and len(coll.get_facecolors()):
            coloured[mcolors.to_hex(coll.get_facecolors()[0])] = coloured.get(
                mcolors.to_hex(coll.get_facecolors()[0]), 0
            ) + len(coll.get_offsets())
    assert coloured.get(ERROR_COLOUR) == 2 and OK_COLOUR not in coloured


def test_plot_works_for_one_lane(seed: pd.DataFrame) -> None:
    """A timeline with a single machine and nothing else draws one lane."""
    only = seed[seed["kind"].str.startswith("machine.")].reset_index(drop=True)
    fig = plot_timeline(only)
    assert lane_labels(fig) == [f"machine {SEED_MACHINE}"]


def test_plot_caps_lanes_and_says_how_many_were_cut(fleet: pd.DataFrame) -> None:
    """With more lanes than max_lanes, only max_lanes are drawn and the title says how many were left out."""
    lanes = fleet.loc[fleet["kind"].str.startswith("machine.") | (fleet["entity_type"] == "db_row"), "entity"].nunique()
    fig = plot_timeline(fleet, max_lanes=4)
    assert len(lane_labels(fig)) == 4 + 1  # plus the invocations row
    assert f"{lanes - 4} more lanes not shown" in fig.axes[0].get_title(loc="left")


def test_plot_of_an_empty_timeline_is_an_empty_labelled_axis() -> None:
    """An empty timeline still gives a figure that says there is nothing to draw."""
    fig = plot_timeline(build_timeline(), title="nothing")
    assert "no machines or DB rows" in fig.axes[0].get_title(loc="left")


@pytest.mark.parametrize("story", ["seed", "fleet", "empty"])
def test_plot_keeps_every_label_and_the_legend_inside_the_picture(
    story: str, seed: pd.DataFrame, fleet: pd.DataFrame
) -> None:
    """Lane labels, titles, axis labels and the legend all fall inside the figure, and the panels do not overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    tl = {"seed": seed, "fleet": fleet, "empty": build_timeline()}[story]
    fig = plot_timeline(tl, title="a title long enough to matter — sandbox:stub-image", max_lanes=12)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box = fig.bbox
    for ax in fig.axes:
        tight = ax.get_tightbbox(renderer)  # the axis with its tick labels, title, labels and legend
        assert (
            tight.x0 >= box.x0 - 1 and tight.y0 >= box.y0 - 1 and tight.x1 <= box.x1 + 1 and tight.y1 <= box.y1 + 1
        ), (story, ax.get_title(loc="left"), tight, box)
    if len(fig.axes) == 2:
        upper, lower = (ax.get_tightbbox(renderer) for ax in fig.axes)
        assert upper.y0 > lower.y1, "the zoom panel overlaps the panel above it"


# --------------------------------------------------------------------------- structured fields


def test_events_carry_machine_status_and_exit_code_as_fields(seed: pd.DataFrame) -> None:
    """The exit, the DB row and the invocation say machine id, status and exit code in columns, not only in text."""
    exit_ = first(seed, "machine.exit", SEED_MACHINE)
    assert exit_["machine_id"] == SEED_MACHINE and exit_["status"] == "stopped" and exit_["exit_code"] == 0
    row = seed[seed["entity_type"] == "db_row"].iloc[0]
    assert row["machine_id"] == SEED_MACHINE and row["status"] == "starting"
    invoked = first(seed, "function.invoked")
    assert invoked["status"] == "200" and pd.isna(invoked["exit_code"])
    assert str(seed["exit_code"].dtype) == "Int64"


def test_an_exit_event_without_a_code_says_it_was_not_reported(seed_frames: dict[str, pd.DataFrame]) -> None:
    """fly-go omits a zero exit_code: the timeline says "exit code not reported" and leaves the field null."""
    events = seed_frames["machine_events"].copy()
    events.loc[events["type"] == "exit", "exit_code"] = pd.NA
    tl = build_timeline(**{**seed_frames, "machine_events": events})
    exit_ = first(tl, "machine.exit", SEED_MACHINE)
    assert "exit code not reported" in exit_["message"] and "code ?" not in exit_["message"]
    assert pd.isna(exit_["exit_code"])


def test_filter_by_machine_uses_the_machine_id_field(seed: pd.DataFrame) -> None:
    """Focusing on a machine keeps its events, its row (by field) and the log lines naming it."""
    focused = filter_timeline(seed, machine_id=SEED_MACHINE)
    assert set(focused["entity_type"]) >= {"machine", "db_row"}
    assert (focused["machine_id"].fillna(SEED_MACHINE) == SEED_MACHINE).all()


# --------------------------------------------------------------------------- secret writes restart functions


@pytest.fixture(scope="module")
def after_secret_write() -> dict[str, pd.DataFrame]:
    """The seed, then an hour later a secret write (every function restarts: version + 1), then ten minutes
    later one function redeployed (version + 1 again, no secret written)."""
    world = World.from_scenario(load_scenario("stub-image"))
    add_function(world, "send-welcome-email")
    world.sleep(3600)
    world.set_secrets([{"name": "UNRELATED_FLAG", "value": "on"}])
    restarted = {fn["slug"] for fn in world.state["supabase"]["functions"]}
    world.sleep(600)
    fn = world.state["supabase"]["functions"][0]
    fn["version"], fn["updated_at"] = int(fn["version"]) + 1, world.now_ms
    frames = fleet_frames(world)
    frames["restarted"] = pd.DataFrame({"slug": sorted(restarted)})
    frames["redeployed"] = pd.DataFrame({"slug": [fn["slug"]]})
    return frames


def timeline_of(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return build_timeline(**{k: v for k, v in frames.items() if k not in ("restarted", "redeployed")})


def test_a_version_bump_at_a_secret_write_reads_as_a_restart_not_a_redeploy(
    after_secret_write: dict[str, pd.DataFrame],
) -> None:
    """Supabase KB: a secret write bumps every function's version; the timeline says so, naming the secret."""
    frames = after_secret_write
    world_fns = set(frames["functions"]["slug"])
    redeployed = set(frames["redeployed"]["slug"])
    assert len(world_fns) >= 2, "the seed needs a second function that only the secret write touched"
    tl = timeline_of(frames)
    restarted = tl[tl["kind"] == "function.restarted"]
    assert set(restarted["entity"]) == world_fns - redeployed
    assert restarted["message"].str.contains("restarted by a secret write (UNRELATED_FLAG)", regex=False).all()
    assert restarted["message"].str.contains("not a redeploy", regex=False).all()
    secret_time = first(tl, "secret.updated", "UNRELATED_FLAG")["time"]
    assert (restarted["time"] == secret_time).all()
    updated = tl[tl["kind"] == "function.updated"]
    assert set(updated["entity"]) == redeployed  # a bump with no secret write stays an update


def test_without_secret_times_a_bump_is_not_called_a_restart(after_secret_write: dict[str, pd.DataFrame]) -> None:
    """``updated_at`` is optional on secrets: with none, nothing says restart (no guess); bumps stay updates."""
    frames = dict(after_secret_write)
    secrets = frames["secrets"].copy()
    secrets["updated_at"] = pd.NaT
    frames["secrets"] = secrets
    tl = timeline_of(frames)
    assert "function.restarted" not in set(tl["kind"])
    assert set(tl.loc[tl["kind"] == "function.updated", "entity"]) == set(frames["functions"]["slug"])

"""Detectors and ranking on stories no shipped scenario tells."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from vyxops.testing.runs import finding_codes as codes
from vyxops.testing.runs import investigate_scenario

HERE = Path(__file__).parent / "scenarios"


run = functools.partial(investigate_scenario, scenarios=HERE)


def test_two_apps_only_the_broken_one_has_a_root_cause(tmp_path: Path) -> None:
    """With two apps in one project, the app whose :latest is missing gets LATEST_TAG_MISSING; the other none."""
    beta = run(tmp_path, "two-apps-only-beta-broken", "beta-app")
    assert beta.root.code == "LATEST_TAG_MISSING"
    assert codes(beta) == {"LATEST_TAG_MISSING", "MACHINE_CREATE_REJECTED"}
    assert "registry.fly.io/beta-app:latest" in beta.summary
    alpha = run(tmp_path, "two-apps-only-beta-broken", "alpha-app")
    assert alpha.root is None and not any(f.severity == "critical" for f in alpha.findings)


def test_only_the_machines_that_failed_are_named(tmp_path: Path) -> None:
    """When some machines ran and later ones exited, only the later ones get exit findings, with their exit code."""
    inv = run(tmp_path, "some-machines-failed", "gamma-app")
    assert inv.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
    exited = [f for f in inv.findings if f.code == "MACHINE_EXITED_AUTO_DESTROYED"]
    machines = inv.evidence.machines.set_index("machine_id")
    assert len(exited) == 2
    for f in exited:
        mid = f.entity.split(":")[1]
        assert machines.loc[mid, "image"] == "registry.fly.io/gamma-app:debug"
        assert f.facts["code"] == 3
    running = machines[machines["state"] == "started"]
    assert len(running) == 2 and not any(f.entity.endswith(m) for f in inv.findings for m in running.index)
    assert "registry.fly.io/gamma-app:debug" in inv.summary and "code 3" in inv.summary


def test_incident_fixed_midway_is_history_with_a_leftover_row(tmp_path: Path) -> None:
    """Once the secret is pinned and a later session works, the old failure is info "resolved at", its row a warning."""
    inv = run(tmp_path, "fixed-midway", "delta-app")
    assert "SECRET_IMAGE_NOT_CURRENT_RELEASE" not in codes(inv)
    assert inv.root is None and inv.verdict == "healthy"
    old = next(f for f in inv.findings if f.code == "MACHINE_EXITED_AUTO_DESTROYED")
    assert old.entity == "machine:0a1b2c3d4e5f60" and old.severity == "info"
    assert "resolved at 2025-10-02 17:35" in old.title
    stuck = [f for f in inv.findings if f.code == "DB_STATUS_STUCK"]
    assert [f.facts["row"]["machine_id"] for f in stuck] == ["0a1b2c3d4e5f60"]
    assert stuck[0].severity == "warning" and "RECONCILE_STUCK_ROWS" in stuck[0].fixes
    assert "history" in inv.summary and "0a1b2c3d4e5f60" in inv.summary


def test_row_already_marked_failed_is_not_stuck(tmp_path: Path) -> None:
    """A row someone already marked failed is not reported stuck, and the crash is still named with its code."""
    inv = run(tmp_path, "stuck-row-cleaned-up", "api-app")
    assert "DB_STATUS_STUCK" not in codes(inv)
    assert inv.root.code == "MACHINE_EXITED_AUTO_DESTROYED" and inv.root.facts["code"] == 137
    assert "own image" in inv.summary


def test_stuck_threshold_is_a_parameter(tmp_path: Path) -> None:
    """A row 66 minutes in `starting` is stuck at the default threshold and not at a 120-minute one."""
    assert "DB_STATUS_STUCK" in codes(run(tmp_path, "../../vyxops/scenarios/stub-image", "vyx-app"))
    relaxed = run(tmp_path, "../../vyxops/scenarios/stub-image", "vyx-app", stuck_after_minutes=120)
    assert "DB_STATUS_STUCK" not in codes(relaxed)
    assert relaxed.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE"


def test_machine_focus_keeps_its_story(tmp_path: Path) -> None:
    """Investigating one machine keeps its findings and drops the other machines'."""
    inv = run(tmp_path, "some-machines-failed", "gamma-app")
    target = next(f.entity.split(":")[1] for f in inv.findings if f.code == "MACHINE_EXITED_AUTO_DESTROYED")
    focused = run(tmp_path, "some-machines-failed", "gamma-app", machine_id=target)
    ents = {f.entity for f in focused.findings if f.code == "MACHINE_EXITED_AUTO_DESTROYED"}
    assert ents == {f"machine:{target}"}
    assert set(focused.timeline["entity"]) & {target}


def test_seed_summary_never_claims_the_stub_tag_is_missing(tmp_path: Path) -> None:
    """The seed's root cause says the stub exists and the machine exited 0, never that the tag is missing."""
    inv = run(tmp_path, "../../vyxops/scenarios/stub-image", "vyx-app")
    assert inv.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
    text = inv.summary
    for needle in (
        "registry.fly.io/vyx-app:stub",
        "deployment-01K6JV132H7B7Y5PP8Y5QSR23X",
        "5683732efe3208",
        "code 0",
        "auto_destroy",
        "starting",
        "v2",
    ):
        assert needle in text, needle
    assert "IMAGE_TAG_MISSING" not in codes(inv)
    assert "does not exist" not in text and "exists in the registry" in text


def test_stale_latest_is_a_warning_not_a_root_cause(tmp_path: Path) -> None:
    """:latest still on v1 while v2 is current is LATEST_TAG_STALE (warning); nothing failed, so no root cause."""
    inv = run(tmp_path, "latest-stale", "eps-app")
    assert codes(inv) == {"LATEST_TAG_STALE"}
    assert inv.root is None and inv.findings[0].severity == "warning"
    assert "TAG_LATEST" in inv.findings[0].fixes


def test_secret_matching_no_known_reference_is_said_not_guessed(tmp_path: Path) -> None:
    """A DOCKER_IMAGE digest that matches no candidate gives SECRET_DIGEST_UNMATCHED and names no image."""
    inv = run(tmp_path, "secret-unmatched", "zeta-app")
    unmatched = [f for f in inv.findings if f.code == "SECRET_DIGEST_UNMATCHED"]
    assert len(unmatched) == 1 and unmatched[0].severity == "warning"
    assert "ghcr.io" not in str(unmatched[0].evidence)  # the value is unknown to vyxops: only its digest is
    assert "SECRET_IMAGE_NOT_CURRENT_RELEASE" not in codes(inv)
    assert inv.root is None


LEDGER_STORIES = {
    # name: (machine metadata, its events as (ms, type, status, source, exit_code, requested_stop), row status)
    "worker_exit_0": ({}, [(1, "launch", "created", "user", None, None), (2, "start", "started", "flyd", None, None),
                           (3, "exit", "stopped", "flyd", 0, None)], None, "exited_ok"),
    "empty_user_id_is_no_user": ({"user_id": ""}, [(1, "launch", "created", "user", None, None),
                                                   (2, "start", "started", "flyd", None, None),
                                                   (3, "exit", "stopped", "flyd", None, None)], None, "exited_ok"),
    "session_ended": ({"user_id": "u1"}, [(1, "launch", "created", "user", None, None),
                                          (2, "start", "started", "flyd", None, None),
                                          (3, "exit", "stopped", "flyd", 0, None)], "stopped", "ended"),
    "user_exit_1": ({"user_id": "u1"}, [(1, "launch", "created", "user", None, None),
                                        (2, "start", "started", "flyd", None, None),
                                        (3, "exit", "stopped", "flyd", 1, None)], "running", "exited"),
    "asked_to_stop": ({"user_id": "u1"}, [(1, "launch", "created", "user", None, None),
                                          (2, "start", "started", "flyd", None, None),
                                          (3, "exit", "stopped", "flyd", 1, True)], "running", "stopped_on_request"),
    "never_started_destroyed_by_user": ({"user_id": "u1"}, [(1, "launch", "created", "user", None, None),
                                                            (2, "destroy", "destroyed", "user", None, None)],
                                        None, "stopped_on_request"),
    "release_command_ok": ({"fly_process_group": "fly_app_release_command"},
                           [(1, "launch", "created", "user", None, None), (2, "start", "started", "flyd", None, None),
                            (3, "exit", "stopped", "flyd", 0, None)], None, "internal_ok"),
}  # fmt: skip


@pytest.mark.parametrize("story", sorted(LEDGER_STORIES))
def test_the_ledger_tells_each_machine_lifecycle_apart(story: str) -> None:
    """Outcomes from who made a machine and what its events and row say, never from "exited" alone;
    an empty user_id in the metadata is no user (facts.machine_origin), so its clean exit is no failure."""
    import pandas as pd

    from vyxops.analysis.detect.ledger import build_ledger
    from vyxops.core.contract import SEED
    from vyxops.fetch.frames import make_frame

    metadata, events, row_status, expected = LEDGER_STORIES[story]
    at = "2025-10-02T16:00:00Z"
    machine = {"app": "a", "machine_id": "m1", "state": "stopped", "created_at": at,
               "process_group": metadata.get("fly_process_group"), "user_id": metadata.get("user_id")}  # fmt: skip
    machines = make_frame("machines", [machine])
    base = 1_759_420_800_000  # 2025-10-02T16:00:00Z in ms
    event_rows = [
        {"app": "a", "machine_id": "m1", "time": base + s * 1000, "type": kind, "status": status, "source": source,
         "exit_code": code, "requested_stop": asked}
        for s, kind, status, source, code, asked in events
    ]  # fmt: skip
    role = SEED.status.role(row_status)
    rows = [{"id": "r1", "machine_id": "m1", "status": row_status, "role": role, "created_at": at, "updated_at": at}]
    ledger = build_ledger(
        machines,
        make_frame("machine_events", event_rows, units={"time": "ms"}),
        make_frame("machine_rows", rows if row_status else []),
        pd.Timestamp("2025-10-02T17:00:00Z"),
        present=True,
    )
    assert ledger.loc[0, "outcome"] == expected

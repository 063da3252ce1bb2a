"""The sandbox's state has one owner at a time: no process writes an older state over a newer one."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from vyxops.act.fixes import apply_plan, plan_fixes
from vyxops.analysis.investigate import investigate
from vyxops.fetch.session import open_session
from vyxops_sandbox.server import make_server
from vyxops_sandbox.statefile import StaleState
from vyxops_sandbox.world import World

RELEASE_V2 = "registry.fly.io/vyx-app:deployment-01K6JV132H7B7Y5PP8Y5QSR23X"


def secret_on_disk(directory: Path) -> str | None:
    state = json.loads((directory / "state.json").read_text())
    return state["supabase"]["secrets"].get("DOCKER_IMAGE", {}).get("value")


def test_a_served_copy_picks_up_a_fix_and_never_undoes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`vyxops sandbox serve` runs as the CLI pins the secret: its next answer shows the pin; state.json keeps it."""
    directory = tmp_path / "sandbox"
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    served = World.load("stub-image", directory)
    server = make_server(served, port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://%s:%d" % server.server_address[:2]
    try:
        token = served.credentials["supabase_access_token"]
        ref = served.credentials["project_ref"]
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}) as c:
            c.get(f"/v1/projects/{ref}/secrets")  # the served copy reads (and saves) its state
            with open_session("sandbox", scenario="stub-image", sandbox_dir=directory) as s:  # another process
                plan = plan_fixes(investigate(s, "vyx-app"), fixes=["PIN_SECRET_TO_RELEASE"])
                assert apply_plan(s, plan, dry_run=False, confirm="vyx-app", app="vyx-app").ok
            assert secret_on_disk(directory) == RELEASE_V2
            c.get(f"/v1/projects/{ref}/secrets")  # the served copy answers again, and saves
            assert served.state["supabase"]["secrets"]["DOCKER_IMAGE"]["value"] == RELEASE_V2
        assert secret_on_disk(directory) == RELEASE_V2  # not reverted
    finally:
        server.shutdown()
        server.server_close()


def test_a_process_that_only_waited_adopts_the_newer_state(tmp_path: Path) -> None:
    """An investigation that only moved the clock saves after a fix was applied elsewhere: the fix stays."""
    directory = tmp_path / "sandbox"
    reader = World.load("stub-image", directory)
    writer = World.load("stub-image", directory)
    writer.set_secrets([{"name": "DOCKER_IMAGE", "value": RELEASE_V2}])
    writer.save()
    reader.sleep(30)  # the clock moves: nothing of its own changed
    reader.save()
    assert secret_on_disk(directory) == RELEASE_V2
    assert json.loads((directory / "state.json").read_text())["now_ms"] == reader.now_ms


def test_two_processes_that_both_changed_the_sandbox_do_not_overwrite_each_other(tmp_path: Path) -> None:
    """The second writer of a change is refused (StaleState, exit 2) and the first one's change stays on disk."""
    directory = tmp_path / "sandbox"
    first = World.load("stub-image", directory)
    second = World.load("stub-image", directory)
    first.set_secrets([{"name": "DOCKER_IMAGE", "value": RELEASE_V2}])
    first.save()
    second.unset_secrets(["DOCKER_IMAGE"])
    with pytest.raises(StaleState, match="changed by another process"):
        second.save()
    assert secret_on_disk(directory) == RELEASE_V2


def test_switching_scenario_replaces_the_state_on_purpose(tmp_path: Path) -> None:
    """Loading another scenario over a held one takes its place instead of being refused as stale."""
    directory = tmp_path / "sandbox"
    World.load("stub-image", directory).save()
    other = World.load("healthy", directory)
    assert json.loads((directory / "state.json").read_text())["scenario"]["name"] == "healthy" == other.scenario_name

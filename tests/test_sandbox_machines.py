"""The machine lifecycle of the wider world: process groups, restarts, sessions, requested stops, OOM, releases.

Worlds are replayed from small scenarios; what the Machines API, GraphQL and the
machines table then say is asserted as a client would read it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from vyxops_sandbox import fly_api
from vyxops_sandbox.scenario import parse_scenario
from vyxops_sandbox.world import World

RELEASE = "registry.fly.io/vyx-app:deployment-01K6JV132H7B7Y5PP8Y5QSR23X"
NEXT = "registry.fly.io/vyx-app:deployment-01K6JV9Z0000000000000000000"


def replay(images: str, steps: str, platform: str = "") -> World:
    text = f"""\
name: machines-test
now: 2025-10-02T17:25:00Z
fly: {{org: personal, apps: [vyx-app]}}
supabase: {{project_ref: vyxsandboxprojectref}}
{"platform: " + platform if platform else ""}
images: {{{images}}}
steps:
  - at: 2025-10-02T11:00:00Z
    deploy: {{app: vyx-app, image: {RELEASE}}}
{steps}"""
    return World.from_scenario(parse_scenario(text, "machines-test.yaml"))


def step(at: str, body: str) -> str:
    return f"  - at: 2025-10-02T{at}Z\n    {body}\n"


def get(world: World, path: str, **params: str) -> Any:
    token = world.credentials["fly_api_token"]
    request = httpx.Request(
        "GET", f"https://api.machines.dev{path}", params=params, headers={"authorization": f"Bearer {token}"}
    )
    for handler in (fly_api.handle_machines, fly_api.handle_fly_rest):
        response = handler(world, request)
        if response is not None:
            return response.json()
    raise AssertionError(path)


def machine(world: World, mid: str) -> dict[str, Any]:
    return get(world, f"/v1/apps/vyx-app/machines/{mid}")


def kinds(m: dict[str, Any]) -> list[str]:
    return [e["type"] for e in reversed(m["events"])]  # oldest first


def exits(m: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["request"] for e in reversed(m["events"]) if e["type"] == "exit"]


def row(world: World, mid: str) -> dict[str, Any]:
    return next(r for r in world.table("machines")["rows"] if r["fly_machine_id"] == mid)


def provision(at: str, mid: str, image: str) -> str:
    """Pin DOCKER_IMAGE to ``image`` and invoke provision-machine at the same moment."""
    return step(at, f"set_secret: {{name: DOCKER_IMAGE, value: {image}}}") + step(
        at, f"invoke: {{function: provision-machine, body: {{user_id: u-1}}, machine_id: {mid}}}"
    )


# --------------------------------------------------------------------------- restarts


def test_on_failure_restarts_a_crashing_machine_in_place_up_to_max_retries_then_it_stays_stopped() -> None:
    """restart on-failure, max_retries 3: four exits with restart_count 0..3, a start after each of the first three."""
    world = replay(
        "registry.fly.io/vyx-app:crash: {behaviour: crash, exit_code: 2, after_s: 1}",
        step("12:00:00", "create_machine: {app: vyx-app, image: registry.fly.io/vyx-app:crash, "
             "restart: {policy: on-failure, max_retries: 3}, machine_id: cccccccccccccc}"),
    )  # fmt: skip
    m = machine(world, "cccccccccccccc")
    assert kinds(m) == ["launch", "start", "exit", "start", "exit", "start", "exit", "start", "exit"]
    assert [r["restart_count"] for r in exits(m)] == [0, 1, 2, 3]
    assert [r["exit_event"]["restarting"] for r in exits(m)] == [True, True, True, False]
    assert all(r["exit_event"]["exit_code"] == 2 for r in exits(m))
    assert m["state"] == "stopped" and m["config"]["restart"] == {"policy": "on-failure", "max_retries": 3}


def test_on_failure_does_not_restart_a_clean_exit() -> None:
    """on-failure restarts only a non-zero exit: exit 0 leaves the machine stopped after one run."""
    world = replay(
        "registry.fly.io/vyx-app:job: {behaviour: exit, exit_code: 0, after_s: 3}",
        step("12:00:00", "create_machine: {app: vyx-app, image: registry.fly.io/vyx-app:job, "
             "restart: {policy: on-failure}, machine_id: cccccccccccccc}"),
    )  # fmt: skip
    assert kinds(machine(world, "cccccccccccccc")) == ["launch", "start", "exit"]


def test_always_restarts_after_a_clean_exit_too() -> None:
    """restart always: every exit, even 0, is followed by a start; the machine is never left stopped by itself."""
    world = replay(
        "registry.fly.io/vyx-app:job: {behaviour: exit, exit_code: 0, after_s: 60}",
        step("17:10:00", "create_machine: {app: vyx-app, image: registry.fly.io/vyx-app:job, "
             "restart: {policy: always}, machine_id: cccccccccccccc}"),
    )  # fmt: skip
    m = machine(world, "cccccccccccccc")
    assert kinds(m)[:5] == ["launch", "start", "exit", "start", "exit"]
    assert all(r["exit_event"]["restarting"] for r in exits(m))


def test_a_create_without_a_policy_gets_flyds_default_on_failure() -> None:
    """fly machine run without --restart or --rm sets no policy; flyd restarts failures (on-failure, 10 retries)."""
    world = replay(
        "registry.fly.io/vyx-app:crash: {behaviour: crash, exit_code: 1, after_s: 1}",
        step(
            "12:00:00",
            "create_machine: {app: vyx-app, image: registry.fly.io/vyx-app:crash, machine_id: cccccccccccccc}",
        ),
    )
    m = machine(world, "cccccccccccccc")
    assert "restart" not in m["config"] and len(exits(m)) == 11 and exits(m)[-1]["restart_count"] == 10


# --------------------------------------------------------------------------- sessions, stops, OOM


def test_a_session_that_ends_marks_its_row_stopped_then_exits_0_and_is_destroyed() -> None:
    """serve with session_s: the row goes running, then stopped before a clean exit; auto_destroy removes it."""
    world = replay(
        "registry.fly.io/vyx-app:session: {behaviour: serve, session_s: 600}",
        provision("16:00:00", "dddddddddddddd", "registry.fly.io/vyx-app:session"),
    )
    m = machine(world, "dddddddddddddd")
    assert kinds(m) == ["launch", "start", "exit", "destroy"]
    exit_ev = exits(m)[0]["exit_event"]
    assert exit_ev["exit_code"] == 0 and exit_ev["requested_stop"] is False
    r = row(world, "dddddddddddddd")
    assert r["status"] == "stopped" and r["updated_at"] < m["events"][1]["request"]["exit_event"]["exited_at"].replace(
        "Z", "+00:00"
    )


def test_a_requested_stop_marks_the_row_stopped_and_the_exit_says_requested_stop() -> None:
    """stop_machine: the app (told to stop) writes stopped, the exit says requested_stop: true, auto_destroy follows."""
    world = replay(
        "",
        provision("16:00:00", "dddddddddddddd", RELEASE)
        + step("16:20:00", "stop_machine: {app: vyx-app, machine_id: dddddddddddddd}"),
    )
    m = machine(world, "dddddddddddddd")
    assert kinds(m) == ["launch", "start", "exit", "destroy"]
    assert exits(m)[0]["exit_event"]["requested_stop"] is True
    assert row(world, "dddddddddddddd")["status"] == "stopped"


def test_a_destroy_step_on_a_running_machine_stops_it_as_asked_then_destroys_it() -> None:
    """destroy_machine: requested stop (row stopped, requested_stop: true), then a destroy by the user."""
    world = replay(
        "",
        step("16:00:00", f"create_machine: {{app: vyx-app, image: {RELEASE}, metadata: {{fly_process_group: app}}, "
             "machine_id: eeeeeeeeeeeeee}")
        + step("16:20:00", "destroy_machine: {app: vyx-app, machine_id: eeeeeeeeeeeeee}"),
    )  # fmt: skip
    m = machine(world, "eeeeeeeeeeeeee")
    assert kinds(m) == ["launch", "start", "exit", "destroy"]
    assert exits(m)[0]["exit_event"]["requested_stop"] is True and m["events"][0]["source"] == "user"


def test_an_oom_kill_after_reporting_running_exits_137_with_oom_killed() -> None:
    """crash with oom_killed and reports_running: the row says running, the exit says 137 and oom_killed: true."""
    world = replay(
        "registry.fly.io/vyx-app:hungry: {behaviour: crash, oom_killed: true, reports_running: true, after_s: 40}",
        provision("16:00:00", "ffffffffffffff", "registry.fly.io/vyx-app:hungry"),
    )
    m = machine(world, "ffffffffffffff")
    exit_ev = exits(m)[0]["exit_event"]
    assert (exit_ev["exit_code"], exit_ev["oom_killed"]) == (137, True)
    assert kinds(m) == ["launch", "start", "exit", "destroy"]
    assert row(world, "ffffffffffffff")["status"] == "running"
    messages = [e["message"] for e in world.app("vyx-app")["logs"] if e["instance"] == "ffffffffffffff"]
    assert any("OOM killed" in text for text in messages)


def test_a_console_machine_keeps_its_process_group_metadata() -> None:
    """create_machine metadata {fly_process_group: fly_app_console} is the machine's config metadata."""
    world = replay(
        "",
        step("16:00:00", f"create_machine: {{app: vyx-app, image: {RELEASE}, auto_destroy: true, session_s: 300, "
             "metadata: {fly_process_group: fly_app_console}, machine_id: 0123456789abcd}"),
    )  # fmt: skip
    m = machine(world, "0123456789abcd")
    assert m["config"]["metadata"] == {"fly_process_group": "fly_app_console"}
    assert m["config"]["restart"] == {"policy": "no"} and kinds(m) == ["launch", "start", "exit", "destroy"]
    assert exits(m)[0]["exit_event"]["exit_code"] == 0


# --------------------------------------------------------------------------- releases


def release_machines(world: World) -> list[dict[str, Any]]:
    listed = get(world, "/v1/apps/vyx-app/machines", include_deleted="true")
    return [m for m in listed if m["config"].get("metadata", {}).get("fly_process_group") == "fly_app_release_command"]


def test_a_release_command_runs_on_the_new_image_with_flyctls_metadata_then_is_destroyed() -> None:
    """deploy release_command: true: a machine on the new image (fly_app_release_command, fly_release_version,
    restart no, auto_destroy) exits 0 and is destroyed, and the release completes.

    Pinned from flyctl internal/appconfig/machines.go ToReleaseMachineConfig and
    internal/command/deploy/machines_launchinput.go setMachineReleaseData.
    """
    world = replay("", step("15:00:00", f"deploy: {{app: vyx-app, image: {NEXT}, release_command: true}}"))
    [m] = release_machines(world)
    meta = m["config"]["metadata"]
    assert meta["fly_release_version"] == "2" and meta["fly_platform_version"] == "v2"
    assert m["config"]["image"] == NEXT and m["config"]["env"]["RELEASE_COMMAND"] == "1"
    assert m["config"]["restart"] == {"policy": "no"} and m["config"]["auto_destroy"] is True
    assert kinds(m) == ["launch", "start", "exit", "destroy"] and exits(m)[0]["exit_event"]["exit_code"] == 0
    releases = get(world, "/api/v1/apps/vyx-app/releases")["releases"]
    assert [(r["version"], r["status"], r["image_ref"]) for r in releases] == [
        (2, "complete", NEXT),
        (1, "complete", RELEASE),
    ]


def test_a_failed_release_command_fails_the_release_so_its_image_is_not_current() -> None:
    """A non-zero release command aborts the deploy: the release ends failed and the current release stays v1.

    flyctl creates the release before the command and sets it 'failed' after
    (internal/command/deploy/machines.go createReleaseInBackend, machines_deploymachinesapp.go).
    """
    world = replay(
        "", step("15:00:00", f"deploy: {{app: vyx-app, image: {NEXT}, release_command: {{exit_code: 1, after_s: 4}}}}")
    )
    [m] = release_machines(world)
    assert exits(m)[0]["exit_event"]["exit_code"] == 1 and m["state"] == "destroyed"
    current = get(world, "/api/v1/apps/vyx-app/releases/current")
    assert (current["version"], current["image_ref"]) == (1, RELEASE)
    assert get(world, "/api/v1/apps/vyx-app/releases")["releases"][0]["status"] == "failed"


def test_a_release_is_running_until_its_release_command_is_done() -> None:
    """While the command runs the release is in progress and not current."""
    world = replay("", step("17:24:55", f"deploy: {{app: vyx-app, image: {NEXT}, release_command: {{after_s: 30}}}}"))
    newest = get(world, "/api/v1/apps/vyx-app/releases")["releases"][0]
    assert (newest["version"], newest["in_progress"]) == (2, True)
    assert get(world, "/api/v1/apps/vyx-app/releases/current")["version"] == 1


def test_a_release_may_carry_no_image_and_a_rollback_repeats_an_old_image() -> None:
    """image_ref: false records imageRef null (REST ""); deploying an old image again repeats it (a rollback)."""
    world = replay(
        "",
        step("15:00:00", f"deploy: {{app: vyx-app, image: {NEXT}, image_ref: false}}")
        + step("16:00:00", f"deploy: {{app: vyx-app, image: {RELEASE}}}"),
    )
    nodes = world.app("vyx-app")["releases"]
    assert [(r["version"], r["imageRef"]) for r in nodes] == [(3, RELEASE), (2, None), (1, RELEASE)]
    rest = get(world, "/api/v1/apps/vyx-app/releases")["releases"]
    assert rest[1]["image_ref"] == ""


@pytest.mark.parametrize("when", ["exit", "restart"])
def test_wait_follows_a_restarting_machine(when: str) -> None:
    """GET …/wait?state=stopped jumps the clock through restarts to the final stop (on-failure, 1 retry)."""
    world = replay(
        "registry.fly.io/vyx-app:crash: {behaviour: crash, exit_code: 3, after_s: 2}",
        step("17:24:58", "create_machine: {app: vyx-app, image: registry.fly.io/vyx-app:crash, "
             "restart: {policy: on-failure, max_retries: 1}, machine_id: cccccccccccccc}"),
    )  # fmt: skip
    status, body = world.wait_machine("vyx-app", "cccccccccccccc", "started" if when == "restart" else "stopped", 60)
    assert status == 200
    if when == "exit":
        assert body["state"] == "stopped"


def test_a_second_machine_with_a_taken_id_is_refused_and_the_first_keeps_its_history() -> None:
    """World.create_machine with an id already used raises DuplicateMachine; the first machine is untouched."""
    from vyxops_sandbox.world import DuplicateMachine

    world = replay(
        "", step("16:00:00", f"create_machine: {{app: vyx-app, image: {RELEASE}, machine_id: 0a0a0a0a0a0a0a}}")
    )
    before = machine(world, "0a0a0a0a0a0a0a")
    with pytest.raises(DuplicateMachine, match="0a0a0a0a0a0a0a"):
        world.create_machine("vyx-app", {"image": NEXT}, machine_id="0a0a0a0a0a0a0a")
    assert machine(world, "0a0a0a0a0a0a0a") == before

"""The wider world's scenarios hold the facts their header comments tell (events, rows, logs, API answers).

One test per story: shipped ones (``vyxops/scenarios``) by name, unseen ones from
``tests/scenarios``. Each replays the story and asks the sandbox what a client would
read. What vyxops should conclude from it is the detectors' business, not this file's.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from vyxops.core.timeutil import parse_rfc3339_ms
from vyxops_sandbox.router import SandboxApp, SandboxTransport
from vyxops_sandbox.scenario import load_scenario
from vyxops_sandbox.world import World

UNSEEN = Path(__file__).parent / "scenarios"


def replay(name: str) -> World:
    return World.from_scenario(load_scenario(name if "/" in name else UNSEEN / f"{name}.yaml"))


def shipped(name: str) -> World:
    return World.from_scenario(load_scenario(name))


@contextmanager
def api(world: World) -> Iterator[httpx.Client]:
    """A client at the sandbox with the scenario's own Fly token (Bearer or FlyV1, as the token says)."""
    token = world.credentials["fly_api_token"]
    auth = token if token.startswith("FlyV1 ") else f"Bearer {token}"
    transport = SandboxTransport(SandboxApp(world))
    with httpx.Client(transport=transport, base_url="https://sandbox.test", headers={"authorization": auth}) as c:
        yield c


def machines(world: World, app: str) -> dict[str, dict[str, Any]]:
    with api(world) as c:
        listed = c.get(f"/v1/apps/{app}/machines", params={"include_deleted": "true"}).json() or []
    return {m["id"]: m for m in listed}


def kinds(m: dict[str, Any]) -> list[str]:
    return [e["type"] for e in reversed(m["events"] or [])]


def exit_requests(m: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["request"] for e in reversed(m["events"] or []) if e["type"] == "exit"]


def rows(world: World) -> dict[str, str]:
    table = world.table(world.state["supabase"]["machines_table"])
    assert table is not None
    return {r["fly_machine_id"]: r["status"] for r in table["rows"]}


def group(m: dict[str, Any]) -> str | None:
    return ((m.get("config") or {}).get("metadata") or {}).get("fly_process_group")


def console_lines(world: World) -> str:
    return "\n".join(r["event_message"] for r in world.state["supabase"]["logs"] if r["source"] == "function_logs")


def registry_get(world: World, path: str) -> httpx.Response:
    password = world.credentials["fly_registry_password"]
    auth = "Basic " + base64.b64encode(f"x:{password}".encode()).decode()
    with httpx.Client(transport=SandboxTransport(SandboxApp(world)), base_url="https://registry.fly.io") as c:
        return c.get(path, headers={"authorization": auth})


# --------------------------------------------------------------------------- shipped: healthy noise


def test_healthy_noise_has_every_kind_of_intended_exit() -> None:
    """healthy-noise: two release commands exit 0, a console and ended sessions exit 0, a requested stop, restarts."""
    world = shipped("healthy-noise")
    ms = machines(world, "vyx-app")
    release = [m for m in ms.values() if group(m) == "fly_app_release_command"]
    assert [m["config"]["metadata"]["fly_release_version"] for m in release] == ["1", "2"]
    assert all(kinds(m) == ["launch", "start", "exit", "destroy"] for m in release)
    assert group(ms["1a2b3c4d5e6f02"]) == "fly_app_console" and ms["1a2b3c4d5e6f02"]["state"] == "destroyed"
    assert exit_requests(ms["1a2b3c4d5e6f04"])[0]["exit_event"]["requested_stop"] is True
    sweeper = exit_requests(ms["1a2b3c4d5e6f05"])
    assert len(sweeper) >= 3 and all(
        r["exit_event"]["exit_code"] == 0 and r["exit_event"]["restarting"] for r in sweeper
    )
    assert [r["restart_count"] for r in sweeper] == list(range(len(sweeper)))
    assert rows(world) == {
        "1a2b3c4d5e6f01": "stopped",
        "1a2b3c4d5e6f03": "stopped",
        "1a2b3c4d5e6f04": "stopped",
        "1a2b3c4d5e6f06": "running",
    }
    assert [r["status"] for r in world.app("vyx-app")["releases"]] == ["complete", "complete"]


def test_healthy_go_null_lists_answers_null_for_the_idle_app() -> None:
    """healthy-go-null-lists: the idle app's machines list is null; the machine made without metadata has null."""
    world = shipped("healthy-go-null-lists")
    with api(world) as c:
        assert c.get("/v1/apps/vyx-idle/machines").json() is None
        bare = c.get("/v1/apps/vyx-app/machines/2b2b2b2b2b2b01").json()
    assert bare["config"]["metadata"] is None and rows(world) == {"2b2b2b2b2b2b02": "running"}


def test_rollback_after_a_crashing_release_repeats_an_image_and_ends_without_one() -> None:
    """rollback-after-a-crashing-release: v1 and v3 carry one image, v4 none; the v2 machine crashed, v3's runs."""
    world = shipped("rollback-after-a-crashing-release")
    releases = world.app("vyx-app")["releases"]
    images = {r["version"]: r["imageRef"] for r in releases}
    assert images[1] == images[3] and images[2] != images[1] and images[4] is None
    ms = machines(world, "vyx-app")
    assert exit_requests(ms["4d4d4d4d4d4d01"])[0]["exit_event"]["exit_code"] == 1
    assert ms["4d4d4d4d4d4d02"]["state"] == "started"
    assert rows(world) == {"4d4d4d4d4d4d01": "starting", "4d4d4d4d4d4d02": "running"}


# --------------------------------------------------------------------------- shipped: one per platform key


@pytest.mark.parametrize(
    "name",
    [
        "stub-image-secrets-without-updated-at",
        "stub-image-sb-secret-key",
        "stub-image-macaroon-token",
        "stub-image-exit-code-not-reported",
        "stub-image-free-plan-late",
    ],
)
def test_the_seed_story_holds_on_every_platform_variant(name: str) -> None:
    """The seed's facts hold on each variant: the stub machine started, exited, was destroyed; its row is starting."""
    world = shipped(name)
    ms = machines(world, "vyx-app")
    assert kinds(ms["5683732efe3208"]) == ["launch", "start", "exit", "destroy"]
    assert rows(world) == {"5683732efe3208": "starting"}


def test_secrets_without_updated_at_story_lists_no_times() -> None:
    """stub-image-secrets-without-updated-at: the secrets list has name and value only."""
    world = shipped("stub-image-secrets-without-updated-at")
    with api(world) as c:
        token = world.credentials["supabase_access_token"]
        secrets = c.get(
            f"/v1/projects/{world.credentials['project_ref']}/secrets", headers={"authorization": f"Bearer {token}"}
        ).json()
    assert all(set(s) == {"name", "value"} for s in secrets)


def test_sb_secret_story_refuses_the_key_as_a_bearer_at_the_function() -> None:
    """stub-image-sb-secret-key: provision-machine (verify_jwt) answers 401 Invalid JWT to the sb_secret key."""
    world = shipped("stub-image-sb-secret-key")
    key = world.credentials["supabase_service_role_key"]
    with api(world) as c:
        r = c.post(
            "/functions/v1/provision-machine", json={"user_id": "probe"}, headers={"authorization": f"Bearer {key}"}
        )
    assert key.startswith("sb_secret_") and r.status_code == 401 and r.json()["message"] == "Invalid JWT"


def test_macaroon_story_answers_the_stub_head_for_the_bundle_password() -> None:
    """stub-image-macaroon-token: the registry answers the stub manifest for the token without 'FlyV1 '."""
    world = shipped("stub-image-macaroon-token")
    assert world.credentials["fly_api_token"].startswith("FlyV1 fm2_")
    response = registry_get(world, "/v2/vyx-app/manifests/stub")
    assert response.status_code == 200 and response.headers["docker-content-digest"].startswith("sha256:")


def test_exit_code_not_reported_story_has_no_exit_code_in_its_exit_event() -> None:
    """stub-image-exit-code-not-reported: the exit event leaves out exit_code 0 (omitempty)."""
    [request] = exit_requests(machines(shipped("stub-image-exit-code-not-reported"), "vyx-app")["5683732efe3208"])
    assert "exit_code" not in request["exit_event"] and "oom_killed" not in request["exit_event"]


def test_free_plan_late_story_has_no_function_logs_left_for_the_incident() -> None:
    """stub-image-free-plan-late: two days on, Free's one day of logs holds nothing of the 16:18 invocation."""
    world = shipped("stub-image-free-plan-late")
    with api(world) as c:
        answer = c.get(
            f"/v1/projects/{world.credentials['project_ref']}/analytics/endpoints/logs",
            params={
                "sql": "select id from logs where source = 'function_edge_logs'",
                "iso_timestamp_start": "2025-10-02T16:00:00Z",
                "iso_timestamp_end": "2025-10-02T17:00:00Z",
            },
            headers={"authorization": f"Bearer {world.credentials['supabase_access_token']}"},
        ).json()
    assert answer == {"result": [], "error": None}
    assert "5683732efe3208" in console_lines(world)  # the state holds them; the plan hides them


def test_destroyed_without_destroy_event_story_has_one_machine_gone_and_one_without_the_event() -> None:
    """destroyed-machine-without-destroy-event: the morning machine is 404, the afternoon one lacks a destroy event."""
    world = shipped("destroyed-machine-without-destroy-event")
    ms = machines(world, "vyx-app")
    assert list(ms) == ["7a7a7a7a7a7a02"]
    assert ms["7a7a7a7a7a7a02"]["state"] == "destroyed" and kinds(ms["7a7a7a7a7a7a02"]) == ["launch", "start", "exit"]
    with api(world) as c:
        assert c.get("/v1/apps/vyx-app/machines/7a7a7a7a7a7a01").status_code == 404
    assert rows(world) == {"7a7a7a7a7a7a01": "starting", "7a7a7a7a7a7a02": "starting"}


def test_repository_the_token_cannot_see_story_is_401_for_the_stub_and_the_machine_ran_it() -> None:
    """stub-image-in-repository-the-token-cannot-see: vyx-base:stub is 401 to the deploy token; the create used it."""
    world = shipped("stub-image-in-repository-the-token-cannot-see")
    response = registry_get(world, "/v2/vyx-base/manifests/stub")
    assert response.status_code == 401 and response.json()["errors"][0]["message"] == "not allowed"
    m = machines(world, "vyx-app")["3c3c3c3c3c3c01"]
    assert m["config"]["image"] == "registry.fly.io/vyx-base:stub" and kinds(m)[-1] == "destroy"


# --------------------------------------------------------------------------- unseen stories


def test_release_oom_killed_after_reporting_running() -> None:
    """Each machine reported running, then exited 137 with oom_killed and was destroyed; rows still say running."""
    world = replay("release-oom-killed-after-reporting-running")
    ms = machines(world, "media-app")
    for mid in ("5e5e5e5e5e5e01", "5e5e5e5e5e5e02"):
        [request] = exit_requests(ms[mid])
        assert (request["exit_event"]["exit_code"], request["exit_event"]["oom_killed"]) == (137, True)
        assert ms[mid]["state"] == "destroyed"
    assert set(rows(world).values()) == {"running"}


def test_pull_failed_then_tag_deleted_later() -> None:
    """The launch failed at 11:47 (never started); the tag was deleted at 13:50 and now answers MANIFEST_UNKNOWN."""
    world = replay("pull-failed-then-tag-deleted-later")
    m = machines(world, "render-app")["6f6f6f6f6f6f01"]
    assert kinds(m) == ["launch", "launch_failed", "destroy"]
    failed_at = next(e["timestamp"] for e in m["events"] if e["type"] == "launch_failed")
    tag = "deployment-01KQY87XM0H2K4M6P8R0T2V4X6"
    response = registry_get(world, f"/v2/render-app/manifests/{tag}")
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert failed_at < parse_rfc3339_ms("2026-05-06T13:50:00Z")  # the deletion: the failure came first
    assert rows(world) == {"6f6f6f6f6f6f01": "starting"}


def test_latest_overwritten_with_a_stub_used_by_provisioning() -> None:
    """:latest moved to a stub at 13:10: the morning machine runs v2, the afternoon machines ran the stub and exited."""
    world = replay("latest-overwritten-with-a-stub-used-by-provisioning")
    ms = machines(world, "notes-app")
    release_digest = world.resolve_image("registry.fly.io/notes-app:deployment-01KS2D8BM0J9K8M7N6P5Q4R3S2")[2]
    latest_digest = world.resolve_image("registry.fly.io/notes-app:latest")[2]
    assert release_digest != latest_digest
    assert ms["7b7b7b7b7b7b01"]["image_ref"]["digest"] == release_digest and ms["7b7b7b7b7b7b01"]["state"] == "started"
    for mid in ("7b7b7b7b7b7b02", "7b7b7b7b7b7b03"):
        assert ms[mid]["image_ref"]["digest"] == latest_digest and kinds(ms[mid])[-1] == "destroy"
    assert "DOCKER_IMAGE" not in world.state["supabase"]["secrets"]


def test_secret_names_a_typoed_repository() -> None:
    """Three refused creates logged with NAME_UNKNOWN; no machine, no row; the registry says NAME_UNKNOWN too."""
    world = replay("secret-names-a-typoed-repository")
    assert machines(world, "vyx-app") == {} and rows(world) == {}
    assert console_lines(world).count("vyx-ap:deployment-01KT3RZAM0K1M3P5R7T9V1X3Z5: NAME_UNKNOWN") == 3
    edge = [r for r in world.state["supabase"]["logs"] if r["source"] == "function_edge_logs"]
    assert [r["log_attributes"]["response.status_code"] for r in edge] == ["500", "500", "500"]
    response = registry_get(world, "/v2/vyx-ap/manifests/deployment-01KT3RZAM0K1M3P5R7T9V1X3Z5")
    assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_healthy_app_deploys_with_release_command() -> None:
    """Two release-command machines exited 0 and were destroyed; both releases complete; user machines run."""
    world = replay("healthy-app-deploys-with-release-command")
    ms = machines(world, "ledger-app")
    release = [m for m in ms.values() if group(m) == "fly_app_release_command"]
    assert len(release) == 2 and all(exit_requests(m)[0]["exit_event"]["exit_code"] == 0 for m in release)
    assert [r["status"] for r in world.app("ledger-app")["releases"]] == ["complete", "complete"]
    assert set(rows(world).values()) == {"running"}


def test_user_sessions_end_normally() -> None:
    """Three sessions ended: rows stopped, exits 0 not requested, machines destroyed; the fourth runs."""
    world = replay("user-sessions-end-normally")
    ms = machines(world, "class-app")
    for mid in ("8c8c8c8c8c8c01", "8c8c8c8c8c8c02", "8c8c8c8c8c8c03"):
        [request] = exit_requests(ms[mid])
        assert request["exit_event"]["exit_code"] == 0 and request["exit_event"]["requested_stop"] is False
        assert kinds(ms[mid])[-1] == "destroy"
    assert rows(world)["8c8c8c8c8c8c04"] == "running" and list(rows(world).values()).count("stopped") == 3


def test_machine_keeps_restarting_on_failure() -> None:
    """The worker exited 11 times with code 1, restart_count 0..10, and is stopped after max_retries."""
    world = replay("machine-keeps-restarting-on-failure")
    m = machines(world, "queue-app")["9d9d9d9d9d9d01"]
    requests = exit_requests(m)
    assert [r["restart_count"] for r in requests] == list(range(11))
    assert [r["exit_event"]["restarting"] for r in requests] == [True] * 10 + [False]
    assert m["state"] == "stopped" and kinds(m).count("start") == 11


def test_outage_function_logs_aged_out_free_plan() -> None:
    """Free plan: yesterday's refusals are gone from the logs endpoint; no machine, no row; the secret names the tag."""
    world = replay("outage-function-logs-aged-out-free-plan")
    assert machines(world, "worker-app") == {} and rows(world) == {}
    assert console_lines(world).count("MANIFEST_UNKNOWN") == 3  # held by the state, hidden by the plan
    with api(world) as c:
        answer = c.get(
            f"/v1/projects/{world.credentials['project_ref']}/analytics/endpoints/logs",
            params={
                "sql": "select id from logs where source = 'function_logs'",
                "iso_timestamp_start": "2026-06-02T13:00:00Z",
                "iso_timestamp_end": "2026-06-02T19:00:00Z",
            },
            headers={"authorization": f"Bearer {world.credentials['supabase_access_token']}"},
        ).json()
    assert answer == {"result": [], "error": None}

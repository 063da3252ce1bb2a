"""The ``platform:`` block: what each key changes in the sandbox's API answers (PLATFORM.md "What the real world adds").

Every test builds a small world in memory and asks it over HTTP at the real paths,
through the same transport a session uses.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from vyxops.core.shapes import is_jwt
from vyxops_sandbox.management_api import organization_slug
from vyxops_sandbox.router import SandboxApp, SandboxTransport
from vyxops_sandbox.scenario import parse_scenario
from vyxops_sandbox.world import World

RELEASE = "registry.fly.io/vyx-app:deployment-01K6JV132H7B7Y5PP8Y5QSR23X"
REF = "vyxsandboxprojectref"


def world_for(platform: str = "", steps: str = "", images: str = "", apps: str = "[vyx-app]") -> World:
    """A world with one release, a pinned secret and one provisioned machine, plus ``steps`` and ``platform``."""
    text = f"""\
name: platform-test
now: 2025-10-02T17:25:00Z
fly: {{org: personal, apps: {apps}}}
supabase: {{project_ref: {REF}}}
{"platform: " + platform if platform else ""}
images: {{{images}}}
steps:
  - at: 2025-10-02T11:00:00Z
    deploy: {{app: vyx-app, image: {RELEASE}}}
  - at: 2025-10-02T11:01:00Z
    set_secret: {{name: DOCKER_IMAGE, value: {RELEASE}}}
  - at: 2025-10-02T16:18:40Z
    invoke: {{function: provision-machine, body: {{user_id: u-42}}, machine_id: 5683732efe3208}}
{steps}"""
    return World.from_scenario(parse_scenario(text, "platform-test.yaml"))


@contextmanager
def client(world: World) -> Iterator[httpx.Client]:
    with httpx.Client(transport=SandboxTransport(SandboxApp(world)), base_url="https://sandbox.test") as c:
        yield c


def fly(world: World) -> dict[str, str]:
    token = world.credentials["fly_api_token"]
    return {"authorization": token if token.startswith("FlyV1 ") else f"Bearer {token}"}


def basic(password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"x:{password}".encode()).decode()}


def mgmt(world: World) -> dict[str, str]:
    return {"authorization": f"Bearer {world.credentials['supabase_access_token']}"}


def logs_sql(c: httpx.Client, world: World, start: str, end: str) -> Any:
    sql = "select id, timestamp from logs where source = 'function_edge_logs' order by timestamp"
    params = {"sql": sql, "iso_timestamp_start": start, "iso_timestamp_end": end}
    return c.get(f"/v1/projects/{REF}/analytics/endpoints/logs", params=params, headers=mgmt(world)).json()


# --------------------------------------------------------------------------- Supabase keys and verify_jwt


def test_default_service_key_is_a_legacy_service_role_jwt_that_verify_jwt_passes() -> None:
    """api_key: jwt (the default): the service key is an HS256 JWT with role service_role, and it invokes a function."""
    world = world_for()
    key = world.credentials["supabase_service_role_key"]
    assert is_jwt(key)
    payload = json.loads(base64.urlsafe_b64decode(key.split(".")[1] + "=="))
    assert payload["role"] == "service_role"
    with client(world) as c:
        r = c.post(
            "/functions/v1/provision-machine",
            json={"user_id": "u-7"},
            headers={"apikey": key, "authorization": f"Bearer {key}"},
        )
    assert r.status_code == 200 and r.json()["status"] == "starting"


def test_sb_secret_key_as_bearer_is_refused_by_verify_jwt_before_the_function_runs() -> None:
    """api_key: sb_secret: the key is not a JWT; verify_jwt answers 401 Invalid JWT and the function leaves no log."""
    world = world_for("{supabase: {api_key: sb_secret}}")
    key = world.credentials["supabase_service_role_key"]
    assert key.startswith("sb_secret_") and not is_jwt(key)
    logs_before = len(world.state["supabase"]["logs"])
    with client(world) as c:
        r = c.post(
            "/functions/v1/provision-machine", json={"user_id": "u-7"}, headers={"authorization": f"Bearer {key}"}
        )
        only_apikey = c.post("/functions/v1/provision-machine", json={"user_id": "u-7"}, headers={"apikey": key})
    assert r.status_code == 401 and r.json() == {"code": 401, "message": "Invalid JWT"}
    assert only_apikey.status_code == 401 and only_apikey.json()["message"] == "Missing authorization header"
    assert len(world.state["supabase"]["logs"]) == logs_before
    assert list(world.app("vyx-app")["machines"]) == ["5683732efe3208"]


def test_a_function_without_verify_jwt_runs_for_an_sb_secret_key_in_the_apikey_header() -> None:
    """verify_jwt: false: the relay checks nothing, so the apikey header alone reaches the function."""
    world = world_for("{supabase: {api_key: sb_secret, verify_jwt: false}}")
    with client(world) as c:
        r = c.post(
            "/functions/v1/provision-machine",
            json={"user_id": "u-7"},
            headers={"apikey": world.credentials["supabase_service_role_key"]},
        )
    assert r.status_code == 200


@pytest.mark.parametrize("verify_jwt", [True, False])
def test_the_functions_list_reports_verify_jwt(verify_jwt: bool) -> None:
    """GET /v1/projects/{ref}/functions reports each function's verify_jwt as the scenario set it."""
    world = world_for(f"{{supabase: {{verify_jwt: {str(verify_jwt).lower()}}}}}")
    with client(world) as c:
        fns = c.get(f"/v1/projects/{REF}/functions", headers=mgmt(world)).json()
    assert [(f["slug"], f["verify_jwt"]) for f in fns] == [("provision-machine", verify_jwt)]


def test_postgrest_refuses_an_sb_key_as_bearer_and_takes_it_in_the_apikey_header() -> None:
    """An sb_secret_ key as a Bearer is a 401 PGRST301 (not a JWT); in the apikey header alone it reads rows."""
    world = world_for("{supabase: {api_key: sb_secret}}")
    key = world.credentials["supabase_service_role_key"]
    with client(world) as c:
        bearer = c.get("/rest/v1/machines", headers={"apikey": key, "authorization": f"Bearer {key}"})
        apikey = c.get("/rest/v1/machines", headers={"apikey": key})
    assert bearer.status_code == 401 and bearer.json()["code"] == "PGRST301"
    assert "Expected 3 parts" in bearer.json()["message"]
    assert apikey.status_code == 200 and [r["fly_machine_id"] for r in apikey.json()] == ["5683732efe3208"]


# --------------------------------------------------------------------------- secrets, plan and logs


def test_secrets_leave_out_updated_at_when_the_platform_says_so() -> None:
    """secrets_updated_at: false: SecretResponse items carry only name and value (the spec's required keys)."""
    with_time, without = world_for(), world_for("{supabase: {secrets_updated_at: false}}")
    with client(with_time) as c:
        assert all("updated_at" in s for s in c.get(f"/v1/projects/{REF}/secrets", headers=mgmt(with_time)).json())
    with client(without) as c:
        secrets = c.get(f"/v1/projects/{REF}/secrets", headers=mgmt(without)).json()
    assert secrets and all(set(s) == {"name", "value"} for s in secrets)


@pytest.mark.parametrize(("plan", "days"), [("free", 1), ("pro", 7), ("team", 28), ("enterprise", 90)])
def test_the_project_names_its_organization_whose_plan_sets_log_retention(plan: str, days: int) -> None:
    """GET /v1/projects/{ref} gives organization_slug; GET /v1/organizations/{slug} gives the plan (spec schemas)."""
    world = world_for(f"{{supabase: {{plan: {plan}}}}}")
    assert world.platform.supabase.log_retention_days == days
    with client(world) as c:
        project = c.get(f"/v1/projects/{REF}", headers=mgmt(world)).json()
        org = c.get(f"/v1/organizations/{project['organization_slug']}", headers=mgmt(world)).json()
        other = c.get("/v1/organizations/someone-else", headers=mgmt(world))
    assert project["ref"] == REF and project["organization_slug"] == organization_slug(world)
    assert org["plan"] == plan and other.status_code == 403


def test_free_plan_function_logs_older_than_a_day_are_gone_from_the_logs_endpoint() -> None:
    """plan: free keeps function logs 1 day: an invocation 30 h old is not returned, a recent one is."""
    steps = "  - at: 2025-10-02T17:00:00Z\n    invoke: {function: provision-machine, body: {user_id: u-43}}\n"
    free = world_for("{supabase: {plan: free}}", steps=steps)
    # Move the clock 30 h on: the 16:18 invocation ages out of Free's day, 17:00 too; Pro keeps both.
    pro = world_for(steps=steps)
    for w in (free, pro):
        w.sleep(30 * 3600)
    with client(free) as c:
        gone = logs_sql(c, free, "2025-10-02T16:00:00Z", "2025-10-02T18:00:00Z")
    with client(pro) as c:
        kept = logs_sql(c, pro, "2025-10-02T16:00:00Z", "2025-10-02T18:00:00Z")
    assert gone == {"result": [], "error": None}
    assert len(kept["result"]) == 2


# --------------------------------------------------------------------------- Fly tokens and the registry


def test_macaroon_token_is_a_flyv1_bundle_whose_registry_password_has_no_scheme() -> None:
    """token: macaroon: FLY_API_TOKEN is 'FlyV1 fm2_…,fm2_…'; the registry takes the bundle, not 'FlyV1 <bundle>'."""
    world = world_for("{fly: {token: macaroon}}")
    token = world.credentials["fly_api_token"]
    assert token.startswith("FlyV1 fm2_") and "," in token
    bundle = token.removeprefix("FlyV1 ")
    with client(world) as c:
        assert c.get("/v1/apps/vyx-app/machines", headers={"authorization": token}).status_code == 200
        assert c.head(f"/v2/vyx-app/manifests/{RELEASE.split(':')[-1]}", headers=basic(bundle)).status_code == 200
        with_scheme = c.get("/v2/vyx-app/manifests/latest", headers=basic(token))
    assert with_scheme.status_code == 401 and with_scheme.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_the_default_fly_token_is_a_legacy_token_sent_as_bearer() -> None:
    """token: legacy (the default): no prefix, sent as Bearer, and the registry password is the token itself."""
    world = world_for()
    token = world.credentials["fly_api_token"]
    assert not token.startswith(("FlyV1", "fm1", "fm2")) and token == world.credentials["fly_registry_password"]
    with client(world) as c:
        assert c.get("/v1/apps/vyx-app/machines", headers={"authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/v2/", headers=basic(token)).status_code == 200


def test_a_deploy_token_cannot_see_another_apps_repository() -> None:
    """token_apps: [vyx-app]: another app's repository answers 401 UNAUTHORIZED "not allowed" (HEAD: status only)."""
    world = world_for(
        "{fly: {token_apps: [vyx-app]}}",
        apps="[vyx-app, other-app]",
        images="registry.fly.io/other-app:v1: {behaviour: serve}",
    )
    password = world.credentials["fly_registry_password"]
    with client(world) as c:
        head = c.head("/v2/other-app/manifests/v1", headers=basic(password))
        get = c.get("/v2/other-app/manifests/v1", headers=basic(password))
        own = c.head(f"/v2/vyx-app/manifests/{RELEASE.split(':')[-1]}", headers=basic(password))
    assert head.status_code == 401 and head.content == b""
    assert get.status_code == 401 and get.json()["errors"][0]["message"] == "not allowed"
    assert own.status_code == 200


def test_an_org_token_gets_name_unknown_for_another_orgs_repository_as_for_a_missing_one() -> None:
    """An org token: a repository that holds images but is no app of the org answers as one nobody has.

    PLATFORM.md ("Registry NAME_UNKNOWN"): for a repository outside the token's apps, NAME_UNKNOWN may mean
    "not yours to see" as much as "does not exist"; the two answers cannot be told apart, which is why
    vyxops reads a foreign NAME_UNKNOWN as a gap (tests/test_image_identity.py).
    """
    world = world_for(images="registry.fly.io/shared-base:v1: {behaviour: serve}")
    password = world.credentials["fly_registry_password"]
    with client(world) as c:
        foreign = c.get("/v2/shared-base/manifests/v1", headers=basic(password))
        typo = c.get("/v2/vyx-ap/manifests/v1", headers=basic(password))
    assert foreign.status_code == typo.status_code == 404
    assert foreign.json()["errors"][0]["code"] == typo.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_a_create_naming_a_repository_no_app_has_is_refused_400_name_unknown() -> None:
    """The Machines API checks the image at create: a typo'd repository is a 400 and no machine."""
    world = world_for()
    with client(world) as c:
        r = c.post(
            "/v1/apps/vyx-app/machines",
            json={"config": {"image": "registry.fly.io/vyx-ap:deployment-01K6JV132H7B7Y5PP8Y5QSR23X"}},
            headers=fly(world),
        )
    assert r.status_code == 400
    assert r.json()["error"] == (
        "failed to get manifest registry.fly.io/vyx-ap:deployment-01K6JV132H7B7Y5PP8Y5QSR23X: NAME_UNKNOWN"
    )
    assert list(world.app("vyx-app")["machines"]) == ["5683732efe3208"]


# --------------------------------------------------------------------------- Go's encodings


def test_fly_empty_lists_are_null_like_gos_nil_slices() -> None:
    """empty_as_null: an empty machines list, releases nodes and logs data are null; a machine without metadata too."""
    world = world_for("{fly: {empty_as_null: true}}", apps="[vyx-app, idle-app]")
    world.create_machine("vyx-app", {"image": RELEASE, "auto_destroy": False}, machine_id="aaaaaaaaaaaaaa")
    query = 'query { app(name: "idle-app") { releasesUnprocessed(first: 5) { nodes { id } } } }'
    with client(world) as c:
        machines = c.get("/v1/apps/idle-app/machines", headers=fly(world)).json()
        nodes = c.post("/graphql", json={"query": query}, headers=fly(world)).json()
        logs = c.get("/api/v1/apps/idle-app/logs", headers=fly(world)).json()
        rest = c.get("/api/v1/apps/idle-app/releases", headers=fly(world)).json()
        bare = c.get("/v1/apps/vyx-app/machines/aaaaaaaaaaaaaa", headers=fly(world)).json()
    assert machines is None
    assert nodes["data"]["app"]["releasesUnprocessed"]["nodes"] is None
    assert logs["data"] is None and rest["releases"] is None
    assert bare["config"]["metadata"] is None and bare["image_ref"]["labels"] is None


def test_supabase_empty_lists_are_null_when_the_platform_says_so() -> None:
    """supabase.empty_as_null: a logs query with no rows answers result null (error null too)."""
    world = world_for("{supabase: {empty_as_null: true}}")
    with client(world) as c:
        empty = logs_sql(c, world, "2025-10-02T10:00:00Z", "2025-10-02T11:00:00Z")
    assert empty == {"result": None, "error": None}


def test_exit_events_leave_out_zero_values_under_omitempty() -> None:
    """exit_events: omitempty: a clean exit's event has no exit_code, oom_killed, requested_stop or restart_count."""
    world = world_for(
        "{fly: {exit_events: omitempty}}",
        images="registry.fly.io/vyx-app:stub: {behaviour: exit, exit_code: 0, after_s: 2}",
        steps="  - at: 2025-10-02T16:30:00Z\n"
        "    set_secret: {name: DOCKER_IMAGE, value: registry.fly.io/vyx-app:stub}\n"
        "  - at: 2025-10-02T16:31:00Z\n    invoke: {function: provision-machine, body: {user_id: u-1}, "
        "machine_id: bbbbbbbbbbbbbb}\n",
    )
    with client(world) as c:
        m = c.get("/v1/apps/vyx-app/machines/bbbbbbbbbbbbbb", headers=fly(world)).json()
    request = next(e for e in m["events"] if e["type"] == "exit")["request"]
    assert request == {
        "exit_event": {"exited_at": request["exit_event"]["exited_at"], "guest_signal": -1, "signal": -1}
    }


def test_a_destroyed_machine_may_carry_no_destroy_event() -> None:
    """destroy_events: false: the destroyed machine's state says destroyed, and no event does."""
    world = world_for(
        "{fly: {destroy_events: false}}",
        steps="  - at: 2025-10-02T16:40:00Z\n    destroy_machine: {app: vyx-app, machine_id: 5683732efe3208}\n",
    )
    with client(world) as c:
        m = c.get("/v1/apps/vyx-app/machines/5683732efe3208", headers=fly(world)).json()
    assert m["state"] == "destroyed" and "destroy" not in [e["type"] for e in m["events"]]


def test_destroyed_machines_vanish_from_the_api_after_the_platforms_retention() -> None:
    """destroyed_retention_h: 1: an hour after its destroy a machine is neither listed nor readable by id."""
    world = world_for(
        "{fly: {destroyed_retention_h: 1}}",
        steps="  - at: 2025-10-02T16:40:00Z\n    destroy_machine: {app: vyx-app, machine_id: 5683732efe3208}\n",
    )
    with client(world) as c:
        # 17:25 is 45 min after the destroy: still there
        assert c.get("/v1/apps/vyx-app/machines/5683732efe3208", headers=fly(world)).status_code == 200
        world.sleep(20 * 60)
        gone = c.get("/v1/apps/vyx-app/machines/5683732efe3208", headers=fly(world))
        listed = c.get("/v1/apps/vyx-app/machines", params={"include_deleted": "true"}, headers=fly(world)).json()
    assert gone.status_code == 404 and listed == []


def test_the_sandbox_and_the_product_share_one_is_jwt() -> None:
    """What a JWT looks like has one home (vyxops.core.shapes): the sandbox's verify_jwt and the product's bearer choice
    read the same function, so they cannot disagree on a key's shape."""
    import re
    from pathlib import Path

    import vyxops
    import vyxops_sandbox
    from vyxops_sandbox import supabase_api

    assert supabase_api.is_jwt is is_jwt
    roots = [Path(vyxops.__file__).parent, Path(vyxops_sandbox.__file__).parent]
    homes = [p for r in roots for p in r.rglob("*.py") if re.search(r"^def _?is_jwt\(", p.read_text(), re.M)]
    assert [p.name for p in homes] == ["shapes.py"]

"""Another team's pipeline in the sandbox (SPEC.md "Any team's pipeline", third round).

The `pipeline:` block's validation, the team's function, table and wording as the platforms'
APIs serve them, Fly's refusals (revoked token, rate limit, capacity) with their bodies and
their `until` on the virtual clock, PostgREST's enum refusal and OpenAPI root, and that no
answer of any API hands the block itself to the product. Every answer here goes through the
sandbox's router (`SandboxTransport`), as a session's clients reach it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from vyxops.core.errors import ScenarioError
from vyxops_sandbox.router import SandboxApp, SandboxTransport
from vyxops_sandbox.scenario import parse_scenario
from vyxops_sandbox.world import World

APP = "ws-app"
IMAGE = "registry.fly.io/ws-app:deployment-01K9VM7FW01K0CCH776JA60YJH"
MISSING = "registry.fly.io/ws-app:deployment-01K9VM7FW01K0CCH776JA60YXX"

TEAM = """\
name: ws-team
now: 2025-11-12T12:00:00Z
fly: {org: ws-org, apps: [ws-app]}
supabase: {project_ref: wsteamprojectrefabzz}
pipeline:
  function: spawn-workspace
  image_secret: WORKSPACE_IMAGE
  image_fallback: ""
  table: {name: workspaces, columns: {machine_id: vm_id, app: null, user: owner, image: image_ref, status: state,
          error: null}, status_enum: [provisioning, ready, closed, error]}
  status: {starting: [provisioning], running: [ready], stopped: [closed], failed: [error]}
  invoke: {body: {owner: "{canary_user}", region: "{region}"}, machine_id: vm}
  logs: {created: "spawned vm {machine_id} from {image}", failed: "fly said {status}: {body}"}
  row_on_failure: error
images:
  registry.fly.io/ws-app:deployment-01K9VM7FW01K0CCH776JA60YJH: {behaviour: serve, session_s: 600}
steps:
  - at: 2025-11-12T09:00:00Z
    deploy: {app: ws-app, image: registry.fly.io/ws-app:deployment-01K9VM7FW01K0CCH776JA60YJH}
  - at: 2025-11-12T09:01:00Z
    set_secret: {name: WORKSPACE_IMAGE, value: registry.fly.io/ws-app:deployment-01K9VM7FW01K0CCH776JA60YJH}
  - at: 2025-11-12T10:00:00Z
    invoke: {function: spawn-workspace, body: {owner: u-1, region: ams}, machine_id: 0a0a0a0a0a0a01}
"""
#: What only the scenario knows: raw templates, the block's own keys, the placeholders.
BLOCK_ONLY = (
    "fly said {status}: {body}",
    "spawned vm {machine_id} from {image}",
    "{canary_user}",
    "{region}",
    "row_on_failure",
    "status_enum",
    "fly_token_secret",
    "image_fallback",
    "token_modelled",
    "log_failed",
)


class Sandbox:
    """A world and an httpx client on the sandbox's router, with the sandbox's own credentials."""

    def __init__(self, text: str = TEAM, **replacements: str) -> None:
        for old, new in replacements.items():
            assert old in text, old
            text = text.replace(old, new)
        self.world = World.from_scenario(parse_scenario(text, "team.yaml"))
        self.creds = self.world.credentials
        self.http = httpx.Client(transport=SandboxTransport(SandboxApp(self.world)), base_url="https://sandbox.test")
        self.answers: list[str] = []  # every body served, for the leak check

    def send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        response = self.http.request(method, path, **kw)
        self.answers.append(response.text)
        return response

    def fly(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.creds['fly_api_token']}"}
        return self.send(method, f"/v1/apps/{APP}{path}", headers=headers, **kw)

    def create(self, region: str, image: str = IMAGE) -> httpx.Response:
        """A create through the served Machines API (a probe's, a canary's, a person's)."""
        return self.fly("POST", "/machines", json={"config": {"image": image}, "region": region})

    def machines(self) -> list[dict[str, Any]]:
        return self.fly("GET", "/machines", params={"include_deleted": "true"}).json()  # type: ignore[no-any-return]

    def spawn(self, body: dict[str, Any], slug: str = "spawn-workspace") -> httpx.Response:
        key = self.creds["supabase_service_role_key"]
        return self.send("POST", f"/functions/v1/{slug}", headers={"authorization": f"Bearer {key}"}, json=body)

    def rest(
        self, method: str, path: str, *, key: str | None = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        k = key or self.creds["supabase_service_role_key"]
        sent = {"apikey": k, "authorization": f"Bearer {k}", **(headers or {})}
        return self.send(method, f"/rest/v1/{path}", headers=sent, **kw)

    def mgmt(self, method: str, sub: str, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.creds['supabase_access_token']}"}
        return self.send(method, f"/v1/projects/{self.creds['project_ref']}{sub}", headers=headers, **kw)

    def logs(self) -> list[dict[str, Any]]:
        """Every function log and edge log of the last day, oldest first, through the logs endpoint."""
        sql = (
            "select timestamp, source, event_message, log_attributes['response.status_code'] as status, "
            "log_attributes['execution_id'] as execution_id from logs order by timestamp"
        )
        end = self.world.now_ms // 1000 + 60
        params = {"sql": sql, "iso_timestamp_start": _iso(end - 86_000), "iso_timestamp_end": _iso(end)}
        body = self.mgmt("GET", "/analytics/endpoints/logs", params=params).json()
        assert body["error"] is None
        return body["result"]  # type: ignore[no-any-return]

    def edge_statuses(self) -> list[str]:
        return [r["status"] for r in self.logs() if r["source"] == "function_edge_logs"]

    def lines(self) -> list[str]:
        """The function's own console lines (not the runtime's boot lines)."""
        return [r["event_message"].rstrip("\n") for r in self.logs() if r["source"] == "function_logs"
                and not r["event_message"].startswith("booted")]  # fmt: skip

    def rows(self) -> list[dict[str, Any]]:
        return self.rest("GET", "workspaces", params={"order": "created_at"}).json()  # type: ignore[no-any-return]

    def step(self, kind: str, **args: Any) -> None:
        self.world.apply_step(kind, args)


def fly_error(answer: httpx.Response, status: int) -> dict[str, Any]:
    """The Fly answer inside the team's `fly said {status}: {body}` line, checked for the platform's signal only:
    the function answered 500 and Fly's status and a JSON body with an `error` key came through (the body's
    text is not asserted where Fly's wording is unverified, refusals.py)."""
    assert answer.status_code == 500
    prefix = f"fly said {status}: "
    error = answer.json()["error"]
    assert error.startswith(prefix), error
    body = json.loads(error[len(prefix) :])
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    return body


def _iso(seconds: int) -> str:
    from vyxops.core.timeutil import iso

    return iso(seconds * 1000)


# --------------------------------------------------------------------------- the block's validation


@pytest.mark.parametrize(
    ("old", "new", "key", "line", "allowed"),
    [
        ("  row_on_failure: error\n", "  row_on_failure: error\n  colour: red\n", "pipeline.colour", 15, "logs"),
        ("columns: {machine_id: vm_id,", "columns: {machine_id: null,", "pipeline.table.columns.machine_id", 9, None),
        ("user: owner,", "user: id,", "pipeline.table.columns.user", 9, "another column"),
        ("image: image_ref,", "image: owner,", "pipeline.table.columns.image", 9, "one role only"),
        ("stopped: [closed]", "stopped: [gone]", "pipeline.status.stopped[0]", 11, "provisioning"),
        ("row_on_failure: error", "row_on_failure: broken", "pipeline.row_on_failure", 14, "closed"),
        ('owner: "{canary_user}"', "owner: u-1", "pipeline.invoke.body", 12, "canary_user"),
        ("fly said {status}: {body}", "fly said {machine_id}", "pipeline.logs.failed", 13, "{status}"),
        ("fly said {status}: {body}", "fly said {status!r}", "pipeline.logs.failed", 13, "{body}"),
        ('image_fallback: ""', "image_fallback: latest", "pipeline.image_fallback", 8, "registry/repo:tag"),
        ("starting: [provisioning]", "starting: []", "pipeline.status.starting", 11, None),
        ("image_secret: WORKSPACE_IMAGE", 'image_secret: ""', "pipeline.image_fallback", 8, "{app}"),
        ("status_enum: [provisioning, ready, closed, error]", "status_enum: [ready, ready]",
         "pipeline.table.status_enum", 10, None),
        ("{function: spawn-workspace, body", "{function: provision-machine, body", "steps[2].invoke.function", 23,
         "spawn-workspace"),
    ],
    ids=["unknown-key", "required-column", "own-column", "column-twice", "word-outside-enum", "row-word-outside-enum",
         "no-canary-user", "placeholder", "conversion", "fallback-not-a-ref", "no-starting-word", "no-image-at-all",
         "label-twice", "other-function"],
)  # fmt: skip
def test_a_bad_pipeline_block_names_its_key_line_and_what_is_allowed(
    old: str, new: str, key: str, line: int, allowed: str | None
) -> None:
    """Each bad value of the pipeline block is a ScenarioError naming the file, the key, its line and the choices."""
    assert old in TEAM
    with pytest.raises(ScenarioError) as err:
        parse_scenario(TEAM.replace(old, new), "team.yaml")
    e = err.value
    assert (e.key, e.line) == (key, line) and f"team.yaml:{line}" in str(e)
    if allowed:
        assert allowed in str(e)


def test_the_table_named_twice_differently_is_a_scenario_error() -> None:
    """`pipeline.table.name` replaces `supabase.machines_table`: both given and different is refused, equal is fine."""
    both = TEAM.replace(
        "{project_ref: wsteamprojectrefabzz}", "{project_ref: wsteamprojectrefabzz, machines_table: machines}"
    )
    with pytest.raises(ScenarioError) as err:
        parse_scenario(both, "team.yaml")
    assert err.value.key == "pipeline.table.name" and err.value.line == 9
    assert "machines_table" in str(err.value) and "'workspaces'" in str(err.value)
    same = both.replace("machines_table: machines", "machines_table: workspaces")
    assert parse_scenario(same).machines_table == "workspaces"


@pytest.mark.parametrize(
    ("step", "key", "line", "allowed"),
    [
        ("revoke_fly_token: {status: 500}", "steps[3].revoke_fly_token.status", 25, "401"),
        ("fly_capacity: {region: Frankfurt}", "steps[3].fly_capacity.region", 25, "region code"),
        ("fly_rate_limit: {until: 2025-11-12T10:00:00Z}", "steps[3].fly_rate_limit.until", 25, "after the step"),
        ("db_update: {table: workspaces, match: {owner: u-1}, set: {error: boom}}", "steps[3].db_update", 24, "state"),
        ("db_update: {table: machines, match: {owner: u-1}, set: {state: error}}", "steps[3].db_update.table", 25,
         "workspaces"),  # refused when the scenario loads, at the key
    ],
    ids=["token-status", "region", "until-before-at", "column-the-table-lacks", "table-the-project-lacks"],
)  # fmt: skip
def test_bad_refusal_and_update_steps_are_scenario_errors(step: str, key: str, line: int, allowed: str) -> None:
    """A refusal step with a bad value, or an update naming what the database lacks, names the step and the choices."""
    text = TEAM + f"  - at: 2025-11-12T11:00:00Z\n    {step}\n"
    with pytest.raises(ScenarioError) as err:
        World.from_scenario(parse_scenario(text, "team.yaml"))  # an update is refused when it is replayed
    assert err.value.key == key and err.value.line == line and allowed in str(err.value)


# --------------------------------------------------------------------------- the team's function


def test_the_function_speaks_the_teams_contract_on_success() -> None:
    """200 with the machine under `invoke.machine_id`, a row in the team's columns, the team's line, edge log 200."""
    sb = Sandbox()
    answer = sb.spawn({"owner": "u-2", "region": "fra"})
    assert answer.status_code == 200
    vm = answer.json()["vm"]
    row = sb.rows()[-1]
    assert {k: row[k] for k in ("owner", "vm_id", "region", "image_ref", "state")} == {
        "owner": "u-2", "vm_id": vm, "region": "fra", "image_ref": IMAGE, "state": "provisioning"
    }  # fmt: skip
    assert set(row) == {"id", "owner", "vm_id", "region", "image_ref", "state", "created_at", "updated_at"}
    assert sb.lines()[-1] == f"spawned vm {vm} from {IMAGE}"
    assert sb.edge_statuses()[-1] == "200"
    [m] = [m for m in sb.machines() if m["id"] == vm]
    assert m["region"] == "fra" and m["config"]["metadata"] == {"owner": "u-2"}


def test_the_app_reports_the_teams_running_and_stopped_words_into_its_columns() -> None:
    """The app on the machine writes `ready` then `closed` into `state`, matched by `vm_id`, stamping `updated_at`."""
    sb = Sandbox()
    vm = sb.spawn({"owner": "u-3", "region": "ams"}).json()["vm"]
    sb.world.sleep(10)
    [row] = sb.rest("GET", "workspaces", params={"vm_id": f"eq.{vm}"}).json()
    assert row["state"] == "ready" and row["updated_at"] > row["created_at"]
    sb.world.sleep(600)
    [row] = sb.rest("GET", "workspaces", params={"vm_id": f"eq.{vm}"}).json()
    assert row["state"] == "closed"


def test_the_user_and_region_come_from_the_invoke_body_keys() -> None:
    """The function reads `owner` and `region` (the keys `invoke.body` marks); without `owner` it answers 400."""
    sb = Sandbox()
    refused = sb.spawn({"user_id": "u-4", "region": "ams"})
    assert refused.status_code == 400 and refused.json() == {"error": "owner is required"}
    assert sb.edge_statuses()[-1] == "400"
    seed_keys = Sandbox(TEAM.replace('region: "{region}"', 'where: "{region}"'))
    vm = seed_keys.spawn({"owner": "u-5", "where": "syd", "region": "ams"}).json()["vm"]
    assert [m["region"] for m in seed_keys.machines() if m["id"] == vm] == ["syd"]


def test_a_fly_refusal_is_logged_in_the_teams_words_with_its_failure_row() -> None:
    """A missing tag: 500 `fly said 400: {...MANIFEST_UNKNOWN}`, an `error` row without a machine, edge log 500."""
    sb = Sandbox()
    sb.step("set_secret", name="WORKSPACE_IMAGE", value=MISSING)
    before = len(sb.machines())
    answer = sb.spawn({"owner": "u-6", "region": "ams"})
    body = json.dumps({"error": f"failed to get manifest {MISSING}: MANIFEST_UNKNOWN"})
    assert answer.status_code == 500 and answer.json() == {"error": f"fly said 400: {body}"}
    assert sb.lines()[-1] == f"fly said 400: {body}"
    row = sb.rows()[-1]
    assert (row["owner"], row["vm_id"], row["state"], row["image_ref"]) == ("u-6", None, "error", MISSING)
    assert sb.edge_statuses()[-1] == "500" and len(sb.machines()) == before


def test_a_function_that_logs_nothing_on_failure_leaves_only_its_edge_status() -> None:
    """`logs.failed: null`: a failing invocation writes no console line, answers 500, and its edge log says 500."""
    sb = Sandbox(**{'failed: "fly said {status}: {body}"': "failed: null", "  row_on_failure: error\n": ""})
    sb.step("set_secret", name="WORKSPACE_IMAGE", value=MISSING)
    before = sb.logs()
    answer = sb.spawn({"owner": "u-7", "region": "ams"})
    assert answer.status_code == 500 and answer.json() == {"error": "Internal Server Error"}
    new = sb.logs()[len(before) :]
    assert [r["source"] for r in new] == ["function_logs", "function_edge_logs"]  # the runtime's boot line, the status
    assert new[0]["event_message"].startswith("booted") and new[1]["status"] == "500"
    assert [r["state"] for r in sb.rows()] == ["closed"]  # no failure row either


def test_an_unset_image_secret_without_fallback_answers_500_without_calling_fly() -> None:
    """No image secret and no fallback: 500 with an `error` (in the function's words), no create, a failure row."""
    sb = Sandbox()
    sb.step("unset_secret", name="WORKSPACE_IMAGE")
    sb.step("fly_capacity", region="ams")  # a create in ams would be refused: none is attempted
    before = len(sb.machines())
    answer = sb.spawn({"owner": "u-8", "region": "ams"})
    assert answer.status_code == 500 and isinstance(answer.json()["error"], str)
    assert sb.lines()[-1] == answer.json()["error"]  # what it answered is what it logged
    assert sb.edge_statuses()[-1] == "500"
    assert len(sb.machines()) == before and sb.rows()[-1]["state"] == "error" and sb.rows()[-1]["image_ref"] is None


def test_an_unset_secret_falls_back_to_the_teams_fallback_with_the_app_filled() -> None:
    """With the default fallback, an unset image secret makes the function use registry.fly.io/<app>:latest."""
    sb = Sandbox(
        **{'  image_fallback: ""\n': "", "deploy: {app: ws-app, image": "deploy: {app: ws-app, tag_latest: true, image"}
    )
    sb.step("unset_secret", name="WORKSPACE_IMAGE")
    vm = sb.spawn({"owner": "u-9", "region": "ams"}).json()["vm"]
    assert sb.rows()[-1]["image_ref"] == "registry.fly.io/ws-app:latest"
    assert sb.lines()[-1] == f"spawned vm {vm} from registry.fly.io/ws-app:latest"


# --------------------------------------------------------------------------- Fly's refusals


@pytest.mark.parametrize("status", [401, 403])
def test_a_revoked_token_refuses_only_the_functions_creates(status: int) -> None:
    """revoke_fly_token: the function's creates get Fly's 401/403; the product's own token still works.

    The 401 body is Fly's observed one; the 403's text is unverified (refusals.py), so only its shape is asserted.
    """
    sb = Sandbox()
    sb.step("revoke_fly_token", status=status)
    before = len(sb.machines())
    body = fly_error(sb.spawn({"owner": "u-10", "region": "ams"}), status)
    if status == 401:
        assert body == {"error": "Authenticate: token validation error"}
    assert len(sb.machines()) == before and sb.rows()[-1]["state"] == "error"
    assert "FLY_API_TOKEN" in [s["name"] for s in sb.mgmt("GET", "/secrets").json()]  # it stays listed
    assert sb.create("ams").status_code == 200  # only the function's token was revoked


def test_a_later_set_secret_of_the_token_restores_it() -> None:
    """After a revocation, writing the token secret (Management API) lets the function's creates through again."""
    sb = Sandbox()
    sb.step("revoke_fly_token", status=401)
    assert sb.spawn({"owner": "u-11", "region": "ams"}).status_code == 500
    assert sb.mgmt("POST", "/secrets", json=[{"name": "FLY_API_TOKEN", "value": "a-new-token"}]).status_code == 201
    assert sb.spawn({"owner": "u-11", "region": "ams"}).status_code == 200
    sb.step("unset_secret", name="FLY_API_TOKEN")  # no token at all is refused like a bad one
    assert "fly said 401" in sb.spawn({"owner": "u-11", "region": "ams"}).json()["error"]


def test_an_unset_token_answers_401_even_after_a_403_revocation() -> None:
    """No token at all is Fly's 401 `Authenticate: token validation error`, not the revoked token's 403."""
    sb = Sandbox()
    sb.step("revoke_fly_token", status=403)
    assert sb.spawn({"owner": "u-11", "region": "ams"}).json()["error"].startswith("fly said 403: ")
    sb.step("unset_secret", name="FLY_API_TOKEN")
    answer = sb.spawn({"owner": "u-11", "region": "ams"})
    body = json.dumps({"error": "Authenticate: token validation error"})
    assert answer.status_code == 500 and answer.json() == {"error": f"fly said 401: {body}"}


def test_the_functions_token_is_a_plain_secret_set_at_load_and_seed_scenarios_gain_none() -> None:
    """A pipeline scenario gets its function's token secret (not token-shaped, not a credential); the seed gets none."""
    sb = Sandbox()
    value = sb.world.state["supabase"]["secrets"]["FLY_API_TOKEN"]["value"]
    assert value not in sb.creds.values() and value.startswith("sandbox-function-token-")
    assert not value.startswith(("fm1", "fm2", "fo1_", "FlyV1", "sbp_", "sb_secret_", "eyJ"))
    from vyxops_sandbox.scenario import load_scenario

    seed = World.from_scenario(load_scenario("stub-image"))
    assert sorted(seed.state["supabase"]["secrets"]) == ["DOCKER_IMAGE", "FLY_APP_NAME", "SUPABASE_URL"]


def test_no_capacity_refuses_every_create_in_the_region_until_the_clock_reaches_until() -> None:
    """fly_capacity: 412 insufficient_capacity for probes and the function in that region only, until `until`."""
    sb = Sandbox()
    until = sb.world.now_ms + 30 * 60_000
    sb.step("fly_capacity", region="ams", until_ms=until)
    refused = sb.create("ams")
    assert refused.status_code == 412 and refused.json() == {
        "error": "insufficient resources available to fulfill request: could not reserve resource for machine: "
        "insufficient memory available to fulfill request",
        "status": "insufficient_capacity",
    }
    assert sb.create("fra").status_code == 200
    assert sb.create("ams", image=MISSING).status_code == 400  # the image is checked before placement
    answer = sb.spawn({"owner": "u-12", "region": "ams"})
    assert answer.status_code == 500 and answer.json()["error"].startswith('fly said 412: {"error": "insufficient')
    sb.world.advance_to(until)
    assert sb.create("ams").status_code == 200 and sb.spawn({"owner": "u-12", "region": "ams"}).status_code == 200


def test_a_capacity_step_refuses_create_machine_steps_too() -> None:
    """A `create_machine` step in a region without capacity makes no machine (like `fly machine run`)."""
    text = TEAM + (
        "  - at: 2025-11-12T11:00:00Z\n    fly_capacity: {region: fra}\n"
        f"  - at: 2025-11-12T11:05:00Z\n    create_machine: {{app: ws-app, image: {IMAGE}, region: fra, "
        "machine_id: 0a0a0a0a0a0a02}\n"
    )
    world = World.from_scenario(parse_scenario(text))
    assert world.machine(APP, "0a0a0a0a0a0a02") is None


def test_a_rate_limit_answers_the_functions_creates_429_until_it_ends() -> None:
    """fly_rate_limit: the function's creates get Fly's 429 (its body's text is unverified); after `until` they pass."""
    sb = Sandbox()
    until = sb.world.now_ms + 5 * 60_000
    sb.step("fly_rate_limit", until_ms=until)
    fly_error(sb.spawn({"owner": "u-13", "region": "ams"}), 429)
    assert sb.create("ams").status_code == 429  # Fly limits per action per app: every caller on the app
    sb.world.advance_to(until)
    assert sb.spawn({"owner": "u-13", "region": "ams"}).status_code == 200
    assert sb.create("ams").status_code == 200


def test_a_direct_machines_api_create_during_a_rate_limit_gets_429_and_makes_no_machine() -> None:
    """PLATFORM.md: the Machines API limits per action per app, so a probe's or a person's create is refused too."""
    sb = Sandbox(**{"apps: [ws-app]": "apps: [ws-app, ws-other]"})
    sb.step("fly_rate_limit", until_ms=sb.world.now_ms + 5 * 60_000)
    before = len(sb.machines())
    refused = sb.create("ams")
    assert refused.status_code == 429
    body = refused.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]  # Fly's {"error": …} shape
    assert len(sb.machines()) == before
    headers = {"authorization": f"Bearer {sb.creds['fly_api_token']}"}
    other = sb.send("POST", "/v1/apps/ws-other/machines", headers=headers, json={"config": {"image": IMAGE}})
    assert other.status_code == 200  # the limit is the function's app's, not every app's
    text = TEAM + (
        "  - at: 2025-11-12T11:00:00Z\n    fly_rate_limit: {}\n"
        "  - at: 2025-11-12T11:05:00Z\n"
        f"    create_machine: {{app: ws-app, image: {IMAGE}, machine_id: 0a0a0a0a0a0a02}}\n"
    )
    world = World.from_scenario(parse_scenario(text))
    assert world.machine(APP, "0a0a0a0a0a0a02") is None  # a `create_machine` step (`fly machine run`) too


def test_refusals_come_in_the_order_the_platform_checks_them() -> None:
    """Token, then rate limit, then image, then capacity: each lifted in turn uncovers the next."""
    sb = Sandbox()
    sb.step("set_secret", name="WORKSPACE_IMAGE", value=MISSING)
    for kind, args in (
        ("fly_capacity", {"region": "ams"}),
        ("fly_rate_limit", {}),
        ("revoke_fly_token", {"status": 403}),
    ):
        sb.step(kind, **args)
    lifts: list[tuple[str, dict[str, Any]]] = [
        ("set_secret", {"name": "FLY_API_TOKEN", "value": "restored"}),  # a new token
        ("fly_rate_limit", {"until_ms": sb.world.now_ms + 500}),  # the limit ends within the second
        ("set_secret", {"name": "WORKSPACE_IMAGE", "value": IMAGE}),  # an image that exists
    ]
    statuses = []
    for i in range(4):
        statuses.append(sb.spawn({"owner": "u-14", "region": "ams"}).json()["error"].split(":")[0])
        if i < len(lifts):
            sb.step(lifts[i][0], **lifts[i][1])
        sb.world.sleep(1)
    assert statuses == ["fly said 403", "fly said 429", "fly said 400", "fly said 412"]


# --------------------------------------------------------------------------- PostgREST


def test_a_value_outside_the_enum_is_refused_with_22p02() -> None:
    """An update, an insert or a filter with a status the enum lacks: 400 22P02 in Postgres' words; nothing changes."""
    sb = Sandbox()
    expected = {"code": "22P02", "details": None, "hint": None,
                "message": 'invalid input value for enum workspaces_state: "failed"'}  # fmt: skip
    patch = sb.rest("PATCH", "workspaces", params={"owner": "eq.u-1"}, json={"state": "failed"})
    assert patch.status_code == 400 and patch.json() == expected
    insert = sb.rest("POST", "workspaces", json={"owner": "u-x", "state": "failed"})
    assert insert.status_code == 400 and insert.json() == expected
    query = sb.rest("GET", "workspaces", params={"state": "in.(closed,failed)"})
    assert query.status_code == 400 and query.json() == expected
    assert [r["state"] for r in sb.rows()] == ["closed"]
    ok = sb.rest("PATCH", "workspaces", params={"owner": "eq.u-1"}, json={"state": "error"},
                 headers={"prefer": "return=representation"})  # fmt: skip
    assert ok.status_code == 200 and ok.json()[0]["state"] == "error"


def test_an_enum_column_orders_by_its_labels_declaration() -> None:
    """`order=state` sorts by the enum's label order (provisioning, ready, closed, error), as Postgres does."""
    sb = Sandbox()
    sb.spawn({"owner": "u-15", "region": "ams"})
    sb.step("set_secret", name="WORKSPACE_IMAGE", value=MISSING)
    sb.spawn({"owner": "u-16", "region": "ams"})
    states = [r["state"] for r in sb.rest("GET", "workspaces", params={"select": "state", "order": "state"}).json()]
    assert states == ["provisioning", "closed", "error"]


def test_the_seed_table_has_nine_columns_and_refuses_an_error_column_with_pgrst204() -> None:
    """SPEC.md's machines table has no `error`: a PATCH writing one is 400 PGRST204 and changes nothing."""
    from vyxops_sandbox.scenario import load_scenario

    seed = Sandbox.__new__(Sandbox)
    seed.world = World.from_scenario(load_scenario("stub-image"))
    seed.creds = seed.world.credentials
    seed.http = httpx.Client(transport=SandboxTransport(SandboxApp(seed.world)), base_url="https://sandbox.test")
    seed.answers = []
    r = seed.rest("PATCH", "machines", params={"status": "eq.starting"}, json={"status": "failed", "error": "gone"})
    assert r.status_code == 400 and r.json() == {
        "code": "PGRST204", "details": None, "hint": None,
        "message": "Could not find the 'error' column of 'machines' in the schema cache",
    }  # fmt: skip
    [row] = seed.rest("GET", "machines").json()
    assert list(row) == ["id", "user_id", "fly_machine_id", "fly_app", "region", "image", "status", "created_at",
                         "updated_at"]  # fmt: skip
    assert row["status"] == "starting"


def test_the_api_root_describes_the_tables_as_postgrest_does() -> None:
    """GET /rest/v1/ with the service key: Swagger 2.0, the table's columns, types, enum labels and PK note."""
    sb = Sandbox()
    r = sb.rest("GET", "")
    assert r.status_code == 200 and r.headers["content-type"] == "application/openapi+json; charset=utf-8"
    doc = r.json()
    assert doc["swagger"] == "2.0" and doc["basePath"] == "/" and doc["host"] == "wsteamprojectrefabzz.supabase.co:443"
    assert doc["info"]["title"] == "standard public schema"
    table = doc["definitions"]["workspaces"]
    assert table["required"] == ["id", "state", "created_at", "updated_at"] and table["type"] == "object"
    props = table["properties"]
    assert list(props) == ["id", "owner", "vm_id", "region", "image_ref", "state", "created_at", "updated_at"]
    assert props["id"] == {"default": "gen_random_uuid()", "description": "Note:\nThis is a Primary Key.<pk/>",
                           "format": "uuid", "type": "string"}  # fmt: skip
    assert props["state"] == {"enum": ["provisioning", "ready", "closed", "error"],
                              "format": "public.workspaces_state", "type": "string"}  # fmt: skip
    assert props["created_at"] == {"default": "now()", "format": "timestamp with time zone", "type": "string"}
    assert props["vm_id"] == {"format": "text", "type": "string"}
    assert set(doc["paths"]) == {"/", "/workspaces"} and set(doc["paths"]["/workspaces"]) == {"get", "post", "patch",
                                                                                               "delete"}  # fmt: skip
    assert doc["parameters"]["rowFilter.workspaces.state"] == {"name": "state", "required": False, "in": "query",
                                                                "type": "string"}  # fmt: skip


def test_the_api_root_refuses_the_anon_key_and_a_missing_key() -> None:
    """The anon key gets Supabase's "Access to schema is forbidden" (changelog 42949); no key, the gateway's 401."""
    sb = Sandbox()
    anon = sb.rest("GET", "", key=sb.creds["supabase_anon_key"])
    assert anon.status_code == 403 and anon.json() == {
        "message": "Access to schema is forbidden",
        "hint": "Accessing the schema via the Data API is only allowed using a secret API key.",
    }
    assert sb.send("GET", "/rest/v1/").status_code == 401


# --------------------------------------------------------------------------- the block is never served


def test_no_answer_of_any_api_hands_out_the_pipeline_block() -> None:
    """Functions, secrets, logs, rows, the OpenAPI root, machines, the function's answers: no template, no block key."""
    sb = Sandbox()
    sb.spawn({"owner": "u-17", "region": "ams"})
    sb.step("set_secret", name="WORKSPACE_IMAGE", value=MISSING)
    sb.spawn({"owner": "u-18", "region": "ams"})
    sb.logs()
    for sub in ("", "/secrets", "/functions", "/functions/spawn-workspace", "/postgrest"):
        assert sb.mgmt("GET", sub).status_code == 200
    assert sb.rest("GET", "").status_code == 200 and sb.rest("GET", "workspaces").status_code == 200
    sb.machines()
    sb.fly("GET", "")
    served = "\n".join(sb.answers)
    assert "spawned vm" in served and "fly said 400" in served  # the wording is served filled in, as logs
    leaked = [s for s in BLOCK_ONLY if s in served]
    assert leaked == []
    assert sb.world.state["supabase"]["pipeline"]["log_failed"] == "fly said {status}: {body}"  # kept, not served


def test_every_new_shipped_scenario_loads_through_sandbox_reset(
    sandbox_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vyxops sandbox reset --scenario NAME` loads each other team's story."""
    from vyxops.shell.cli import main

    for name in STORIES:
        assert main(["sandbox", "reset", "--scenario", name]) == 0
        assert f"sandbox reset: {name} at" in capsys.readouterr().out


#: shipped scenario -> (its function, the edge-log statuses in order, the start of a line its function logged).
#: A line is the team's own template (the scenario's words) filled with Fly's status and the start of a JSON
#: body with an `error` key; text the sandbox words itself (an unverified Fly body, the unset-secret error)
#: is not pinned: the edge-log 500s are the signal.
STORIES = {
    "workspaces-fly-token-revoked": ("spawn-workspace", "200 " * 4 + "500 " * 3, 'fly said 401: {"error": '),
    "workspaces-image-secret-unset": ("spawn-workspace", "200 " * 3 + "500 " * 3, "spawned vm "),
    "gameservers-region-capacity": ("allocate-server", "200 200 200 500 200 500 200 ",
                                    'allocation failed in fra: fly 412 {"error": "insufficient resources'),
    "gameservers-rate-limited-burst": ("allocate-server", "200 " * 4 + "500 " * 9,
                                       'allocation failed in ams: fly 429 {"error": '),
    "sandboxes-silent-failures": ("launch-sandbox", "200 " * 3 + "500 " * 5, "launched "),
    "kernels-tag-missing-in-own-words": ("start-kernel", "200 " * 3 + "500 " * 4,
                                         "Error: Fly API 400: image not found"),
    "sandboxes-healthy-busy-day": ("launch-sandbox", "200 " * 22, "launched 5b0c0000000015 for acct-136 in iad"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(STORIES))
def test_each_other_teams_story_is_told_by_the_platforms_answers(name: str) -> None:
    """Each shipped team story: its function in the functions list, its edge statuses in order, its own wording."""
    from vyxops_sandbox.scenario import load_scenario

    sb = Sandbox.__new__(Sandbox)
    sb.world = World.from_scenario(load_scenario(name))
    sb.creds = sb.world.credentials
    sb.http = httpx.Client(transport=SandboxTransport(SandboxApp(sb.world)), base_url="https://sandbox.test")
    sb.answers = []
    slug, statuses, line = STORIES[name]
    assert [f["slug"] for f in sb.mgmt("GET", "/functions").json()] == [slug]
    assert " ".join(sb.edge_statuses()) + " " == statuses
    assert any(text.startswith(line) for text in sb.lines())
    if name == "sandboxes-silent-failures":
        assert len(sb.lines()) == 3  # three launches logged, the five failures said nothing

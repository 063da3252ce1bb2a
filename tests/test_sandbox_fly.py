"""The sandbox's Fly APIs (Machines API, GraphQL, REST releases and logs) against the reference shapes.

Worlds are built in memory from shipped scenarios; handlers are called with plain
``httpx.Request`` objects at the real URLs. Every Machines API JSON body is validated
against the response schemas of the 2026-05-07 OpenAPI spec, and machine objects and
events are compared key for key with the recorded docs samples.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator

from vyxops_sandbox import fly_api
from vyxops_sandbox.scenario import load_scenario, parse_scenario
from vyxops_sandbox.world import World

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "fly"
MACHINES = "https://api.machines.dev"
API = "https://api.fly.io"
APP = "vyx-app"
SEED_MACHINE = "5683732efe3208"
STUB = "registry.fly.io/vyx-app:stub"
RELEASE_IMAGE = "registry.fly.io/vyx-app:deployment-01K6JV132H7B7Y5PP8Y5QSR23X"


# --------------------------------------------------------------------------- helpers
def reference(name: str) -> Any:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"reference file not beside the repo: {path}")
    return json.loads(path.read_text())


def schema_of(path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    """The response schema the spec gives ``method path`` for ``status``, with its components for $refs."""
    spec = reference("machines-openapi3.2026-05-07.json")
    schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return {**schema, "components": spec["components"]}


def component(name: str) -> dict[str, Any]:
    spec = reference("machines-openapi3.2026-05-07.json")
    return {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}


def validate(instance: Any, schema: dict[str, Any]) -> None:
    OAS30Validator(schema).validate(instance)


@pytest.fixture
def world() -> World:
    return World.from_scenario(load_scenario("stub-image"))


def auth(world: World, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {world.credentials['fly_api_token']}"}


def call(world: World, method: str, url: str, *, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
    """Send one authenticated request through the Fly handlers, as the router would, paced as vyxops' client is.

    A 429 (the Machines API's rate limits, vyxops_sandbox/limits.py) is retried after its
    Retry-After on the virtual clock, as vyxops.fetch.http.Api does, so that a test firing more
    than a burst of one action at one instant tests what it means to, not the limit.
    """
    request = httpx.Request(method, url, headers=auth(world) if headers is None else headers, **kw)
    for handler in (fly_api.handle_machines, fly_api.handle_graphql, fly_api.handle_fly_rest):
        response = handler(world, request)
        while response is not None and response.status_code == 429:
            world.sleep(float(response.headers["retry-after"]))
            response = handler(world, request)
        if response is not None:
            return response
    raise AssertionError(f"no handler took {method} {url}")


def machines_url(app: str = APP, suffix: str = "") -> str:
    return f"{MACHINES}/v1/apps/{app}/machines{suffix}"


def create(world: World, image: str, app: str = APP, **body: Any) -> httpx.Response:
    config = {"image": image, "auto_destroy": True, "restart": {"policy": "no"}, **body.pop("config", {})}
    return call(world, "POST", machines_url(app), json={"config": config, **body})


def app_logs(world: World, app: str = APP) -> list[dict[str, Any]]:
    return world.app(app)["logs"]  # type: ignore[index]


# --------------------------------------------------------------------------- list
def test_plain_list_leaves_out_the_destroyed_seed_machine(world: World) -> None:
    """Without include_deleted the seed's auto-destroyed machine is not listed: the list is empty."""
    response = call(world, "GET", machines_url())
    assert response.status_code == 200
    assert response.json() == []
    validate(response.json(), schema_of("/apps/{app_name}/machines"))


def test_destroyed_machine_is_found_with_include_deleted(world: World) -> None:
    """include_deleted=true lists the seed machine 5683732efe3208 in state destroyed."""
    response = call(world, "GET", machines_url(), params={"include_deleted": "true"})
    body = response.json()
    validate(body, schema_of("/apps/{app_name}/machines"))
    assert [(m["id"], m["state"]) for m in body] == [(SEED_MACHINE, "destroyed")]
    assert response.headers.get("fly-next-cursor") is None


def test_summary_drops_events_and_config(world: World) -> None:
    """summary=true leaves out events and config (the spec's "omit config, checks, events, host_status, nonce")."""
    body = call(world, "GET", machines_url(), params={"include_deleted": "true", "summary": "true"}).json()
    validate(body, schema_of("/apps/{app_name}/machines"))
    assert body and all("events" not in m and "config" not in m for m in body)
    assert body[0]["image_ref"]["tag"] == "stub"


def test_state_region_and_metadata_filters_select_machines(world: World) -> None:
    """state (comma list), region and metadata.{key} each narrow the list; include_deleted still gates destroyed
    ones."""
    create(world, RELEASE_IMAGE, region="ams", config={"metadata": {"user_id": "u-1"}, "auto_destroy": False})
    create(world, RELEASE_IMAGE, region="sjc", config={"metadata": {"user_id": "u-2"}, "auto_destroy": False})
    world.sleep(5)  # both start

    def ids(**params: str) -> list[str]:
        body = call(world, "GET", machines_url(), params=params).json()
        validate(body, schema_of("/apps/{app_name}/machines"))
        return [m["config"]["metadata"].get("user_id") for m in body]

    assert sorted(ids(state="started")) == ["u-1", "u-2"]
    assert ids(region="ams") == ["u-1"]
    assert ids(**{"metadata.user_id": "u-2"}) == ["u-2"]
    assert ids(state="stopped,destroyed") == []
    assert ids(state="stopped,destroyed", include_deleted="true") == ["u-42"]


def test_invalid_list_parameters_are_400(world: World) -> None:
    """A limit over 1000, a cursor without limit, a garbled cursor or a non-boolean flag is refused with an
    ErrorResponse."""
    for params in (
        {"limit": "1001"},
        {"limit": "0"},
        {"cursor": "abc"},
        {"limit": "5", "cursor": "!!"},
        {"include_deleted": "yes"},
    ):
        response = call(world, "GET", machines_url(), params=params)
        assert response.status_code == 400, params
        # The 2026-05-07 spec lists no 400 here; the newer spec answers 400 with an ErrorResponse.
        validate(response.json(), component("ErrorResponse"))


def test_paging_with_limit_and_cursor_reaches_every_machine(world: World) -> None:
    """Pages of limit=3 follow fly-next-cursor until it is absent and together hold every machine exactly once."""
    created = {create(world, RELEASE_IMAGE).json()["id"] for _ in range(7)}
    world.sleep(1)
    created.add(create(world, RELEASE_IMAGE).json()["id"])
    seen: list[str] = []
    params: dict[str, str] = {"limit": "3", "include_deleted": "true"}
    pages = 0
    while True:
        response = call(world, "GET", machines_url(), params=params)
        body = response.json()
        validate(body, schema_of("/apps/{app_name}/machines"))
        assert len(body) <= 3
        seen.extend(m["id"] for m in body)
        pages += 1
        cursor = response.headers.get("fly-next-cursor")
        if not cursor:
            break
        params["cursor"] = cursor
    assert pages == 3
    assert len(seen) == len(set(seen)) == 9
    assert set(seen) == created | {SEED_MACHINE}
    everything = call(world, "GET", machines_url(), params={"include_deleted": "true"}).json()
    assert [m["id"] for m in everything] == seen  # same deterministic order with and without paging


def test_cursor_expires_thirty_minutes_after_the_first_page(world: World) -> None:
    """A cursor used more than 30 virtual minutes after its first page is refused with 400."""
    for _ in range(3):
        create(world, RELEASE_IMAGE)
    first = call(world, "GET", machines_url(), params={"limit": "1"})
    cursor = first.headers["fly-next-cursor"]
    world.sleep(31 * 60)
    response = call(world, "GET", machines_url(), params={"limit": "1", "cursor": cursor})
    assert response.status_code == 400
    validate(response.json(), component("ErrorResponse"))


# --------------------------------------------------------------------------- get / events
def test_destroyed_machine_is_readable_by_id_with_its_exit_code(world: World) -> None:
    """GET by id serves the destroyed seed machine, events newest first, the exit event carrying exit_code 0."""
    response = call(world, "GET", machines_url(suffix=f"/{SEED_MACHINE}"))
    machine = response.json()
    validate(machine, schema_of("/apps/{app_name}/machines/{machine_id}"))
    assert machine["state"] == "destroyed"
    stamps = [e["timestamp"] for e in machine["events"]]
    assert stamps == sorted(stamps, reverse=True)
    assert [e["type"] for e in machine["events"]] == ["destroy", "exit", "start", "launch"]
    exit_event = next(e for e in machine["events"] if e["type"] == "exit")
    assert exit_event["request"]["exit_event"]["exit_code"] == 0
    assert machine["config"]["image"] == STUB


def test_machine_and_event_keys_match_the_docs_sample(world: World) -> None:
    """A served machine has exactly the docs sample's keys; events add only id and request to the sample's keys."""
    sample = reference("machines-get.response.docs.json")
    machine = call(world, "GET", machines_url(suffix=f"/{SEED_MACHINE}")).json()
    assert set(machine) == set(sample)
    assert set(machine["image_ref"]) <= set(reference("machines-create.response.docs.json")["image_ref"])
    sample_event_keys = set(sample["events"][0])
    for event in machine["events"]:
        assert sample_event_keys <= set(event) <= sample_event_keys | {"id", "request"}
    assert all(not k.startswith("_") for k in machine)


def test_events_endpoint_serves_newest_first_and_honours_limit(world: World) -> None:
    """GET …/events?limit=2 gives the two newest events; an absent limit gives them all (fewer than 20)."""
    url = machines_url(suffix=f"/{SEED_MACHINE}/events")
    two = call(world, "GET", url, params={"limit": "2"}).json()
    validate(two, schema_of("/apps/{app_name}/machines/{machine_id}/events"))
    assert [e["type"] for e in two] == ["destroy", "exit"]
    every = call(world, "GET", url).json()
    validate(every, schema_of("/apps/{app_name}/machines/{machine_id}/events"))
    assert len(every) == 4 and every[:2] == two
    assert len(call(world, "GET", url, params={"limit": "500"}).json()) == 4  # clamped to 50, not refused


def test_unknown_app_and_machine_are_404_json(world: World) -> None:
    """An unknown app or machine id is a JSON 404 ErrorResponse, not the plain route 404."""
    for url, message in (
        (machines_url(suffix="/0000000000000a"), "machine not found"),
        (machines_url(app="no-such-app"), "app not found"),
    ):
        response = call(world, "GET", url)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json")
        validate(response.json(), component("ErrorResponse"))
        assert response.json() == {"error": message}


def test_machine_id_with_a_slash_gets_the_plain_go_404(world: World) -> None:
    """`fly image show registry.fly.io/vyx-app:stub` treats the ref as a machine id: plain-text '404 page not found'."""
    for url in (
        machines_url(suffix=f"/{STUB}"),
        machines_url(suffix="/registry.fly.io%2Fvyx-app:stub"),
        f"{MACHINES}/v1/apps/{APP}/nothing",
    ):
        response = call(world, "GET", url)
        assert response.status_code == 404
        assert response.text == "404 page not found\n"
        assert response.headers["content-type"].startswith("text/plain")


def test_real_but_unmodelled_endpoint_is_501_not_a_fake_404(world: World) -> None:
    """An endpoint the real API has but the sandbox does not model (start) answers 501 naming it; a wrong method is
    405."""
    response = call(world, "POST", machines_url(suffix=f"/{SEED_MACHINE}/start"))
    assert response.status_code == 501 and "not modelled" in response.json()["error"]
    wrong = call(world, "PUT", machines_url())
    assert wrong.status_code == 405 and set(wrong.headers["allow"].split(", ")) == {"GET", "POST"}


# --------------------------------------------------------------------------- create
def test_create_with_a_missing_tag_is_400_manifest_unknown_and_makes_no_machine(world: World) -> None:
    """POST with an image tag the registry lacks answers 400 MANIFEST_UNKNOWN and no machine is made."""
    before = len(world.app(APP)["machines"])  # type: ignore[index]
    response = create(world, "registry.fly.io/vyx-app:deployment-01K6GSC1H9Z5M48PZDQMRD7NZX")
    assert response.status_code == 400
    assert response.json() == {
        "error": "failed to get manifest registry.fly.io/vyx-app:deployment-01K6GSC1H9Z5M48PZDQMRD7NZX: "
        "MANIFEST_UNKNOWN"
    }
    validate(response.json(), component("ErrorResponse"))
    assert len(world.app(APP)["machines"]) == before  # type: ignore[index]
    assert call(world, "GET", machines_url(), params={"include_deleted": "true"}).json()[0]["id"] == SEED_MACHINE


def test_create_without_an_image_or_with_a_bad_body_is_400(world: World) -> None:
    """A create body without config.image, or one that is not a JSON object, is a 400 ErrorResponse."""
    for kw in ({"json": {"config": {}}}, {"json": [1]}, {"content": b"{not json"}):
        response = call(world, "POST", machines_url(), **kw)
        assert response.status_code == 400, kw
        validate(response.json(), component("ErrorResponse"))
    assert call(world, "POST", machines_url(), json=[1]).json()["error"].startswith("json: cannot unmarshal array")


def test_create_with_an_existing_image_returns_the_created_machine(world: World) -> None:
    """POST with an existing image answers 200 with a machine in state created and one launch event, shaped like the
    docs sample."""
    response = create(world, RELEASE_IMAGE, region="ams", name="my-machine", config={"metadata": {"user_id": "u-7"}})
    assert response.status_code == 200
    machine = response.json()
    validate(machine, schema_of("/apps/{app_name}/machines", method="post"))
    sample = reference("machines-create.response.docs.json")
    assert set(machine) == set(sample)
    assert set(machine["image_ref"]) == set(sample["image_ref"])
    assert (machine["state"], machine["region"], machine["name"]) == ("created", "ams", "my-machine")
    assert [e["type"] for e in machine["events"]] == ["launch"]
    assert set(sample["events"][0]) <= set(machine["events"][0]) <= set(sample["events"][0]) | {"id"}
    assert machine["config"]["metadata"] == {"user_id": "u-7"}
    assert world.machine(APP, machine["id"]) is not None


# --------------------------------------------------------------------------- wait
def test_wait_for_started_jumps_the_clock_and_answers_200(world: World) -> None:
    """wait?state=started on a new machine moves the virtual clock to its start event and answers
    WaitMachineResponse."""
    machine = create(world, RELEASE_IMAGE).json()
    t0 = world.now_ms
    response = call(
        world, "GET", machines_url(suffix=f"/{machine['id']}/wait"), params={"state": "started", "timeout": "60"}
    )
    assert response.status_code == 200
    body = response.json()
    validate(body, schema_of("/apps/{app_name}/machines/{machine_id}/wait"))
    assert body["ok"] is True and body["state"] == "started"
    assert set(body) == set(reference("machines-wait.responses.json")["spec_shape_200_WaitMachineResponse"])
    assert 0 < world.now_ms - t0 < 60_000
    assert call(world, "GET", machines_url(suffix=f"/{machine['id']}")).json()["state"] == "started"


def test_wait_on_the_destroyed_seed_machine_answers_404(world: World) -> None:
    """Waiting for started on a machine that is already destroyed and will never start answers 404."""
    response = call(
        world, "GET", machines_url(suffix=f"/{SEED_MACHINE}/wait"), params={"state": "started", "timeout": "5"}
    )
    assert response.status_code == 404
    validate(response.json(), component("ErrorResponse"))


def test_wait_on_a_machine_that_cannot_pull_times_out_with_408() -> None:
    """A machine whose image cannot be pulled never starts: wait started times out with 408 (no body), wait destroyed
    answers 200."""
    world = World.from_scenario(load_scenario("image-pull-fails"))
    app = "render-app"
    image = "registry.fly.io/render-app:deployment-01KB9ZZZZZZZZZZZZZZZZZZZZZ"
    machine = call(world, "POST", machines_url(app), json={"config": {"image": image, "auto_destroy": True}}).json()
    t0 = world.now_ms
    response = call(
        world, "GET", machines_url(app, f"/{machine['id']}/wait"), params={"state": "started", "timeout": "5"}
    )
    assert response.status_code == 408
    assert response.content == b""
    assert world.now_ms - t0 == 5000  # the timeout passed on the virtual clock
    done = call(world, "GET", machines_url(app, f"/{machine['id']}/wait"), params={"state": "destroyed"})
    assert done.status_code == 200 and done.json()["state"] == "destroyed"


def test_wait_accepts_comma_separated_states(world: World) -> None:
    """wait?state=stopped,destroyed returns at the first of them: the stub image's exit (stopped)."""
    machine = create(world, STUB).json()
    response = call(world, "GET", machines_url(suffix=f"/{machine['id']}/wait"), params={"state": "stopped,destroyed"})
    assert response.status_code == 200 and response.json()["state"] == "stopped"


def test_wait_with_an_invalid_state_or_timeout_is_400(world: World) -> None:
    """A state outside the spec's enum, or a timeout above 60 s, is a 400 ErrorResponse and the clock does not move."""
    machine = create(world, RELEASE_IMAGE).json()
    t0 = world.now_ms
    for params in ({"state": "running"}, {"state": "started", "timeout": "61"}, {"timeout": "soon"}):
        response = call(world, "GET", machines_url(suffix=f"/{machine['id']}/wait"), params=params)
        assert response.status_code == 400, params
        validate(response.json(), schema_of("/apps/{app_name}/machines/{machine_id}/wait", status="400"))
    assert world.now_ms == t0


# --------------------------------------------------------------------------- stop / destroy
def test_stop_a_started_machine_then_auto_destroy_removes_it(world: World) -> None:
    """POST …/stop on a started auto_destroy machine answers {"ok": true} and the machine ends destroyed; a second stop
    is refused."""
    machine = create(world, RELEASE_IMAGE).json()
    call(world, "GET", machines_url(suffix=f"/{machine['id']}/wait"))
    url = machines_url(suffix=f"/{machine['id']}/stop")
    response = call(world, "POST", url, json={})
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert world.machine(APP, machine["id"])["state"] == "destroyed"  # type: ignore[index]
    again = call(world, "POST", url)
    assert again.status_code == 412
    validate(again.json(), component("ErrorResponse"))
    bad = call(world, "POST", url, json=["SIGTERM"])
    assert (
        bad.status_code == 400
        and bad.json()["error"] == "json: cannot unmarshal array into Go value of type main.stopRequest"
    )


def test_destroying_a_running_machine_needs_force(world: World) -> None:
    """DELETE a started machine is refused (412) without force=true and succeeds with it; it stays readable by id."""
    machine = create(world, RELEASE_IMAGE, config={"auto_destroy": False}).json()
    call(world, "GET", machines_url(suffix=f"/{machine['id']}/wait"))
    url = machines_url(suffix=f"/{machine['id']}")
    refused = call(world, "DELETE", url)
    assert refused.status_code == 412
    validate(refused.json(), component("ErrorResponse"))
    assert call(world, "DELETE", url, params={"force": "true"}).json() == {"ok": True}
    assert call(world, "GET", url).json()["state"] == "destroyed"


# --------------------------------------------------------------------------- apps, auth, headers
def test_apps_list_and_get_follow_the_docs_samples(world: World) -> None:
    """GET /v1/apps?org_slug= and GET /v1/apps/{app} have the docs samples' keys and validate against the spec."""
    listed = call(world, "GET", f"{MACHINES}/v1/apps", params={"org_slug": "personal"}).json()
    validate(listed, schema_of("/apps"))
    sample = reference("apps-list.response.docs.json")
    assert set(listed) == {"total_apps", "apps"} and listed["total_apps"] == 1
    assert set(listed["apps"][0]) == set(sample["apps"][0])
    assert listed["apps"][0]["machine_count"] == 0  # the destroyed machine is not counted
    got = call(world, "GET", f"{MACHINES}/v1/apps/{APP}").json()
    validate(got, schema_of("/apps/{app_name}"))
    assert set(got) == set(reference("apps-get.response.docs.json"))
    assert got["organization"]["slug"] == "personal"
    assert call(world, "GET", f"{MACHINES}/v1/apps").status_code == 400  # org_slug is required


def test_missing_or_wrong_token_is_401_with_the_observed_body(world: World) -> None:
    """No token or a wrong one gets 401 {"error": "Authenticate: token validation error"}; Bearer or FlyV1: both
    pass."""
    observed = next(c for c in reference("machines-api-error-bodies.observed.json")["cases"] if c["status"] == 401)
    for headers in (
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": world.credentials["fly_api_token"]},
    ):
        response = call(world, "GET", machines_url(), headers=headers)
        assert response.status_code == 401
        assert response.json() == observed["body"]
        validate(response.json(), component("ErrorResponse"))
    assert call(world, "GET", machines_url(), headers=auth(world, "FlyV1")).status_code == 200
    assert call(world, "GET", machines_url(), headers=auth(world, "Bearer")).status_code == 200


def test_every_answer_carries_a_deterministic_fly_request_id(world: World) -> None:
    """Each answer has a fly-request-id shaped like the observed one; the same calls on the same scenario give the same
    ids."""
    other = World.from_scenario(load_scenario("stub-image"))
    urls = [machines_url(), machines_url(suffix=f"/{SEED_MACHINE}"), machines_url(suffix=f"/{STUB}")]
    ids = [call(world, "GET", u).headers["fly-request-id"] for u in urls]
    again = [call(other, "GET", u).headers["fly-request-id"] for u in urls]
    assert ids == again and len(set(ids)) == len(ids)
    assert all(len(i.split("-")[0]) == 26 for i in ids)


# --------------------------------------------------------------------------- GraphQL
def graphql(
    world: World, query: str, variables: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return call(world, "POST", f"{API}/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


def test_graphql_releases_query_answers_newest_first_with_image_ref(world: World) -> None:
    """The exact `fly releases` query gets releases newest first, with imageRef, in the constructed response's shape."""
    request = reference("graphql-releases.request.docs.json")
    response = graphql(world, request["query"], {"appName": APP, "limit": 25})
    assert response.status_code == 200
    nodes = response.json()["data"]["app"]["releases"]["nodes"]
    assert [n["version"] for n in nodes] == [2, 1]
    assert nodes[0]["imageRef"] == RELEASE_IMAGE
    sample = reference("graphql-releases.response.constructed.json")["data"]["app"]["releases"]["nodes"][0]
    assert all(set(n) == set(sample) and set(n["user"]) == set(sample["user"]) for n in nodes)
    one = graphql(world, request["query"], {"appName": APP, "limit": 1}).json()["data"]["app"]["releases"]["nodes"]
    assert [n["version"] for n in one] == [2]  # first: $limit is respected


def test_graphql_unknown_app_is_http_200_with_errors(world: World) -> None:
    """An unknown app answers HTTP 200 with data null and errors[] 'Could not find App', as the constructed sample."""
    request = reference("graphql-releases.request.docs.json")
    response = graphql(world, request["query"], {"appName": "no-such-app", "limit": 25})
    assert response.status_code == 200
    expected = {
        k: v for k, v in reference("graphql-error.app-not-found.constructed.json").items() if not k.startswith("_")
    }
    assert response.json() == expected


def test_graphql_minimal_app_query_selects_only_the_asked_fields(world: World) -> None:
    """`app(name:) { id name organization { slug } }` answers exactly those fields, aliases honoured."""
    body = graphql(world, 'query { app(name: "vyx-app") { id appName: name organization { slug } } }').json()
    assert body == {"data": {"app": {"id": world.app(APP)["id"], "appName": APP, "organization": {"slug": "personal"}}}}  # type: ignore[index]


def test_graphql_unsupported_query_names_what_the_sandbox_supports(world: World) -> None:
    """A query outside the modelled subset is HTTP 200 with an errors[] message listing what is supported."""
    for query in (
        "query { viewer { email } }",
        'query { app(name: "vyx-app") { machines { nodes { id } } } }',
        "mutation { x }",
    ):
        response = graphql(world, query)
        assert response.status_code == 200
        message = response.json()["errors"][0]["message"]
        assert "unsupported" in message and "releasesUnprocessed" in message


def test_graphql_without_token_is_an_unauthorized_error(world: World) -> None:
    """Without the Fly token GraphQL answers errors[] with flyctl's 'You must be authenticated' and code
    UNAUTHORIZED."""
    response = graphql(world, 'query { app(name: "vyx-app") { id } }', headers={})
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHORIZED" and "authenticated" in error["message"]
    assert response.json()["data"] is None


# --------------------------------------------------------------------------- REST releases
def test_rest_releases_follow_the_constructed_shape(world: World) -> None:
    """GET /api/v1/apps/{app}/releases?limit=N has {releases: [...]} with the constructed sample's keys, newest
    first."""
    sample = reference("rest-releases.response.constructed.json")["releases"][0]
    body = call(world, "GET", f"{API}/api/v1/apps/{APP}/releases", params={"limit": "1"}).json()
    assert set(body) == {"releases"} and len(body["releases"]) == 1
    assert set(body["releases"][0]) == set(sample)
    assert body["releases"][0]["image_ref"] == RELEASE_IMAGE and body["releases"][0]["user"] == "deployer@example.com"
    every = call(world, "GET", f"{API}/api/v1/apps/{APP}/releases").json()["releases"]
    assert [r["version"] for r in every] == [2, 1]


def test_rest_current_release_and_404_when_there_is_none(world: World) -> None:
    """…/releases/current is the platform's current release; an app that never deployed gets 404."""
    current = call(world, "GET", f"{API}/api/v1/apps/{APP}/releases/current")
    assert current.status_code == 200 and current.json()["version"] == 2
    bare = World.from_scenario(
        parse_scenario(
            "name: bare\nnow: 2025-10-02T17:25:00Z\nfly: {apps: [bare-app]}\n"
            "supabase: {project_ref: bareprojectrefabcdef}\n"
        )
    )
    assert call(bare, "GET", f"{API}/api/v1/apps/bare-app/releases/current").status_code == 404
    assert call(bare, "GET", f"{API}/api/v1/apps/bare-app/releases").json() == {"releases": []}


def test_rest_without_token_is_401(world: World) -> None:
    """The REST API refuses a request without the Fly token with 401."""
    assert call(world, "GET", f"{API}/api/v1/apps/{APP}/releases", headers={}).status_code == 401
    assert (
        call(world, "GET", f"{API}/api/v1/apps/{APP}/logs", headers={"Authorization": "Bearer nope"}).status_code == 401
    )


# --------------------------------------------------------------------------- logs
def make_many_logs(world: World, machines: int = 45) -> None:
    """Create enough serving machines that the app holds well over one page (100) of log lines."""
    for _ in range(machines):
        create(world, RELEASE_IMAGE)
        world.sleep(3)


def test_log_entries_follow_the_constructed_shape(world: World) -> None:
    """A log page is JSON:API data[] of {id, attributes} with the constructed sample's keys and an ns next_token."""
    sample = reference("logs.response.constructed.json")
    body = call(world, "GET", f"{API}/api/v1/apps/{APP}/logs").json()
    assert set(body) == set(sample) - {"_provenance"}
    entry = body["data"][0]
    assert set(entry) == set(sample["data"][0]) and set(entry["attributes"]) == set(sample["data"][0]["attributes"])
    assert set(entry["attributes"]["meta"]) == set(sample["data"][0]["attributes"]["meta"])
    assert entry["attributes"]["instance"] == SEED_MACHINE
    assert body["meta"]["next_token"] == str(max(e["ts_ns"] for e in app_logs(world)))


def test_logs_paging_with_next_token_reaches_every_entry(world: World) -> None:
    """Paging forward from an old next_token, 100 at most per page, yields every stored entry once, oldest first."""
    make_many_logs(world)
    stored = sorted(e["ts_ns"] for e in app_logs(world))
    assert len(stored) > 200
    token, seen = "0", []
    while True:
        body = call(world, "GET", f"{API}/api/v1/apps/{APP}/logs", params={"next_token": token}).json()
        assert len(body["data"]) <= 100
        if not body["data"]:
            assert body["meta"]["next_token"] == token  # an empty page hands the token back
            break
        page_ns = [_ns(e["attributes"]["timestamp"]) for e in body["data"]]
        assert page_ns == sorted(page_ns)
        seen.extend(page_ns)
        token = body["meta"]["next_token"]
    assert seen == stored


def _ns(timestamp: str) -> int:
    """Unix ns of the logs API's RFC 3339 nanosecond timestamp (``2025-10-02T16:20:01.123456789Z``)."""
    whole, _, fraction = timestamp.rstrip("Z").partition(".")
    seconds = int(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp())
    return seconds * 10**9 + int(fraction.ljust(9, "0"))


def test_logs_without_next_token_are_the_most_recent_100_of_the_last_day(world: World) -> None:
    """With no next_token the page holds the 100 newest entries of the last 24 h, oldest first."""
    make_many_logs(world)
    body = call(world, "GET", f"{API}/api/v1/apps/{APP}/logs").json()
    newest = sorted(e["ts_ns"] for e in app_logs(world))[-100:]
    assert [_ns(e["attributes"]["timestamp"]) for e in body["data"]] == newest
    assert body["meta"]["next_token"] == str(newest[-1])


def test_logs_filter_by_instance_and_age_out_after_seven_days(world: World) -> None:
    """instance= keeps one machine's lines; entries older than 7 days are gone."""
    other = create(world, RELEASE_IMAGE).json()["id"]
    world.sleep(5)
    body = call(world, "GET", f"{API}/api/v1/apps/{APP}/logs", params={"next_token": "0", "instance": other}).json()
    assert body["data"] and {e["attributes"]["instance"] for e in body["data"]} == {other}
    world.sleep(8 * 24 * 3600)
    aged = call(world, "GET", f"{API}/api/v1/apps/{APP}/logs", params={"next_token": "0"}).json()
    assert aged == {"data": [], "meta": {"next_token": "0"}}


def test_release_and_log_handlers_leave_other_paths_to_the_router(world: World) -> None:
    """Paths outside their routes give None so the router can answer them."""
    for handler, url in (
        (fly_api.handle_fly_rest, f"{API}/api/v1/apps/{APP}/machines"),
        (fly_api.handle_graphql, f"{API}/graphiql"),
        (fly_api.handle_machines, f"{MACHINES}/v1/projects/x"),
    ):
        assert handler(world, httpx.Request("GET", url, headers=auth(world))) is None


def test_the_wider_worlds_machines_still_match_the_spec() -> None:
    """healthy-noise's machines (release command, console, restarts, requested stop) validate against the spec."""
    world = World.from_scenario(load_scenario("healthy-noise"))
    body = call(world, "GET", machines_url(), params={"include_deleted": "true"}).json()
    validate(body, schema_of("/apps/{app_name}/machines"))
    groups = {(m["config"].get("metadata") or {}).get("fly_process_group") for m in body}
    assert {"fly_app_release_command", "fly_app_console", "worker"} <= groups

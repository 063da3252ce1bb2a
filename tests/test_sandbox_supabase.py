"""Tests for the sandbox's Supabase surfaces: PostgREST, Edge Functions, Management API.

PostgREST is driven both with raw httpx requests and with the real supabase-py
2.34.1 client on an httpx.MockTransport, so the sandbox answers what the client
actually parses. Management API bodies are checked against the reference
OpenAPI spec and the reference samples.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client

from vyxops_sandbox.management_api import handle_management
from vyxops_sandbox.scenario import load_scenario
from vyxops_sandbox.supabase_api import MAX_ROWS, handle_functions, handle_postgrest
from vyxops_sandbox.world import World

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "supabase"
SEED_MACHINE = "5683732efe3208"
STUB_IMAGE = "registry.fly.io/vyx-app:stub"

_SCENARIO = load_scenario("stub-image")


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def world() -> World:
    return World.from_scenario(_SCENARIO)


def creds(world: World) -> dict[str, str]:
    return world.credentials


def supabase_for(world: World, key: str | None = None) -> Client:
    """supabase-py 2.34.1 wired to the sandbox, GET retries off (vyxops retries itself)."""
    c = creds(world)

    def route(request: httpx.Request) -> httpx.Response:
        for handler in (handle_postgrest, handle_functions):
            response = handler(world, request)
            if response is not None:
                return response
        return httpx.Response(404, content=b"404 page not found\n")

    transport = httpx.MockTransport(route)
    return create_client(
        f"https://{c['project_ref']}.supabase.co",
        key or c["supabase_service_role_key"],
        options=ClientOptions(httpx_client=httpx.Client(transport=transport), postgrest_client_retry=False),
    )


def rest(
    world: World,
    method: str,
    path: str,
    *,
    key: str | None = None,
    params: Any = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> httpx.Response:
    """A raw PostgREST request with the service key unless told otherwise."""
    c = creds(world)
    k = c["supabase_service_role_key"] if key is None else key
    h = {"apikey": k, "authorization": f"Bearer {k}"} if k else {}
    h.update(headers or {})
    content = json.dumps(body).encode() if body is not None else None
    if content is not None:
        h["content-type"] = "application/json"
    request = httpx.Request(
        method, f"https://{c['project_ref']}.supabase.co/rest/v1/{path}", params=params, headers=h, content=content
    )
    response = handle_postgrest(world, request)
    assert response is not None
    return response


def mgmt(
    world: World,
    method: str,
    sub: str,
    *,
    token: str | None = None,
    ref: str | None = None,
    params: Any = None,
    body: Any = None,
    raw: bytes | None = None,
) -> httpx.Response:
    """A Management API request with the sandbox's access token unless told otherwise."""
    c = creds(world)
    t = c["supabase_access_token"] if token is None else token
    headers = {"authorization": f"Bearer {t}"} if t else {}
    content = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if content is not None:
        headers["content-type"] = "application/json"
    request = httpx.Request(
        method,
        f"https://api.supabase.com/v1/projects/{ref or c['project_ref']}{sub}",
        params=params,
        headers=headers,
        content=content,
    )
    response = handle_management(world, request)
    assert response is not None
    return response


def invoke(
    world: World, slug: str, body: Any = None, *, auth: str | None = "service", raw: bytes | None = None
) -> httpx.Response:
    c = creds(world)
    headers: dict[str, str] = {"content-type": "application/json"}
    if auth == "service":
        headers["authorization"] = f"Bearer {c['supabase_service_role_key']}"
    elif auth is not None:
        headers["authorization"] = auth
    content = raw if raw is not None else json.dumps(body).encode()
    request = httpx.Request(
        "POST", f"https://{c['project_ref']}.supabase.co/functions/v1/{slug}", headers=headers, content=content
    )
    response = handle_functions(world, request)
    assert response is not None
    return response


def machines_rows(world: World) -> list[dict[str, Any]]:
    return world.state["supabase"]["tables"]["machines"]["rows"]


def add_rows(world: World, n: int) -> None:
    """Insert ``n`` rows through supabase-py (one POST), as a real backfill would."""
    sb = supabase_for(world)
    rows = [
        {
            "user_id": f"u-{i}",
            "fly_machine_id": f"m{i:05d}",
            "fly_app": "vyx-app",
            "region": "ord",
            "image": STUB_IMAGE,
            "status": "running",
        }
        for i in range(n)
    ]
    sb.table("machines").insert(rows, returning="minimal").execute()


def _inline_refs(node: Any, spec: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return _inline_refs(target, spec)
        return {k: _inline_refs(v, spec) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, spec) for v in node]
    return node


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return json.loads((REFERENCE / "management-api-openapi.json").read_text())


def response_schema(spec: dict[str, Any], path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return _inline_refs(schema, spec)


# --------------------------------------------------------------------------- the seed incident
def test_docker_image_secret_digest_is_sha256_of_stub_image(world: World) -> None:
    """GET secrets lists DOCKER_IMAGE as sha256("registry.fly.io/vyx-app:stub"), never the plaintext, sorted by name."""
    r = mgmt(world, "GET", "/secrets")
    assert r.status_code == 200
    body = r.json()
    assert [s["name"] for s in body] == sorted(s["name"] for s in body)
    docker = next(s for s in body if s["name"] == "DOCKER_IMAGE")
    assert docker["value"] == hashlib.sha256(STUB_IMAGE.encode()).hexdigest()
    assert STUB_IMAGE not in r.text


def test_seed_machine_row_is_starting_via_supabase_py(world: World) -> None:
    """The seed's DB row for 5683732efe3208 reads as `starting` through supabase-py eq().single()."""
    sb = supabase_for(world)
    row = (
        sb.table("machines")
        .select("fly_machine_id,status,image")
        .eq("fly_machine_id", SEED_MACHINE)
        .single()
        .execute()
        .data
    )
    assert row == {"fly_machine_id": SEED_MACHINE, "status": "starting", "image": STUB_IMAGE}


# --------------------------------------------------------------------------- PostgREST reads
def test_supabase_py_filters_order_and_exact_count(world: World) -> None:
    """select with eq/gte/lte/in_/order/limit and count="exact" gives matching rows newest first, and the total."""
    add_rows(world, 30)
    sb = supabase_for(world)
    result = (
        sb.table("machines")
        .select("fly_machine_id,region,created_at", count="exact")
        .eq("status", "running")
        .gte("created_at", "2025-10-02T00:00:00Z")
        .lte("created_at", "2025-10-03T00:00:00Z")
        .in_("fly_machine_id", ["m00003", "m00007", "m00011"])
        .order("fly_machine_id", desc=True)
        .limit(2)
        .execute()
    )
    assert [r["fly_machine_id"] for r in result.data] == ["m00011", "m00007"]
    assert result.count == 3
    assert set(result.data[0]) == {"fly_machine_id", "region", "created_at"}


def test_timestamps_compare_as_times_not_text(world: World) -> None:
    """A Z-form filter value matches the stored `+00:00` timestamp it denotes, and gt/lt order by time."""
    stored = next(r for r in machines_rows(world) if r["fly_machine_id"] == SEED_MACHINE)["created_at"]
    assert stored.endswith("+00:00")
    z_form = stored.replace("+00:00", "Z")
    r = rest(world, "GET", "machines", params={"select": "fly_machine_id", "created_at": f"eq.{z_form}"})
    assert r.json() == [{"fly_machine_id": SEED_MACHINE}]
    r = rest(world, "GET", "machines", params={"select": "fly_machine_id", "created_at": "gt.2025-10-02T16:18:40Z"})
    assert r.json() == [{"fly_machine_id": SEED_MACHINE}]
    r = rest(world, "GET", "machines", params={"select": "fly_machine_id", "created_at": "lt.2025-10-02T16:18:40Z"})
    assert r.json() == []


def test_max_rows_cap_paging_and_exact_count(world: World) -> None:
    """At most 1000 rows come back silently (206 with the true total); order+range paging reaches every row."""
    add_rows(world, 2500)
    total = len(machines_rows(world))
    assert total == 2501

    raw = rest(world, "GET", "machines", params={"select": "id"}, headers={"prefer": "count=exact"})
    assert raw.status_code == 206
    assert len(raw.json()) == MAX_ROWS
    assert raw.headers["content-range"] == f"0-999/{total}"
    assert raw.headers["content-type"] == "application/json; charset=utf-8"
    assert raw.headers["sb-request-id"]

    plain = rest(world, "GET", "machines", params={"select": "id"})
    assert plain.status_code == 200 and len(plain.json()) == MAX_ROWS
    assert plain.headers["content-range"] == "0-999/*"

    sb = supabase_for(world)
    unpaged = sb.table("machines").select("id", count="exact").execute()
    assert len(unpaged.data) == MAX_ROWS and unpaged.count == total

    seen: list[str] = []
    offset = 0
    while True:
        page = sb.table("machines").select("id", count="exact").order("id").range(offset, offset + 1499).execute()
        assert len(page.data) <= MAX_ROWS
        assert page.count == total
        if not page.data:
            break
        seen.extend(r["id"] for r in page.data)
        offset += len(page.data)
    assert len(seen) == total == len(set(seen))
    assert seen == sorted(seen)


def test_count_forms_for_empty_results_and_head(world: World) -> None:
    """Empty results give Content-Range `*/0` with a count and `*/*` without; HEAD gives the count and no body."""
    r = rest(world, "GET", "machines", params={"status": "eq.nope"}, headers={"prefer": "count=exact"})
    assert (r.status_code, r.json(), r.headers["content-range"]) == (200, [], "*/0")
    r = rest(world, "GET", "machines", params={"status": "eq.nope"})
    assert r.headers["content-range"] == "*/*"
    sb = supabase_for(world)
    head = sb.table("machines").select("id", count="exact", head=True).execute()
    assert head.count == 1
    r = rest(world, "HEAD", "machines", params={"select": "id"}, headers={"prefer": "count=exact"})
    assert r.content == b"" and r.headers["content-range"] == "0-0/1"


def test_range_header_and_offset_past_the_end(world: World) -> None:
    """A Range header pages like limit/offset, and an offset beyond the counted total is 416 PGRST103."""
    add_rows(world, 20)
    r = rest(
        world,
        "GET",
        "machines",
        params={"select": "fly_machine_id", "order": "fly_machine_id.asc", "fly_machine_id": "like.m*"},
        headers={"range": "5-9", "range-unit": "items", "prefer": "count=exact"},
    )
    assert r.status_code == 206
    assert [x["fly_machine_id"] for x in r.json()] == [f"m{i:05d}" for i in range(5, 10)]
    assert r.headers["content-range"] == "5-9/20"
    r = rest(world, "GET", "machines", params={"offset": "50"}, headers={"prefer": "count=exact"})
    assert r.status_code == 416 and r.json()["code"] == "PGRST103"


def test_filter_operators_and_null_logic(world: World) -> None:
    """neq skips NULL cells, is.null finds them, not.in excludes, ilike matches case-insensitively with `*`."""
    add_rows(world, 3)
    # A row without a user: the seed's nine-column table has no `error` column to hold NULLs any more.
    supabase_for(world).table("machines").insert({"fly_machine_id": "m-nouser", "status": "starting"}).execute()
    r = rest(
        world,
        "GET",
        "machines",
        params={
            "select": "fly_machine_id",
            "user_id": "not.is.null",
            "fly_machine_id": "not.in.(m00000,m00001)",
            "order": "fly_machine_id",
        },
    )
    assert [x["fly_machine_id"] for x in r.json()] == [SEED_MACHINE, "m00002"]
    r = rest(world, "GET", "machines", params={"select": "fly_machine_id", "user_id": "is.null"})
    assert r.json() == [{"fly_machine_id": "m-nouser"}]
    r = rest(
        world,
        "GET",
        "machines",
        params={"select": "fly_machine_id", "user_id": "neq.x", "fly_machine_id": "eq.m-nouser"},
    )
    assert r.json() == []  # its user_id is NULL: NULL <> 'x' is not true
    r = rest(
        world,
        "GET",
        "machines",
        params={"select": "image", "image": "ilike.*VYX-APP:STUB", "fly_machine_id": f"eq.{SEED_MACHINE}"},
    )
    assert r.json() == [{"image": STUB_IMAGE}]


def test_single_without_exactly_one_row_is_406(world: World) -> None:
    """single() over zero rows answers 406 PGRST116, which supabase-py raises as APIError."""
    sb = supabase_for(world)
    with pytest.raises(APIError) as info:
        sb.table("machines").select("*").eq("fly_machine_id", "nope").single().execute()
    assert info.value.code == "PGRST116"
    assert info.value.details == "The result contains 0 rows"


def test_unknown_column_and_table_errors(world: World) -> None:
    """Unknown select/filter columns give 400 42703, an unknown table 404 PGRST205 with a hint."""
    r = rest(world, "GET", "machines", params={"select": "id,statuss"})
    assert r.status_code == 400
    assert r.json() == {
        "code": "42703",
        "details": None,
        "hint": 'Perhaps you meant to reference the column "machines.status".',
        "message": "column machines.statuss does not exist",
    }
    r = rest(world, "GET", "machines", params={"nope": "eq.1"})
    assert r.status_code == 400 and r.json()["code"] == "42703"
    r = rest(world, "GET", "machine")
    assert r.status_code == 404
    assert r.json()["code"] == "PGRST205" and r.json()["hint"] == "Perhaps you meant the table 'public.machines'"


def test_bad_uuid_filter_is_22p02(world: World) -> None:
    """Filtering the uuid `id` column with a machine id fails loudly (22P02) instead of matching nothing."""
    r = rest(world, "GET", "machines", params={"id": f"eq.{SEED_MACHINE}"})
    assert r.status_code == 400 and r.json()["code"] == "22P02"


# --------------------------------------------------------------------------- auth
def test_gateway_refuses_missing_or_wrong_apikey(world: World) -> None:
    """A missing or wrong apikey gets the gateway's 401 without a `code` (not a PostgREST error)."""
    r = rest(world, "GET", "machines", key="sb_secret_wrong")
    assert r.status_code == 401
    assert r.json() == {
        "message": "Invalid API key",
        "hint": "Double check your Supabase `anon` or `service_role` API key.",
    }
    r = rest(world, "GET", "machines", key="")
    assert r.status_code == 401 and "code" not in r.json()


def test_anon_key_cannot_read_or_update_machines(world: World) -> None:
    """With the anon key reads and updates of machines are 401 42501 and no row changes."""
    before = copy.deepcopy(machines_rows(world))
    anon = creds(world)["supabase_anon_key"]
    r = rest(world, "GET", "machines", key=anon)
    assert r.status_code == 401
    assert r.json() == {
        "code": "42501",
        "details": None,
        "hint": None,
        "message": "permission denied for table machines",
    }
    sb = supabase_for(world, key=anon)
    with pytest.raises(APIError) as info:
        sb.table("machines").update({"status": "failed"}).eq("status", "starting").execute()
    assert info.value.code == "42501"
    assert machines_rows(world) == before


# --------------------------------------------------------------------------- PostgREST writes
def test_update_without_filter_is_refused_21000(world: World) -> None:
    """An update with no filter is refused with 21000 and changes nothing."""
    before = copy.deepcopy(machines_rows(world))
    sb = supabase_for(world)
    with pytest.raises(APIError) as info:
        sb.table("machines").update({"status": "failed"}).execute()
    assert info.value.code == "21000"
    assert info.value.message == "UPDATE requires a WHERE clause"
    assert machines_rows(world) == before
    r = rest(world, "PATCH", "machines", body={"status": "failed"}, headers={"prefer": "return=representation"})
    assert r.status_code == 400


def test_update_matching_nothing_returns_empty_list(world: World) -> None:
    """An update whose filter matches no row answers 200 [] (the caller must check what came back)."""
    sb = supabase_for(world)
    result = sb.table("machines").update({"status": "failed"}).eq("fly_machine_id", "does-not-exist").execute()
    assert result.data == []
    r = rest(
        world,
        "PATCH",
        "machines",
        params={"fly_machine_id": "eq.does-not-exist"},
        body={"status": "failed"},
        headers={"prefer": "return=representation"},
    )
    assert (r.status_code, r.json()) == (200, [])


def test_guarded_update_changes_row_only_when_unchanged(world: World) -> None:
    """status=eq.starting&updated_at=eq.<value read> matches nothing after a concurrent change, else updates once."""
    sb = supabase_for(world)

    def read() -> dict[str, Any]:
        return (
            sb.table("machines")
            .select("id,status,updated_at")
            .eq("fly_machine_id", SEED_MACHINE)
            .single()
            .execute()
            .data
        )

    def guarded(seen: dict[str, Any]) -> list[dict[str, Any]]:
        return (
            sb.table("machines")
            .update({"status": "failed"})  # the seed's table has no `error` column
            .eq("id", seen["id"])
            .eq("status", "starting")
            .eq("updated_at", seen["updated_at"])
            .execute()
            .data
        )

    stale = read()
    assert stale["status"] == "starting"
    # Another writer touches the row after it was read (World.db_update moves updated_at).
    world.sleep(5)
    world.db_update("machines", {"fly_machine_id": SEED_MACHINE}, {"status": "starting"})
    assert guarded(stale) == []
    assert read()["status"] == "starting"

    fresh = read()
    world.sleep(1)
    changed = guarded(fresh)
    assert len(changed) == 1 and changed[0]["status"] == "failed"
    assert changed[0]["updated_at"] != fresh["updated_at"]  # updated_at follows the update
    assert guarded(fresh) == []  # applying twice changes nothing the second time
    assert read()["status"] == "failed"


def test_update_minimal_with_count_is_204_with_content_range(world: World) -> None:
    """return=minimal,count=exact answers 204 with no body and the affected count in Content-Range."""
    r = rest(
        world,
        "PATCH",
        "machines",
        params={"fly_machine_id": f"eq.{SEED_MACHINE}"},
        body={"region": "iad"},
        headers={"prefer": "return=minimal,count=exact"},
    )
    assert r.status_code == 204 and r.content == b""
    assert r.headers["content-range"] == "0-0/1"
    assert next(x for x in machines_rows(world) if x["fly_machine_id"] == SEED_MACHINE)["region"] == "iad"


def test_max_affected_strict_refuses_and_rolls_back(world: World) -> None:
    """max_affected(n) with more matching rows is 400 PGRST124 and no row changes."""
    add_rows(world, 5)
    sb = supabase_for(world)
    with pytest.raises(APIError) as info:
        sb.table("machines").update({"status": "failed"}).eq("status", "running").max_affected(2).execute()
    assert info.value.code == "PGRST124"
    assert info.value.details == "The query affects 5 rows"
    assert all(r["status"] == "running" for r in machines_rows(world) if r["fly_machine_id"].startswith("m0"))


def test_unknown_column_in_update_body_is_pgrst204(world: World) -> None:
    """An update naming a column the table lacks is 400 PGRST204 with PostgREST's schema-cache message."""
    r = rest(world, "PATCH", "machines", params={"fly_machine_id": f"eq.{SEED_MACHINE}"}, body={"state": "failed"})
    assert r.status_code == 400
    assert r.json()["code"] == "PGRST204"
    assert r.json()["message"] == "Could not find the 'state' column of 'machines' in the schema cache"


def test_insert_returns_201_with_defaults(world: World) -> None:
    """POST with return=representation answers 201 and the stored rows with id and timestamps filled."""
    r = rest(
        world,
        "POST",
        "machines",
        body={"user_id": "u-7", "status": "starting"},
        headers={"prefer": "return=representation"},
    )
    assert r.status_code == 201
    (row,) = r.json()
    assert row["user_id"] == "u-7" and row["status"] == "starting"
    uuid.UUID(row["id"])
    assert row["created_at"].endswith("+00:00")
    r = rest(world, "POST", "machines", body={"id": row["id"], "user_id": "u-8"})
    assert r.status_code == 409 and r.json()["code"] == "23505"


# --------------------------------------------------------------------------- Edge Functions
def test_provision_machine_creates_machine_and_starting_row(world: World) -> None:
    """An authorised invocation creates a Fly machine with the secret's image and a `starting` row."""
    r = invoke(world, "provision-machine", {"user_id": "u-99", "region": "ord"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "starting" and body["image"] == STUB_IMAGE
    assert world.machine("vyx-app", body["machine_id"]) is not None
    sb = supabase_for(world)
    row = sb.table("machines").select("status,user_id").eq("fly_machine_id", body["machine_id"]).single().execute().data
    assert row == {"status": "starting", "user_id": "u-99"}


def test_provision_machine_with_missing_tag_is_500_and_no_row(world: World) -> None:
    """With DOCKER_IMAGE on a tag the registry lacks, the function answers 500 and writes no row and no machine."""
    assert (
        mgmt(
            world, "POST", "/secrets", body=[{"name": "DOCKER_IMAGE", "value": "registry.fly.io/vyx-app:nope"}]
        ).status_code
        == 201
    )
    rows_before = len(machines_rows(world))
    machines_before = set(world.app("vyx-app")["machines"])
    r = invoke(world, "provision-machine", {"user_id": "u-5"})
    assert r.status_code == 500
    assert "MANIFEST_UNKNOWN" in r.json()["error"]
    assert len(machines_rows(world)) == rows_before
    assert set(world.app("vyx-app")["machines"]) == machines_before


def test_functions_auth_and_body_errors(world: World) -> None:
    """Missing or wrong bearer → 401 relay shapes, a non-JSON body → 400, an unknown slug → 404; none invoke."""
    rows_before = len(machines_rows(world))
    r = invoke(world, "provision-machine", {"user_id": "u"}, auth=None)
    assert (r.status_code, r.json()) == (401, {"code": 401, "message": "Missing authorization header"})
    r = invoke(world, "provision-machine", {"user_id": "u"}, auth="Bearer not-a-key")
    assert r.status_code == 401 and r.json()["code"] == 401
    r = invoke(world, "provision-machine", raw=b"user_id=u")
    assert r.status_code == 400
    r = invoke(world, "no-such-function", {"user_id": "u"})
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    assert len(machines_rows(world)) == rows_before


def test_supabase_py_functions_invoke(world: World) -> None:
    """supabase-py's functions.invoke reaches provision-machine with the key it holds."""
    sb = supabase_for(world)
    raw = sb.functions.invoke("provision-machine", invoke_options={"body": {"user_id": "u-py"}})
    assert json.loads(raw)["status"] == "starting"


# --------------------------------------------------------------------------- Management API
def test_secrets_upsert_and_delete_by_name(world: World) -> None:
    """POST upserts (201, new digest listed); DELETE removes only the named secrets (200)."""
    r = mgmt(
        world,
        "POST",
        "/secrets",
        body=[{"name": "DOCKER_IMAGE", "value": "registry.fly.io/vyx-app:v2"}, {"name": "EXTRA", "value": "x"}],
    )
    assert r.status_code == 201 and r.content == b""
    listed = {s["name"]: s["value"] for s in mgmt(world, "GET", "/secrets").json()}
    assert listed["DOCKER_IMAGE"] == hashlib.sha256(b"registry.fly.io/vyx-app:v2").hexdigest()
    assert listed["EXTRA"] == hashlib.sha256(b"x").hexdigest()
    r = mgmt(world, "DELETE", "/secrets", body=["EXTRA"])
    assert r.status_code == 200
    names = [s["name"] for s in mgmt(world, "GET", "/secrets").json()]
    assert "EXTRA" not in names and "DOCKER_IMAGE" in names and "FLY_APP_NAME" in names


def test_secret_writes_restart_every_function_with_a_new_version(world: World) -> None:
    """A secret set or deleted bumps every function's version and updated_at (PLATFORM.md); a no-op delete does not."""
    before = mgmt(world, "GET", "/functions/provision-machine").json()
    world.advance_to(world.now_ms + 60_000)
    assert mgmt(world, "POST", "/secrets", body=[{"name": "EXTRA", "value": "x"}]).status_code == 201
    after_set = mgmt(world, "GET", "/functions/provision-machine").json()
    assert after_set["version"] == before["version"] + 1 and after_set["updated_at"] == world.now_ms
    assert after_set["entrypoint_path"].endswith(f"_{after_set['version']}/source/index.ts")
    assert mgmt(world, "DELETE", "/secrets", body=["EXTRA"]).status_code == 200
    assert mgmt(world, "DELETE", "/secrets", body=["NEVER_SET"]).status_code == 200
    assert mgmt(world, "GET", "/functions/provision-machine").json()["version"] == before["version"] + 2
    status, _ = world.invoke_function("provision-machine", {"user_id": "u-after-secrets"})
    edge = [r for r in world.state["supabase"]["logs"] if r["source"] == "function_edge_logs"][-1]
    assert status == 200 and edge["log_attributes"]["version"] == str(before["version"] + 2)


def test_delete_secrets_without_names_is_refused(world: World) -> None:
    """DELETE with an empty list or no body answers 400 and deletes nothing."""
    before = copy.deepcopy(world.state["supabase"]["secrets"])
    assert mgmt(world, "DELETE", "/secrets", body=[]).status_code == 400
    assert mgmt(world, "DELETE", "/secrets").status_code == 400
    assert mgmt(world, "DELETE", "/secrets", raw=b"not json").status_code == 400
    assert world.state["supabase"]["secrets"] == before


def test_secret_names_with_supabase_prefix_are_refused(world: World) -> None:
    """POST of a SUPABASE_* name is 400 (CreateSecretBody pattern) and sets nothing."""
    r = mgmt(world, "POST", "/secrets", body=[{"name": "SUPABASE_X", "value": "v"}, {"name": "OK", "value": "v"}])
    assert r.status_code == 400
    assert "SUPABASE_" in r.json()["message"]
    assert "OK" not in world.state["supabase"]["secrets"]


def test_management_auth_and_ref(world: World) -> None:
    """A wrong or missing token is 401 {"message":"Unauthorized"}; another project's ref is 403."""
    assert mgmt(world, "GET", "/secrets", token="sbp_wrong").json() == {"message": "Unauthorized"}
    r = mgmt(world, "GET", "/secrets", token="")
    assert r.status_code == 401
    r = mgmt(world, "GET", "/secrets", ref="abcdefghijklmnopqrst")
    assert (r.status_code, r.json()) == (403, {"message": "Forbidden resource"})


def test_functions_list_and_get_have_ms_times(world: World) -> None:
    """functions list/get give FunctionResponse objects whose created_at/updated_at are epoch milliseconds."""
    listed = mgmt(world, "GET", "/functions").json()
    fn = next(f for f in listed if f["slug"] == "provision-machine")
    assert isinstance(fn["created_at"], int) and isinstance(fn["updated_at"], int)
    # milliseconds in 2025: ~1.7e12 (seconds would be ~1.7e9, microseconds ~1.7e15)
    assert 1_735_689_600_000 <= fn["created_at"] <= world.now_ms
    one = mgmt(world, "GET", "/functions/provision-machine")
    assert one.status_code == 200 and one.json() == fn
    assert mgmt(world, "GET", "/functions/nope").status_code == 404


def test_management_bodies_match_openapi_and_samples(world: World, openapi: dict[str, Any]) -> None:
    """Secrets list, functions list and function get validate against the spec and have the samples' keys."""
    secrets = mgmt(world, "GET", "/secrets").json()
    OAS30Validator(response_schema(openapi, "/v1/projects/{ref}/secrets")).validate(secrets)
    functions = mgmt(world, "GET", "/functions").json()
    OAS30Validator(response_schema(openapi, "/v1/projects/{ref}/functions")).validate(functions)
    one = mgmt(world, "GET", "/functions/provision-machine").json()
    OAS30Validator(response_schema(openapi, "/v1/projects/{ref}/functions/{function_slug}")).validate(one)

    secret_sample = json.loads((REFERENCE / "mgmt-secrets-list.sample.json").read_text())["body"]
    assert {k for s in secrets for k in s} == {k for s in secret_sample for k in s}
    fn_sample = json.loads((REFERENCE / "mgmt-functions-list.sample.json").read_text())["body"][0]
    assert set(functions[0]) == set(fn_sample)
    assert set(one) == set(fn_sample)


def test_postgrest_config_reports_max_rows(world: World, openapi: dict[str, Any]) -> None:
    """GET /postgrest answers max_rows 1000 with the recorded fixture's keys and the spec's schema."""
    body = mgmt(world, "GET", "/postgrest").json()
    assert body["max_rows"] == MAX_ROWS == 1000
    fixtures = json.loads((REFERENCE / "mgmt-api-recorded-cli-fixtures.json").read_text())["exchanges"]
    recorded = next(e for e in fixtures if e["fixture"].startswith("GET_v1_projects___PROJECT_REF___postgrest"))
    assert set(body) == set(recorded["response"]["body"])
    OAS30Validator(response_schema(openapi, "/v1/projects/{ref}/postgrest")).validate(body)


def test_logs_endpoint_returns_seed_function_logs(world: World) -> None:
    """The logs endpoint returns the seed's function_logs lines naming machine 5683732efe3208 and the stub image."""
    sql = (
        "select id, timestamp, event_message, log_attributes['level'] as level from logs "
        "where source = 'function_logs' and event_message ilike '%5683732efe3208%' order by timestamp desc limit 100"
    )
    r = mgmt(
        world,
        "GET",
        "/analytics/endpoints/logs",
        params={"sql": sql, "iso_timestamp_start": "2025-10-02T16:00:00Z", "iso_timestamp_end": "2025-10-02T17:25:00Z"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["error"] is None
    messages = [row["event_message"] for row in body["result"]]
    assert any(SEED_MACHINE in m and STUB_IMAGE in m for m in messages)


def test_logs_endpoint_errors_and_retired_logs_all(world: World) -> None:
    """A refused query answers {"result": null, "error": msg}; the retired logs.all path is 404."""
    r = mgmt(
        world,
        "GET",
        "/analytics/endpoints/logs",
        params={
            "sql": "select * from logs",
            "iso_timestamp_start": "2025-10-02T16:00:00Z",
            "iso_timestamp_end": "2025-10-02T17:00:00Z",
        },
    )
    assert r.status_code == 400
    assert r.json()["result"] is None and r.json()["error"]
    r = mgmt(world, "GET", "/analytics/endpoints/logs.all", params={"sql": "select 1"})
    assert r.status_code == 404


def test_rate_limit_headers_and_429(world: World) -> None:
    """Every Management answer carries x-ratelimit-*; call 121 in a virtual minute is 429, a minute later it passes."""
    first = mgmt(world, "GET", "/functions")
    assert first.headers["x-ratelimit-limit"] == "120"
    assert first.headers["x-ratelimit-remaining"] == "119"
    assert first.headers["x-ratelimit-reset"] == "60"
    assert mgmt(world, "GET", "/secrets", token="bad").headers["x-ratelimit-limit"] == "120"
    for _ in range(119):
        last = mgmt(world, "GET", "/functions")
    assert last.status_code == 200 and last.headers["x-ratelimit-remaining"] == "0"
    over = mgmt(world, "GET", "/functions")
    assert over.status_code == 429
    assert over.headers["retry-after"] == over.headers["x-ratelimit-reset"]
    assert mgmt(world, "GET", "/secrets").status_code == 200  # another endpoint has its own budget
    world.sleep(60)
    assert mgmt(world, "GET", "/functions").status_code == 200


def test_handlers_ignore_paths_that_are_not_theirs(world: World) -> None:
    """Each handler returns None outside its prefix so the router can fall through."""
    req = httpx.Request("GET", "https://api.machines.dev/v1/apps/vyx-app/machines")
    assert handle_postgrest(world, req) is None
    assert handle_functions(world, req) is None
    assert handle_management(world, req) is None

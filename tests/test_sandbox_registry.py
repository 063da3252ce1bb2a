"""The sandbox's registry.fly.io: manifest HEAD/GET/PUT, the retag, auth and the error bodies.

Shapes come from ``shared/reference/fly/registry-errors.observed.json`` and the Docker
Registry HTTP API v2 (distribution spec). Worlds are built in memory from the seed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from vyxops_sandbox import registry_api
from vyxops_sandbox.registry_api import MANIFEST_TYPES, OCI_MANIFEST
from vyxops_sandbox.scenario import load_scenario
from vyxops_sandbox.world import World

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "fly"
REGISTRY = "https://registry.fly.io"
ACCEPT = ", ".join(MANIFEST_TYPES)  # what vyxops (and the host's pull) sends
RELEASE_TAG = "deployment-01K6JV132H7B7Y5PP8Y5QSR23X"


@pytest.fixture
def world() -> World:
    return World.from_scenario(load_scenario("stub-image"))


def basic(world: World, user: str = "x", password: str | None = None) -> dict[str, str]:
    secret = world.credentials["fly_api_token"] if password is None else password
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def call(world: World, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
    """Send one request (Basic-authenticated unless ``headers`` is given) to the registry handler."""
    request = httpx.Request(
        method, REGISTRY + path, headers={"Accept": ACCEPT, **basic(world)} if headers is None else headers, **kw
    )
    response = registry_api.handle_registry(world, request)
    assert response is not None, f"{method} {path} was not taken"
    return response


def test_head_on_the_seed_stub_manifest_is_200_with_a_digest(world: World) -> None:
    """HEAD /v2/vyx-app/manifests/stub answers 200 with Docker-Content-Digest and Content-Type, and no body."""
    response = call(world, "HEAD", "/v2/vyx-app/manifests/stub")
    assert response.status_code == 200
    digest = response.headers["docker-content-digest"]
    assert digest == world.state["registry"]["vyx-app"]["tags"]["stub"]
    assert response.headers["content-type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert response.content == b""
    body = call(world, "GET", "/v2/vyx-app/manifests/stub").content
    assert int(response.headers["content-length"]) == len(body)


def test_get_returns_the_stored_bytes_unchanged(world: World) -> None:
    """GET serves the stored manifest bytes exactly; their sha256 is the digest, by tag and by digest alike."""
    by_tag = call(world, "GET", "/v2/vyx-app/manifests/stub")
    digest = by_tag.headers["docker-content-digest"]
    assert by_tag.content == world.state["registry"]["vyx-app"]["manifests"][digest]["body"].encode()
    assert "sha256:" + hashlib.sha256(by_tag.content).hexdigest() == digest
    by_digest = call(world, "GET", f"/v2/vyx-app/manifests/{digest}")
    assert by_digest.status_code == 200 and by_digest.content == by_tag.content


def test_unknown_tag_is_404_manifest_unknown(world: World) -> None:
    """An unknown tag answers 404 with the observed MANIFEST_UNKNOWN body; HEAD gets the status without a body."""
    observed = (
        json.loads((REFERENCE / "registry-errors.observed.json").read_text())["manifest_unknown_404"]
        if REFERENCE.exists()
        else None
    )
    response = call(world, "GET", "/v2/vyx-app/manifests/abc123")
    assert response.status_code == 404
    assert response.json() == (
        observed
        or {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": "unknown tag=abc123"}]}
    )
    head = call(world, "HEAD", "/v2/vyx-app/manifests/abc123")
    assert head.status_code == 404 and head.content == b""


def test_a_repository_no_app_has_is_404_name_unknown(world: World) -> None:
    """A repository that is no app of the org (a typo'd name) answers 404 NAME_UNKNOWN "app repository not found"."""
    response = call(world, "GET", "/v2/vyx-ap/manifests/latest")
    assert response.status_code == 404
    assert response.json()["errors"][0] == {
        "code": "NAME_UNKNOWN",
        "message": "app repository not found",
        "detail": {"name": "vyx-ap"},
    }
    head = call(world, "HEAD", "/v2/vyx-ap/manifests/latest")
    assert head.status_code == 404 and head.content == b""


def test_missing_or_wrong_credentials_get_the_basic_challenge(world: World) -> None:
    """Without the token as Basic password the registry answers 401, a Basic realm challenge, UNAUTHORIZED."""
    for headers in (
        {},
        basic(world, password="wrong"),
        {"Authorization": f"Bearer {world.credentials['fly_api_token']}"},
    ):
        response = call(world, "GET", "/v2/vyx-app/manifests/stub", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="flyio-registry.fly.dev"'
        assert response.json() == {
            "errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": None}]
        }
    head = call(world, "HEAD", "/v2/vyx-app/manifests/stub", headers={})
    assert head.status_code == 401 and head.content == b""


def test_base_endpoint_answers_an_empty_object(world: World) -> None:
    """GET /v2/ with credentials is 200 {} and names the API version; without them it is the 401 challenge."""
    response = call(world, "GET", "/v2/")
    assert response.status_code == 200 and response.json() == {}
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    assert call(world, "GET", "/v2/", headers={}).status_code == 401


def test_retag_via_get_and_put_keeps_the_digest(world: World) -> None:
    """GET the release manifest's raw bytes and type, PUT them as :latest: 201, same digest, then :latest resolves."""
    source = call(world, "GET", f"/v2/vyx-app/manifests/{RELEASE_TAG}")
    put = call(
        world,
        "PUT",
        "/v2/vyx-app/manifests/latest",
        headers={**basic(world), "Content-Type": source.headers["content-type"]},
        content=source.content,
    )
    assert put.status_code == 201
    assert put.headers["docker-content-digest"] == source.headers["docker-content-digest"]
    assert put.headers["location"] == f"/v2/vyx-app/manifests/{source.headers['docker-content-digest']}"
    head = call(world, "HEAD", "/v2/vyx-app/manifests/latest")
    assert head.status_code == 200 and head.headers["docker-content-digest"] == source.headers["docker-content-digest"]
    resolved = world.resolve_image("registry.fly.io/vyx-app:latest")
    assert resolved is not None and resolved[3]["behaviour"] == "serve"  # the content keeps its behaviour


def test_put_of_bytes_that_are_not_json_is_400_manifest_invalid(world: World) -> None:
    """A PUT whose body does not parse as JSON is refused with 400 MANIFEST_INVALID and no tag is made."""
    response = call(
        world,
        "PUT",
        "/v2/vyx-app/manifests/broken",
        headers={**basic(world), "Content-Type": MANIFEST_TYPES[0]},
        content=b"\x00not json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "MANIFEST_INVALID"
    assert "broken" not in world.state["registry"]["vyx-app"]["tags"]


def test_put_under_a_digest_that_does_not_match_is_400_digest_invalid(world: World) -> None:
    """A PUT by digest whose bytes hash to another digest is refused with DIGEST_INVALID."""
    body = call(world, "GET", "/v2/vyx-app/manifests/stub").content
    wrong = "sha256:" + "0" * 64
    response = call(
        world,
        "PUT",
        f"/v2/vyx-app/manifests/{wrong}",
        headers={**basic(world), "Content-Type": MANIFEST_TYPES[0]},
        content=body,
    )
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "DIGEST_INVALID"


def test_oci_manifest_is_served_only_to_a_client_that_accepts_it(world: World) -> None:
    """An OCI manifest is served with its own type when accepted, MANIFEST_UNKNOWN to a client not accepting OCI."""
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode()
    put = call(
        world,
        "PUT",
        "/v2/vyx-app/manifests/oci",
        headers={**basic(world), "Content-Type": OCI_MANIFEST},
        content=manifest,
    )
    assert put.status_code == 201
    served = call(world, "GET", "/v2/vyx-app/manifests/oci")
    assert served.headers["content-type"] == OCI_MANIFEST and served.content == manifest
    docker_only = call(world, "GET", "/v2/vyx-app/manifests/oci", headers={**basic(world), "Accept": MANIFEST_TYPES[0]})
    assert docker_only.status_code == 404 and docker_only.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_tag_listing_is_not_served(world: World) -> None:
    """/v2/<repo>/tags/list and /v2/_catalog answer like an unknown route: Fly documents no tag listing."""
    for path in ("/v2/vyx-app/tags/list", "/v2/_catalog"):
        response = call(world, "GET", path)
        assert response.status_code == 404 and response.text == "404 page not found\n"


def test_deleting_a_manifest_is_405_unsupported(world: World) -> None:
    """DELETE of a manifest is refused with 405 UNSUPPORTED and the tag stays."""
    response = call(world, "DELETE", "/v2/vyx-app/manifests/stub")
    assert response.status_code == 405 and response.json()["errors"][0]["code"] == "UNSUPPORTED"
    assert call(world, "HEAD", "/v2/vyx-app/manifests/stub").status_code == 200


def test_paths_outside_v2_are_left_to_the_router(world: World) -> None:
    """The registry handler answers None for paths that are not under /v2."""
    assert registry_api.handle_registry(world, httpx.Request("GET", REGISTRY + "/v1/apps/x")) is None
    assert registry_api.handle_registry(world, httpx.Request("GET", REGISTRY + "/v2x/foo")) is None

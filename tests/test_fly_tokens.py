"""Fly tokens as fly-go sends them (PLATFORM.md third round; fly-go tokens/tokens.go).

What each Fly service receives is read off the wire: a live session, opened from the
environment or flyctl's config.yml, over a MockTransport that records every header.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from vyxops.core import config, errors
from vyxops.core.flytokens import FlyTokens, strip_authorization_scheme
from vyxops.fetch.http import RetryPolicy, fly_authorization, registry_password
from vyxops.fetch.session import Session, build_session
from vyxops.fetch.targets import OpenRequest, open_live

# Canaries shaped like `fly auth login`'s bundle: a permission and a discharge macaroon, then a user token.
PERMISSION = "fm2_lJPECAAAAAAAAcanaryPermissionNeverReal0001"
DISCHARGE = "fm2_lJPEdischargeCanaryNeverReal0002"
USER = "fo1_canaryUserTokenNeverReal0003"
LOGIN_BUNDLE = f"{PERMISSION},{DISCHARGE},{USER}"
MACAROONS = f"{PERMISSION},{DISCHARGE}"
LEGACY = "canarylegacypersonaltoken00000000000004"
SUPABASE_ENV = {
    "SUPABASE_URL": "https://mockprojectref0001.supabase.co",
    "SUPABASE_SERVICE_ROLE_KEY": "sb_secret_" + "k" * 32,
    "SUPABASE_ACCESS_TOKEN": "sbp_" + "a" * 40,
}


def recording_handler(seen: dict[str, str]) -> httpx.MockTransport:
    """Answers each Fly service minimally and records the Authorization it received, by service."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        service = (
            "registry"
            if path.startswith("/v2/")
            else "graphql"
            if path == "/graphql"
            else "logs"
            if path.endswith("/logs")
            else "machines"
        )
        seen[service] = request.headers.get("authorization", "")
        if service == "registry":
            return httpx.Response(200, headers={"docker-content-digest": "sha256:" + "0" * 64})
        if service == "graphql":
            return httpx.Response(200, json={"data": {"app": {"releases": {"nodes": []}, "currentRelease": None}}})
        if service == "logs":
            return httpx.Response(200, json={"data": [], "meta": {"next_token": ""}})
        return httpx.Response(200, json=[])

    return httpx.MockTransport(handle)


class StepClock:
    """A clock that moves only when slept on, so that pacing costs a test no wall time."""

    def __init__(self) -> None:
        self.t = 1_760_000_000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def live_session(env: dict[str, str], seen: dict[str, str]) -> Session:
    """The live opener over ``env`` (credentials as a user sets them), its clients over a recording transport."""
    opened = open_live(OpenRequest(target=config.Target("live"), environ={**SUPABASE_ENV, **env}))
    opened = dataclasses.replace(opened, transport=recording_handler(seen), clock=StepClock())
    return build_session(config.Target("live"), opened, retry=RetryPolicy(max_attempts=1))


def headers_sent(env: dict[str, str]) -> dict[str, str]:
    """The Authorization each Fly service gets when live runs with ``env``."""
    seen: dict[str, str] = {}
    with live_session(env, seen) as session:
        session.fly.list_machines("vyx-app")
        session.fly.releases("vyx-app")
        session.fly.api.get_json("/api/v1/apps/vyx-app/logs")
        session.fly.head_manifest("registry.fly.io/vyx-app:deployment-01")
    return seen


def basic_password(header: str) -> str:
    user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    assert user == "x"
    return password


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own, so that ~/.fly/config.yml is the test's."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_a_flyctl_login_bundle_sends_the_user_token_to_graphql_only(home: Path) -> None:
    """config.yml's macaroons + fo1_ bundle: Machines, logs and registry get the macaroons only; GraphQL gets all."""
    (home / ".fly").mkdir()
    (home / ".fly" / "config.yml").write_text(f"access_token: {LOGIN_BUNDLE}\nlast_login: 2026-01-01T00:00:00Z\n")
    seen = headers_sent({})
    assert seen["machines"] == f"FlyV1 {MACAROONS}"
    assert seen["logs"] == f"FlyV1 {MACAROONS}"
    assert basic_password(seen["registry"]) == MACAROONS
    assert seen["graphql"] == f"FlyV1 {LOGIN_BUNDLE}"


@pytest.mark.parametrize("scheme", ["Bearer ", "FlyV1 ", "bearer ", "Bearer FlyV1 "])
def test_a_token_pasted_with_its_scheme_never_gets_a_second_one(scheme: str, home: Path) -> None:
    """FLY_ACCESS_TOKEN='Bearer …' or 'FlyV1 …' is sent under one scheme, the right one for the token."""
    macaroon = headers_sent({"FLY_ACCESS_TOKEN": scheme + MACAROONS})
    assert macaroon["machines"] == macaroon["graphql"] == f"FlyV1 {MACAROONS}"
    assert basic_password(macaroon["registry"]) == MACAROONS
    legacy = headers_sent({"FLY_API_TOKEN": scheme + LEGACY})
    assert legacy["machines"] == legacy["logs"] == legacy["graphql"] == f"Bearer {LEGACY}"
    assert basic_password(legacy["registry"]) == LEGACY


def test_flyctls_variable_order_decides_what_is_sent(home: Path) -> None:
    """With both variables set, FLY_ACCESS_TOKEN's token is the one on the wire (flyctl's env.First order)."""
    seen = headers_sent({"FLY_ACCESS_TOKEN": MACAROONS, "FLY_API_TOKEN": LEGACY})
    assert seen["machines"] == f"FlyV1 {MACAROONS}"


def test_user_tokens_alone_go_everywhere_as_bearer() -> None:
    """Without any macaroon, every service gets the user tokens under Bearer (fly-go's normalized())."""
    tokens = FlyTokens.parse(USER)
    assert tokens.flaps_header() == tokens.graphql_header() == f"Bearer {USER}"
    assert fly_authorization(USER) == f"Bearer {USER}" and registry_password(USER) == USER


def test_parsing_follows_fly_go() -> None:
    """Schemes are stripped case-insensitively and repeatedly; parts are trimmed and split by their label."""
    assert strip_authorization_scheme("  Bearer  FlyV1 fm2_x ") == "fm2_x"
    assert strip_authorization_scheme("Token abc") == "Token abc"
    tokens = FlyTokens.parse(f"FlyV1 {PERMISSION} , {USER},fm1r_a,fm1a_b,,")
    assert tokens.macaroons == (PERMISSION, "fm1r_a", "fm1a_b")
    assert tokens.user_tokens == (USER,)
    assert fly_authorization(LOGIN_BUNDLE, "api") == f"FlyV1 {LOGIN_BUNDLE}"
    assert tokens.api_header("/api/v1/apps/a/logs") == tokens.flaps_header()
    assert tokens.api_header("/prefix/api/v1/apps/a/logs") == tokens.flaps_header()  # FLY_API_BASE_URL with a path
    assert tokens.api_header("/graphql") == tokens.graphql_header()


def test_every_part_is_masked_and_no_repr_shows_one(home: Path) -> None:
    """Each part of a bundle, and the macaroons-only string, are registered for redaction; reprs hide them."""
    seen: dict[str, str] = {}
    with live_session({"FLY_ACCESS_TOKEN": f"Bearer {LOGIN_BUNDLE}"}, seen) as session:
        text = json.dumps([PERMISSION, DISCHARGE, USER, MACAROONS, repr(session.fly.machines)])
    masked = errors.redact(text)
    for part in (PERMISSION, DISCHARGE, USER):
        assert part not in masked
    assert USER not in repr(FlyTokens.parse(LOGIN_BUNDLE))


# --------------------------------------------------------------------------- the sandbox reads headers as Fly does


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("FlyV1 {macaroons}", 200),
        ("FlyV1 {macaroons},fo1_sandboxUserToken0005", 200),  # macaroon.Parse skips fo1_ parts
        ("Bearer {macaroons}", 200),
        ("Bearer FlyV1 {macaroons}", 200),
        ("FlyV1 {second},{first}", 200),  # a discharge before its permission token still verifies
        ("FlyV1 fo1_sandboxUserToken0005", 401),  # no macaroon left: "no valid tokens found"
        ("FlyV1 {macaroons},sk_unknownLabel", 401),  # an unknown label refuses the header
        ("FlyV1 {first}, {second}", 401),  # parts are not trimmed: " fm2" is no label
        ("FlyV1 {first}", 401),  # the discharge is missing
    ],
)
def test_the_sandbox_machines_api_reads_a_flyv1_header_as_macaroon_parse(
    header: str, status: int, tmp_path: Path
) -> None:
    """The sandbox's Machines API: its macaroons must match, fo1_ user tokens are ignored, anything else refuses."""
    from vyxops_sandbox.router import SandboxApp, SandboxTransport
    from vyxops_sandbox.world import World

    world = World.load("stub-image-macaroon-token", tmp_path)
    macaroons = world.credentials["fly_registry_password"]
    first, second = macaroons.split(",")
    value = header.format(macaroons=macaroons, first=first, second=second)
    transport = SandboxTransport(SandboxApp(world, autosave=False))
    with httpx.Client(transport=transport, base_url="https://api.machines.dev") as c:
        assert c.get("/v1/apps/vyx-app/machines", headers={"authorization": value}).status_code == status

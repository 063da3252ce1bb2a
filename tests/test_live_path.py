"""The live code path (environment credentials, real HTTP, wall clock) against the served sandbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vyxops.analysis.investigate import investigate
from vyxops.core.errors import ConfigError
from vyxops.fetch.session import open_session
from vyxops_sandbox.server import make_server
from vyxops_sandbox.world import World


@contextmanager
def served(scenario: str, tmp_path: Path) -> Iterator[tuple[World, str]]:
    """The scenario's world served on 127.0.0.1 (real time) for the block: the world and its base URL."""
    world = World.load(scenario, tmp_path)
    server = make_server(world, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield world, f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_live_target_over_http_finds_the_seed_root_cause(tmp_path: Path) -> None:
    """`--target live`, credentials from the environment, pointed at a served sandbox, names the seed's root cause."""
    with served("stub-image", tmp_path) as (world, base):
        creds = world.credentials
        environ = {
            "FLY_API_TOKEN": creds["fly_api_token"],
            "SUPABASE_URL": base,
            "SUPABASE_SERVICE_ROLE_KEY": creds["supabase_service_role_key"],
            "SUPABASE_ACCESS_TOKEN": creds["supabase_access_token"],
            "SUPABASE_PROJECT_REF": creds["project_ref"],
        }
        with open_session("live", environ=environ, base_url=base) as session:
            assert session.label == "live" and session.opened_by == "live"
            inv = investigate(session, "vyx-app", since="2025-10-02T00:00:00Z", until="2025-10-02T17:25:00Z")
        assert inv.root is not None and inv.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
        assert "5683732efe3208" in inv.summary


def test_live_target_pointed_by_the_base_url_variables_at_a_served_sandbox(tmp_path: Path) -> None:
    """FLY_API_BASE_URL, FLY_FLAPS_BASE_URL, FLY_REGISTRY_HOST and SUPABASE_API_URL alone (no base_url argument)
    take live to a served sandbox, with a `fly auth login` bundle in FLY_ACCESS_TOKEN beating a stale
    FLY_API_TOKEN (flyctl's order); the investigation runs end to end and names the seed's root cause."""
    with served("stub-image-macaroon-token", tmp_path) as (world, base):
        creds = world.credentials
        environ = {
            # As config.yml holds it after `fly auth login`: macaroons, then a user token the Machines API never sees.
            "FLY_ACCESS_TOKEN": creds["fly_api_token"] + ",fo1_sandboxUserTokenNeverReal0006",
            "FLY_API_TOKEN": "stale-token-flyctl-would-not-read-0007",
            "FLY_API_BASE_URL": base,
            "FLY_FLAPS_BASE_URL": base + "/",
            "FLY_REGISTRY_HOST": base,
            "SUPABASE_API_URL": base,
            "SUPABASE_URL": base,
            "SUPABASE_SERVICE_ROLE_KEY": creds["supabase_service_role_key"],
            "SUPABASE_ACCESS_TOKEN": creds["supabase_access_token"],
            "SUPABASE_PROJECT_REF": creds["project_ref"],
        }
        with open_session("live", environ=environ) as session:
            assert session.opened_by == "live" and f"fly_machines at {base}" in session.description
            inv = investigate(session, "vyx-app", since="2025-10-02T00:00:00Z", until="2025-10-02T17:25:00Z")
        assert inv.root is not None and inv.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
        assert "5683732efe3208" in inv.summary


def test_a_bad_base_url_variable_stops_live_before_any_call(tmp_path: Path) -> None:
    """A FLY_FLAPS_BASE_URL that is no URL is a ConfigError naming it, raised by the opener before any request."""
    environ = {
        "FLY_API_TOKEN": "unshaped-fly-token-0008",
        "FLY_FLAPS_BASE_URL": "_api.internal:4280",
        "SUPABASE_URL": "https://abcdefghijklmnopqrst.supabase.co",
        "SUPABASE_SERVICE_ROLE_KEY": "unshaped-key-0009",
        "SUPABASE_ACCESS_TOKEN": "unshaped-pat-0010",
    }
    with pytest.raises(ConfigError, match="FLY_FLAPS_BASE_URL"):
        open_session("live", environ=environ)

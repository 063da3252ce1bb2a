"""Self-hosted Supabase: the database URL and no Management API (no SUPABASE_ACCESS_TOKEN, no project ref). The
live code path against a served sandbox and a real PostgreSQL holding its table: the investigation runs, the
secrets and function logs are gaps that decide health, and the verdict never says healthy on what it cannot see."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vyxops.analysis.investigate import Investigation, investigate
from vyxops.core.contract import AmbiguousContract
from vyxops.core.errors import ConfigError
from vyxops.fetch.http import Attempt
from vyxops.fetch.session import open_session
from vyxops.testing.postgres import Database, pipeline_contract
from vyxops_sandbox.server import make_server
from vyxops_sandbox.world import World


@contextmanager
def served(scenario: str, tmp_path: Path) -> Iterator[tuple[World, str]]:
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


def _self_hosted(
    scenario: str, app: str, db: Database, tmp_path: Path, declared: bool = True, **window: str
) -> tuple[Investigation, int]:
    """``app`` investigated on the live path with the database URL and no Management API credentials; the number
    of requests sent to the Management API."""
    with served(scenario, tmp_path) as (world, base):
        db.load(world)
        environ = {
            "FLY_API_TOKEN": world.credentials["fly_api_token"],
            "SUPABASE_URL": base,
            "SUPABASE_SERVICE_ROLE_KEY": world.credentials["supabase_service_role_key"],
            "SUPABASE_DB_URL": db.url,
        }
        mgmt: list[Attempt] = []
        with open_session("live", environ=environ, base_url=base) as session:
            assert not session.supabase.management and session.db is not None
            session.watch(lambda a: mgmt.append(a) if a.platform == "supabase-mgmt" else None)
            inv = investigate(session, app, contract=pipeline_contract(world) if declared else None, **window)
    return inv, len(mgmt)


def test_a_healthy_self_hosted_project_is_inconclusive_naming_what_it_could_not_see(
    pg_db: Database, tmp_path: Path
) -> None:
    """Healthy provisioning, seen without secrets and function logs: not "healthy" (those decide health), but
    inconclusive, with both gaps saying why; no Management API request is sent."""
    inv, asked = _self_hosted("healthy", "vyx-app", pg_db, tmp_path)
    doc = inv.document
    gaps = {g["source"]: g for g in doc["gaps"]}
    assert {"supabase.secrets", "supabase.function_logs"} <= set(gaps)
    assert all(gaps[s].get("decides", True) for s in ("supabase.secrets", "supabase.function_logs"))
    assert (
        "self-hosted" in gaps["supabase.secrets"]["why"] and "retry later" not in gaps["supabase.function_logs"]["why"]
    )
    assert doc["verdict"] == "inconclusive" and doc["complete"] is False and doc["root_cause"] is None
    assert asked == 0


def test_a_self_hosted_incident_is_still_read_from_what_can_be_seen(pg_db: Database, tmp_path: Path) -> None:
    """The seed's incident without the secret: no root cause that needs the secret is named as if seen, the stuck
    row (read from the database) and the machine's story are there, and nothing crashes."""
    inv, asked = _self_hosted(
        "stub-image", "vyx-app", pg_db, tmp_path, since="2025-10-02T00:00:00Z", until="2025-10-02T17:25:00Z"
    )
    doc = inv.document
    assert asked == 0 and not doc["complete"]
    assert doc["verdict"] in ("root_cause", "inconclusive")
    assert not any(f["code"].startswith("SECRET_") for f in doc["findings"])  # the secret was never seen
    assert "5683732efe3208" in inv.summary
    assert inv.evidence.machine_rows.attrs["source"].startswith("postgres SELECT")


def test_discovery_without_a_management_api_asks_for_a_declared_contract(pg_db: Database, tmp_path: Path) -> None:
    """Nothing lists a self-hosted project's functions or secrets: discovery stops (exit 2) naming the key to
    declare and why, instead of guessing or crashing."""
    with pytest.raises(AmbiguousContract) as caught:
        _self_hosted("stub-image", "vyx-app", pg_db, tmp_path, declared=False)
    assert caught.value.name == "pipeline.function" and "self-hosted" in str(caught.value)


def test_without_the_database_url_live_still_needs_the_management_credentials() -> None:
    """Only the database URL makes the Management API optional; one of its two variables alone is still refused."""
    from vyxops.core.config import live_credentials

    base = {"FLY_API_TOKEN": "fo1_x", "SUPABASE_URL": "http://127.0.0.1:1", "SUPABASE_SERVICE_ROLE_KEY": "k"}
    with pytest.raises(ConfigError, match="SUPABASE_ACCESS_TOKEN"):
        live_credentials(base)
    with pytest.raises(ConfigError, match="SUPABASE_PROJECT_REF"):
        live_credentials({**base, "SUPABASE_DB_URL": "postgresql://u:p@h/postgres", "SUPABASE_ACCESS_TOKEN": "t"})
    creds = live_credentials({**base, "SUPABASE_DB_URL": "postgresql://u:p@h/postgres"})
    assert creds.project_ref == "" and creds.supabase_access_token == ""

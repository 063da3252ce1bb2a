"""The live code path (environment credentials, real HTTP, wall clock) against the served sandbox."""

from __future__ import annotations

import threading
from pathlib import Path

from vyxops.investigate import investigate
from vyxops.session import open_session
from vyxops_sandbox.server import make_server
from vyxops_sandbox.world import World


def test_live_target_over_http_finds_the_seed_root_cause(tmp_path: Path) -> None:
    """`--target live`, credentials from the environment, pointed at a served sandbox, names the seed's root cause."""
    world = World.load("stub-image", tmp_path)
    server = make_server(world, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        base = f"http://{host}:{port}"
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
    finally:
        server.shutdown()
        server.server_close()

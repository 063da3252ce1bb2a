"""`vyxops sandbox reset|serve|status`, and the served sandbox answering the seed's questions."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from vyxops.shell.cli import main
from vyxops.testing.served import served_sandbox


def test_status_json_prints_base_url_scenario_now_and_credentials(
    sandbox_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sandbox status --json` prints base_url, scenario, now and the sandbox's own credentials."""
    assert main(["sandbox", "status", "--scenario", "stub-image", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["scenario"] == "stub-image" and info["now"] == "2025-10-02T17:25:00Z"
    assert info["base_url"].startswith("http://127.0.0.1:")
    for key in ("fly_api_token", "supabase_service_role_key", "supabase_access_token", "project_ref"):
        assert info[key]


def test_reset_starts_the_scenario_over(sandbox_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sandbox reset` discards changes made to the sandbox."""
    from vyxops_sandbox.world import World

    w = World.load("stub-image", sandbox_env)
    w.unset_secrets(["DOCKER_IMAGE"])
    w.save()
    assert main(["sandbox", "reset", "--scenario", "stub-image"]) == 0
    assert "DOCKER_IMAGE" in World.open(sandbox_env).state["supabase"]["secrets"]


def test_served_sandbox_answers_the_seed_questions(sandbox_env: Path, tmp_path: Path) -> None:
    """Over 127.0.0.1: empty list, destroyed machine with include_deleted, exit code, manifests, secret digest."""
    env = {**os.environ, "VYXOPS_SANDBOX_DIR": str(sandbox_env)}
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "vyxops.shell.cli", "sandbox", "status", "--scenario", "stub-image", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    with served_sandbox(env) as base, httpx.Client(base_url=base, timeout=10) as c:
        assert base.startswith("http://127.0.0.1:")
        fly = {"authorization": f"Bearer {status['fly_api_token']}"}
        assert c.get("/v1/apps/vyx-app/machines", headers=fly).json() == []
        listed = c.get("/v1/apps/vyx-app/machines", params={"include_deleted": "true"}, headers=fly).json()
        assert [(m["id"], m["state"]) for m in listed] == [("5683732efe3208", "destroyed")]
        m = c.get("/v1/apps/vyx-app/machines/5683732efe3208", headers=fly).json()
        times = [e["timestamp"] for e in m["events"]]
        assert times == sorted(times, reverse=True)
        assert next(e for e in m["events"] if e["type"] == "exit")["request"]["exit_event"]["exit_code"] == 0
        basic = "Basic " + base64.b64encode(f"x:{status['fly_api_token']}".encode()).decode()
        head = c.head(
            "/v2/vyx-app/manifests/stub",
            headers={"authorization": basic, "accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        assert head.status_code == 200 and head.headers["docker-content-digest"].startswith("sha256:")
        created = c.post(
            "/v1/apps/vyx-app/machines",
            headers=fly,
            json={"config": {"image": "registry.fly.io/vyx-app:does-not-exist"}},
        )
        assert created.status_code == 400 and "MANIFEST_UNKNOWN" in created.json()["error"]
        secrets = c.get(
            f"/v1/projects/{status['project_ref']}/secrets",
            headers={"authorization": f"Bearer {status['supabase_access_token']}"},
        ).json()
        digest = next(s["value"] for s in secrets if s["name"] == "DOCKER_IMAGE")
        assert digest == hashlib.sha256(b"registry.fly.io/vyx-app:stub").hexdigest()
        assert c.get("/v1/apps/vyx-app/machines", headers={"authorization": "Bearer wrong"}).status_code == 401

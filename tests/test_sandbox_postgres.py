"""`vyxops sandbox serve --postgres`, run as a person runs it: the scenario's table in a throwaway PostgreSQL at
the URL it prints, kept in step with the world the sandbox serves."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from vyxops.testing.postgres import Databases
from vyxops.testing.served import ADDRESS, VYXOPS


def _status(url: str, machine: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT status::text FROM public.machines WHERE fly_machine_id = %s", [machine]).fetchone()
    assert row is not None
    return str(row[0])


def test_serve_postgres_prints_a_url_holding_the_worlds_table_and_follows_it(
    tmp_path: Path, pg_databases: Databases
) -> None:
    """The URL printed on the line after the address reads the seed's row; a change the world makes through the
    served PostgREST is in the database by the next answer; Ctrl-C stops both. (``pg_databases``: skip or, in CI,
    fail where the machine has no PostgreSQL.)"""
    env = {**os.environ, "VYXOPS_SANDBOX_DIR": str(tmp_path / "sandbox")}
    argv = [*VYXOPS, "sandbox", "serve", "--port", "0", "--scenario", "stub-image", "--postgres"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        address = ADDRESS.search(first)
        assert address is not None, first
        assert second.startswith("postgres: postgresql://") and "throwaway password" in second, second
        url = second.split()[1]
        assert url.endswith("/postgres")
        assert _status(url, "5683732efe3208") == "starting"
        base = address.group(0)
        key = httpx.get(f"{base}/_sandbox/session").json()["credentials"]["supabase_service_role_key"]
        headers = {"apikey": key, "Authorization": f"Bearer {key}", "Prefer": "return=representation"}
        r = httpx.patch(
            f"{base}/rest/v1/machines",
            params={"fly_machine_id": "eq.5683732efe3208"},
            json={"status": "failed"},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        assert _status(url, "5683732efe3208") == "failed"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server went with the sandbox
        try:
            psycopg.connect(url, connect_timeout=1).close()
        except psycopg.OperationalError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the PostgreSQL server outlived `sandbox serve`")


def test_postgres_only_means_something_with_serve(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vyxops.shell.cli import main

    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(tmp_path / "sandbox"))
    assert main(["sandbox", "status", "--postgres"]) == 2
    assert "--postgres" in capsys.readouterr().err

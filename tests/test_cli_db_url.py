"""`vyxops investigate --db-url` through a kernel: the URL reaches the notebook's session through the environment
only; the rows are read from the database; neither the URL nor its password is in any file the run writes."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from vyxops.fetch.clients.postgres import DB_URL_ENV
from vyxops.shell.cli import main
from vyxops.shell.runner import read_json
from vyxops.testing.postgres import Database
from vyxops_sandbox.world import World


def test_investigate_with_db_url_reads_the_database_and_writes_no_trace_of_the_url(
    sandbox_env: Path, tmp_path: Path, pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DB_URL_ENV, raising=False)
    pg_db.load(World.load("stub-image", tmp_path / "load"))
    with psycopg.connect(pg_db.admin) as conn:  # the database says otherwise than PostgREST's model: which was read?
        conn.execute("UPDATE machines SET status = 'failed', updated_at = '2025-10-02T16:18:45Z'")
    out = tmp_path / "out"
    argv = ["investigate", "--scenario", "stub-image", "--app", "vyx-app", "--db-url", pg_db.url, "--out", str(out)]
    assert main(argv) == 0
    doc = read_json(out / "findings.json")
    assert doc["root_cause"]["code"] == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
    # The model's row is `starting` (DB_STATUS_STUCK through PostgREST); the database's is `failed`.
    assert "DB_STATUS_STUCK" not in {f["code"] for f in doc["findings"]}
    written = {p: p.read_bytes().decode("utf-8", "replace") for p in out.rglob("*") if p.is_file()}
    for path, text in written.items():
        assert pg_db.server.password not in text and "postgresql://" not in text, path


def test_a_db_url_on_a_bundle_is_bad_input(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "b"
    bundle.mkdir()
    argv = [
        "investigate",
        "--target",
        f"bundle:{bundle}",
        "--app",
        "vyx-app",
        "--db-url",
        "postgresql://u:pw@h/postgres",
    ]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert ("--db-url" in err or "bundle" in err) and "pw@" not in err

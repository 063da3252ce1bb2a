"""`vyxops doctor` with a database URL: the connection and the role's rights on the contract's table, asked of a
real PostgreSQL, each with its fix; the password in no line."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from vyxops.shell.cli import main
from vyxops.testing.postgres import Database
from vyxops_sandbox.testing import world_of


@pytest.fixture(autouse=True)
def _no_project_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.delenv("SUPABASE_DB_URL", raising=False)


@pytest.fixture
def loaded(pg_db: Database, tmp_path: Path) -> Database:
    from vyxops.fetch.session import open_session

    with open_session("sandbox", scenario="healthy", sandbox_dir=tmp_path / "load") as s:
        pg_db.load(world_of(s))
    return pg_db


def doctor(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(["doctor", "--scenario", "healthy", "--app", "vyx-app", *args])
    out = capsys.readouterr()
    return code, [x for x in out.out.splitlines() if " database: " in x], out.out + out.err


def _admin(db: Database, statement: str) -> None:
    with psycopg.connect(db.admin, autocommit=True) as conn:
        conn.execute(statement)


def test_a_role_that_may_read_and_fix_is_all_well(
    sandbox_env: Path, loaded: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, text = doctor(["--db-url", loaded.url], capsys)
    assert code == 0, text
    assert [x.split(":")[1].strip() for x in lines] == ["connection", "SELECT", "UPDATE"]
    assert all(x.startswith("ok ") for x in lines) and loaded.server.password not in text


def test_a_read_only_role_is_told_what_the_fixes_need(
    sandbox_env: Path, loaded: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """No UPDATE: investigations are fine (exit 0); the line names the GRANT the row fix would need."""
    _admin(loaded, f'REVOKE UPDATE ON public.machines FROM "{loaded.server.role}"')
    code, lines, text = doctor(["--db-url", loaded.url], capsys)
    assert code == 0, text
    (update,) = [x for x in lines if "UPDATE" in x.split(":")[1]]
    assert update.startswith("skipped") and "GRANT UPDATE (status, updated_at) ON public.machines" in update


def test_a_role_that_may_not_read_the_table_is_a_problem_with_the_grant(
    sandbox_env: Path, loaded: Database, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Declared contract (discovery would not see the table either): SELECT refused is a problem naming the GRANT."""
    from vyxops.core.contract import to_toml
    from vyxops.testing.postgres import pipeline_contract
    from vyxops_sandbox.world import World

    declared = tmp_path / "vyxops.toml"
    declared.write_text(to_toml(pipeline_contract(World.load("healthy", tmp_path / "w"))))
    _admin(loaded, f'REVOKE SELECT ON public.machines FROM "{loaded.server.role}"')
    code, lines, text = doctor(["--db-url", loaded.url, "--contract", str(declared)], capsys)
    assert code == 1, text
    assert any(x.startswith("problem") and "GRANT SELECT ON public.machines" in x for x in lines), text


def test_a_database_that_refuses_the_login_is_a_problem_without_the_password(
    sandbox_env: Path, loaded: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = loaded.server.url(loaded.name, password="Wrong-Pass-" + loaded.server.password)
    code, lines, text = doctor(["--db-url", wrong], capsys)
    assert code == 1 and lines and lines[0].startswith("problem") and "connection" in lines[0], text
    assert loaded.server.password not in text


def test_a_malformed_db_url_is_exit_2_before_any_check(sandbox_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--scenario", "healthy", "--db-url", "mysql://root:S3cret-Pass@h/db"])
    out = capsys.readouterr()
    assert code == 2 and "--db-url" in out.err and "S3cret-Pass" not in out.out + out.err


def test_a_self_hosted_live_doctor_checks_what_there_is_and_skips_the_management_api(
    loaded: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Live with the database URL and neither SUPABASE_ACCESS_TOKEN nor SUPABASE_PROJECT_REF: no line asks for
    them; the Management API and its permissions are skipped, saying why; the database is checked; exit 0."""
    from test_live_path import served

    from vyxops.core.contract import to_toml
    from vyxops.testing.postgres import pipeline_contract

    with served("healthy", tmp_path / "served") as (world, base):
        for name in ("FLY_ACCESS_TOKEN", "SUPABASE_ACCESS_TOKEN", "SUPABASE_PROJECT_REF"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        for name in ("FLY_API_BASE_URL", "FLY_FLAPS_BASE_URL", "FLY_REGISTRY_HOST", "SUPABASE_URL"):
            monkeypatch.setenv(name, base)
        monkeypatch.setenv("FLY_API_TOKEN", world.credentials["fly_api_token"])
        monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", world.credentials["supabase_service_role_key"])
        monkeypatch.setenv("SUPABASE_DB_URL", loaded.url)
        declared = tmp_path / "vyxops.toml"
        declared.write_text(to_toml(pipeline_contract(world)))
        code = main(["doctor", "--target", "live", "--app", "vyx-app", "--contract", str(declared)])
        out = capsys.readouterr()
    lines = out.out.splitlines()
    assert code == 0, out.out + out.err
    assert not any("SUPABASE_ACCESS_TOKEN" in x or "SUPABASE_PROJECT_REF" in x for x in lines if "credentials:" in x)
    assert any(x.startswith("skipped  APIs: Management API") and "self-hosted" in x for x in lines), out.out
    assert any(x.startswith("ok       database: SELECT") for x in lines), out.out

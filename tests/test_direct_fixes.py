"""RECONCILE_STUCK_ROWS through the direct PostgreSQL source, against a real server: one guarded UPDATE whose
refusals are the database's own (an unknown column, a word outside the enum, a row that moved), where SPEC says
PostgREST refuses; safe applied twice under the real moddatetime trigger; in the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from vyxops.act.fixes import apply_plan, plan_fixes, reconcile_direct
from vyxops.act.fixes.model import Outcome, Plan
from vyxops.analysis.investigate import investigate
from vyxops.core.contract import Contract
from vyxops.fetch.clients.postgres import DB_URL_ENV
from vyxops.fetch.session import Session, open_session
from vyxops.testing.postgres import Database, pipeline_contract
from vyxops.testing.runs import action_of
from vyxops_sandbox.testing import world_of

APP, CODE, MACHINE = "vyx-app", "RECONCILE_STUCK_ROWS", "5683732efe3208"


@pytest.fixture
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(path))
    monkeypatch.setenv("VYXOPS_OPERATOR", "test-operator")
    return path


@pytest.fixture
def direct(pg_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """The seed's sandbox, its machines table in a real database the session reads and writes directly."""
    monkeypatch.setenv(DB_URL_ENV, pg_db.url)
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path / "sandbox") as s:
        pg_db.load(world_of(s))
        yield s


def _plan(s: Session, contract: Contract | None = None) -> Plan:
    contract = contract or pipeline_contract(world_of(s))
    return plan_fixes(investigate(s, APP, contract=contract), fixes=[CODE])


def _apply(s: Session, plan: Plan) -> Outcome:
    result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
    out = action_of(result, CODE)
    assert isinstance(out, Outcome)
    return out


def _row(db: Database) -> dict[str, Any]:
    with psycopg.connect(db.admin) as conn:
        cur = conn.execute("SELECT status::text, updated_at FROM machines WHERE fly_machine_id = %s", [MACHINE])
        status, updated_at = cur.fetchone()  # type: ignore[misc]
    return {"status": status, "updated_at": updated_at}


def test_the_fix_is_one_guarded_update_and_applied_twice_changes_nothing_more(
    direct: Session, pg_db: Database, audit: Path
) -> None:
    """The stuck row is marked failed in the database; the trigger's updated_at is what the outcome and the audit
    log record; the same plan applied again is skipped as done and leaves the row as it was; no password is in the
    log."""
    before = _row(pg_db)
    plan = _plan(direct)
    assert before["status"] == "starting" and action_of(plan, CODE).read["status"] == "starting"
    first = _apply(direct, plan)
    after = _row(pg_db)
    assert first.status == "applied", first.reason
    assert after["status"] == "failed" and after["updated_at"] > before["updated_at"]
    assert (
        first.after["status"] == "failed" and first.after["updated_at"] != action_of(plan, CODE).read["updated_at_raw"]
    )
    again = _apply(direct, plan)
    assert again.status == "skipped" and "already done" in again.reason
    assert _row(pg_db) == after
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    done = [x for x in lines if x["action"] == CODE and x["kind"] == "outcome" and x["result"] == "applied"]
    assert len(done) == 1 and done[0]["after"]["status"] == "failed"
    assert pg_db.server.password not in audit.read_text()
    assert world_of(direct).table("machines")["rows"][0]["status"] == "starting"  # PostgREST's model not written


def test_a_row_that_moved_after_planning_is_left_alone(direct: Session, pg_db: Database, audit: Path) -> None:
    """Someone set the row after the plan read it (the trigger stamped it): skipped, naming the change."""
    plan = _plan(direct)
    with psycopg.connect(pg_db.admin) as conn:
        conn.execute("UPDATE machines SET status = 'running' WHERE fly_machine_id = %s", [MACHINE])
    out = _apply(direct, plan)
    assert out.status == "skipped" and "changed since it was read" in out.reason
    assert _row(pg_db)["status"] == "running"


def test_a_row_that_moves_between_the_check_and_the_write_is_not_matched_by_the_where(
    direct: Session, pg_db: Database, audit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard is in the UPDATE's WHERE: a change made after every check passed is not overwritten."""
    plan = _plan(direct)

    def touched(ctx: object, mid: str | None) -> None:  # the last check: the app writes the row just then
        with psycopg.connect(pg_db.admin) as conn:
            conn.execute("UPDATE machines SET image = image WHERE fly_machine_id = %s", [MACHINE])

    from vyxops.act.fixes import reconcile_rows

    monkeypatch.setattr(reconcile_rows, "_check_still_gone", touched)
    out = _apply(direct, plan)
    assert out.status == "skipped" and "changed since it was read" in out.reason
    assert _row(pg_db)["status"] == "starting"


def _admin(db: Database, statement: str) -> None:
    with psycopg.connect(db.admin) as conn:
        conn.execute(statement)


def test_a_column_the_table_no_longer_has_is_refused_by_the_database(
    direct: Session, pg_db: Database, audit: Path
) -> None:
    """The plan writes the error column; the table lost it before the apply: the UPDATE names a column the table
    lacks and the database refuses it (42703; PostgREST answers PGRST204), nothing changes, the outcome says so."""
    _admin(pg_db, "ALTER TABLE machines ADD COLUMN error text")
    contract = pipeline_contract(world_of(direct))
    contract = replace(contract, table=replace(contract.table, columns=replace(contract.columns, error="error")))
    plan = _plan(direct, contract)
    assert "error" in action_of(plan, CODE).desired
    _admin(pg_db, "ALTER TABLE machines DROP COLUMN error")
    before = _row(pg_db)
    out = _apply(direct, plan)
    assert out.status == "failed" and "42703" in out.reason and 'column "error"' in out.reason, out.reason
    assert _row(pg_db) == before


def test_a_word_outside_the_enum_is_refused_by_the_database(direct: Session, pg_db: Database, audit: Path) -> None:
    """A failure word the status enum lacks: the database refuses it (22P02, as PostgREST answers), the row is
    as it was, and the outcome is failed with the database's reason."""
    _admin(
        pg_db,
        "CREATE TYPE machine_status AS ENUM ('starting', 'running', 'stopped', 'failed'); "
        "ALTER TABLE machines ALTER COLUMN status TYPE machine_status USING status::machine_status",
    )
    contract = pipeline_contract(world_of(direct))
    contract = replace(contract, status=replace(contract.status, failed=("exploded",)))
    before = _row(pg_db)
    out = _apply(direct, _plan(direct, contract))
    assert out.status == "failed" and "22P02" in out.reason and "exploded" in out.reason, out.reason
    assert _row(pg_db) == before


def test_planning_alone_opens_no_writer(direct: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read-only unless a fix runs: investigating and planning never ask the source for a connection that writes."""
    asked: list[str] = []
    assert direct.db is not None
    monkeypatch.setattr(type(direct.db), "writer", lambda self: asked.append("writer"))
    plan = _plan(direct)
    apply_plan(direct, plan, app=APP)  # a dry run
    assert asked == [] and action_of(plan, CODE).code == CODE
    assert reconcile_direct.read_row_direct(direct.db.reader(), "machines", "fly_machine_id", MACHINE) is not None

"""Fixes on another team's pipeline: its secret, its table's own columns and status words, its probe body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vyxops.act.fixes import apply_plan, plan_fixes
from vyxops.act.probe import probe_and_investigate
from vyxops.analysis.investigate import investigate
from vyxops.core.errors import ConfigError
from vyxops.core.images import secret_digest
from vyxops.fetch.session import Session, open_session
from vyxops.shell.cli import main
from vyxops_sandbox.testing import world_of

WORKSPACES = "workspaces-image-secret-unset"


@pytest.fixture
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(path))
    return path


def _rows(s: Session, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = world_of(s).state["supabase"]["tables"][table]["rows"]
    return rows


def test_another_teams_unset_secret_is_pinned_to_its_release_verified_and_logged(tmp_path: Path, audit: Path) -> None:
    """WORKSPACE_IMAGE (not DOCKER_IMAGE) is set to the release's image, and the canary goes through
    spawn-workspace with the team's body, reaches `ready` in its table and is closed with its own word."""
    with open_session("sandbox", scenario=WORKSPACES, sandbox_dir=tmp_path / "sb") as s:
        inv = investigate(s, "workspaces-app")
        assert inv.root is not None and inv.root.code == "IMAGE_SECRET_UNSET"
        plan = plan_fixes(inv)
        assert [a.code for a in plan.actions] == ["PIN_SECRET_TO_RELEASE", "VERIFY_PROVISIONING"]
        pin = plan.actions[0]
        assert pin.target == "secret:WORKSPACE_IMAGE" and "supabase secrets set WORKSPACE_IMAGE=" in pin.native[0]
        result = apply_plan(s, plan, dry_run=False, confirm="workspaces-app", app="workspaces-app")
        assert [a.status for a in result.actions] == ["applied", "applied"], result.frame().to_string()
        digests = {x["name"]: x["value"] for x in s.supabase.list_secrets()}
        assert digests["WORKSPACE_IMAGE"] == secret_digest(pin.desired["ref"]) and "DOCKER_IMAGE" not in digests
        v = result.verification
        assert v is not None and v["row_status"] == "ready"
        canary = [r for r in _rows(s, "workspaces") if str(r.get("owner", "")).startswith("vyxops-verify-")]
        assert [r["state"] for r in canary] == ["closed"]  # the team's stopped word; the enum takes no other
        after = investigate(s, "workspaces-app")
    assert after.root is None and after.verdict == "healthy"
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert any(x.get("step") == "invoke" and x.get("body", {}).get("owner", "").startswith("vyxops-verify-")
               for x in lines)  # fmt: skip


STUCK = """name: workspaces-stub-stuck-row
now: 2026-02-10T12:00:00Z
fly: {{org: ws, apps: [ws-app]}}
supabase: {{project_ref: wsprojectrefaaaaaabz}}
pipeline:
  function: spawn-workspace
  image_secret: WORKSPACE_IMAGE
  image_fallback: ""
  table: {{name: workspaces, columns: {{machine_id: vm_id, app: null, user: owner, image: image_ref, status: state,
          error: null}}, status_enum: {enum}}}
  status: {{starting: [provisioning], running: [ready], stopped: [closed], failed: {failed}}}
  invoke: {{body: {{owner: "{{canary_user}}", region: "{{region}}"}}, machine_id: vm}}
  logs: {{created: "spawned vm {{machine_id}} from {{image}}", failed: "fly said {{status}}: {{body}}"}}
images:
  registry.fly.io/ws-app:stub: {{behaviour: exit, exit_code: 0, after_s: 2}}
steps:
  - at: 2026-02-10T10:00:00Z
    deploy: {{app: ws-app, image: registry.fly.io/ws-app:deployment-01KH00000000000000000000000}}
  - at: 2026-02-10T10:05:00Z
    set_secret: {{name: WORKSPACE_IMAGE, value: registry.fly.io/ws-app:stub}}
  - at: 2026-02-10T11:00:00Z
    invoke: {{function: spawn-workspace, body: {{owner: o-7, region: ams}}, machine_id: 0b1c2d3e4f5a6b}}
"""


def _stuck(tmp_path: Path, enum: str, failed: str) -> Path:
    path = tmp_path / "stuck.yaml"
    path.write_text(STUCK.format(enum=enum, failed=failed))
    return path


def test_reconcile_writes_the_tables_own_failure_word_and_no_column_it_lacks(tmp_path: Path, audit: Path) -> None:
    """The stuck row gets `error` (the team's failure word) in `state`, and no `error` column, which it lacks:
    PostgREST refuses neither, and the fate of the machine is said in the plan."""
    scenario = _stuck(tmp_path, "[provisioning, ready, closed, error]", "[error]")
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "sb") as s:
        inv = investigate(s, "ws-app")
        assert inv.root is not None and inv.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
        plan = plan_fixes(inv, fixes=["RECONCILE_STUCK_ROWS"])
        (row,) = plan.actions
        assert row.desired == {"status": "error"}
        assert "exited with code 0" in row.new and row.native[0].startswith(
            "update public.workspaces set state = 'error'"
        )
        result = apply_plan(s, plan, dry_run=False, confirm="ws-app", app="ws-app")
        assert [a.status for a in result.actions] == ["applied"], result.frame().to_string()
        (stored,) = [r for r in _rows(s, "workspaces") if r["vm_id"] == "0b1c2d3e4f5a6b"]
        assert stored["state"] == "error" and "error" not in stored
        again = apply_plan(s, plan_fixes(investigate(s, "ws-app"), fixes=["RECONCILE_STUCK_ROWS"]),
                           dry_run=False, confirm="ws-app", app="ws-app")  # fmt: skip
    assert again.actions == [] or all(a.status == "skipped" for a in again.actions)


def test_a_table_with_no_failure_word_gets_no_reconcile_but_the_sql_to_adapt(tmp_path: Path, audit: Path) -> None:
    """With no failure word in the enum, RECONCILE_STUCK_ROWS is not planned; the note says why and shows SQL."""
    scenario = _stuck(tmp_path, "[provisioning, ready, closed]", "[]")
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "sb") as s:
        plan = plan_fixes(investigate(s, "ws-app"), fixes=["RECONCILE_STUCK_ROWS"])
    assert plan.actions == []
    (note,) = [n for n in plan.notes if n.startswith("RECONCILE_STUCK_ROWS")]
    assert "accepts no failure word" in note and "update public.workspaces set state = '<a terminal word>'" in note


def test_without_a_probe_body_verify_is_not_planned_and_probe_is_refused_before_any_write(
    tmp_path: Path, audit: Path
) -> None:
    """A contract declaring `invoke = {}`: VERIFY_PROVISIONING says why it is not planned, --probe refuses (exit 2)
    and nothing is written to the platforms or the audit log."""
    declared = tmp_path / "vyxops.toml"
    declared.write_text(
        '[pipeline]\nfunction = "spawn-workspace"\nimage_secret = "WORKSPACE_IMAGE"\nimage_fallback = ""\ninvoke = {}\n'
        '[pipeline.table]\nname = "workspaces"\ncolumns = {machine_id = "vm_id", app = "", user = "owner", '
        'image = "image_ref", status = "state"}\n'
        '[pipeline.status]\nstarting = ["provisioning"]\nrunning = ["ready"]\nstopped = ["closed"]\n'
        'failed = ["error"]\n'
    )
    with open_session("sandbox", scenario=WORKSPACES, sandbox_dir=tmp_path / "sb") as s:
        plan = plan_fixes(investigate(s, "workspaces-app", contract=declared), fixes=["VERIFY_PROVISIONING"])
        assert plan.actions == [] and any("invoke" in n for n in plan.notes if n.startswith("VERIFY_PROVISIONING"))
        before = json.dumps(world_of(s).state, sort_keys=True)
        with pytest.raises(ConfigError) as caught:
            probe_and_investigate(s, "workspaces-app", contract=declared)
        assert "invoke" in str(caught.value)
        assert json.dumps(world_of(s).state, sort_keys=True) == before
    assert not audit.exists()


def test_another_teams_outage_is_named_by_the_cli_with_no_configuration(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vyxops investigate --scenario S --app A` on another team's pipeline discovers the contract, shows it with
    its evidence in the report's header, and names the root cause."""
    out = tmp_path / "out"
    assert main(["investigate", "--scenario", "gameservers-region-capacity", "--app", "gameservers-app",
                 "--out", str(out)]) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines()[0].startswith("root cause: REGION_CAPACITY")
    html = (out / "investigate.html").read_text()
    assert "discovered from the platforms" in html and "allocate-server" in html and "GAME_SERVER_IMAGE" in html
    assert "the project&#x27;s only Edge Function" in html or "the project's only Edge Function" in html


def test_a_canary_row_is_never_given_a_null_status_when_the_contract_has_no_word_to_close_it(
    tmp_path: Path, audit: Path
) -> None:
    """A contract with no stopped and no failed word: closing a canary's open row writes nothing (never a null
    status) and says why the row was left open, so the cleanup reads as failed and its duty stays open."""
    import dataclasses

    from vyxops.act.fixes.audit_log import AuditLog
    from vyxops.act.fixes.canary import Canary, _close_row
    from vyxops.act.fixes.context import ApplyContext

    with open_session("sandbox", scenario=WORKSPACES, sandbox_dir=tmp_path / "sb") as s:
        contract = investigate(s, "workspaces-app").evidence.contract
        words = dataclasses.replace(contract.status, stopped=(), failed=())
        log = AuditLog(audit, target=s.label, app="workspaces-app", who="test", now=s.now)
        ctx = ApplyContext(s, "workspaces-app", dataclasses.replace(contract, status=words), log)
        row = dict(_rows(s, "workspaces")[-1], owner="vyxops-verify-1", state="ready")
        before = [dict(r) for r in _rows(s, "workspaces")]
        ok, text = _close_row(ctx, "VERIFY_PROVISIONING", Canary("vyxops-verify-1", row["vm_id"]), row, None)
        after = _rows(s, "workspaces")
    assert not ok and "no stopped or failed word" in text
    assert after == before


@pytest.mark.parametrize(("key", "says"), [("machine_id", "jq -r .machine_id)"), ("vm-id", "jq -r '.\"vm-id\"')")])
def test_the_manual_probe_reads_the_machine_id_under_the_contracts_key_as_jq_parses_it(key: str, says: str) -> None:
    """The curl | jq line a person pastes names the answer's key as jq reads it: a key that is not an identifier
    (``vm-id``) is quoted, else jq would read ``.vm - id``."""
    import dataclasses

    from vyxops.act.fixes.model import Action
    from vyxops.act.fixes.registry import Place
    from vyxops.act.fixes.verify_provisioning import native
    from vyxops.core.contract import SEED

    assert SEED.invoke is not None
    contract = dataclasses.replace(SEED, invoke=dataclasses.replace(SEED.invoke, machine_id=key))
    action = Action("VERIFY_PROVISIONING", "function:x", "", "", "", "", "", read={"region": "ams"}, desired={})
    lines = native(action, Place("vyx-app", None, contract))
    assert says in lines[0] and "/functions/v1/provision-machine" in lines[0]


def test_the_reconcile_sql_guards_as_apply_does_when_the_row_was_never_updated() -> None:
    """A row whose updated_at is null: apply guards by key and status only, and so does the SQL a person pastes
    (``updated_at = null`` would match no row in SQL, so the pasted fix would silently do nothing)."""
    from vyxops.act.fixes.model import Action
    from vyxops.act.fixes.reconcile_rows import native
    from vyxops.act.fixes.registry import Place
    from vyxops.core.contract import SEED

    read = {"table": "machines", "key": "id", "row_id": "7", "status": "starting", "updated_at_raw": None}
    action = Action("RECONCILE_STUCK_ROWS", "db_row:7", "", "", "", "", "", read=read, desired={"status": "failed"})
    (sql,) = native(action, Place("vyx-app", None, SEED))
    assert sql.endswith("where id = '7' and status = 'starting';") and "updated_at = now()" in sql

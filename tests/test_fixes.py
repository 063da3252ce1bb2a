"""Fixes on the sandbox: planned from findings, dry-run by default, applied with guards, verified, logged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from vyxops.act.fixes import NOT_RUN, apply_plan, plan_fixes
from vyxops.analysis.investigate import investigate
from vyxops.core.errors import InputError
from vyxops.core.images import secret_digest
from vyxops.fetch.session import Session, open_session
from vyxops.testing.runs import action_codes as codes
from vyxops.testing.runs import action_of as by_code
from vyxops.testing.runs import sandbox_session as seed
from vyxops_sandbox.faults import FaultRule, Faults
from vyxops_sandbox.testing import world_of

APP = "vyx-app"
RELEASE_V2 = "registry.fly.io/vyx-app:deployment-01K6JV132H7B7Y5PP8Y5QSR23X"
STUB = "registry.fly.io/vyx-app:stub"
SEED_MACHINE = "5683732efe3208"


@pytest.fixture
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The audit log of one test, set the way an operator sets it."""
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(path))
    monkeypatch.setenv("VYXOPS_OPERATOR", "test-operator")
    return path


def reopen(tmp_path: Path, **kw: Any) -> Session:
    return open_session("sandbox", sandbox_dir=tmp_path / "sandbox", **kw)


def secret_now(session: Session) -> str | None:
    return next((s["value"] for s in session.supabase.list_secrets() if s["name"] == "DOCKER_IMAGE"), None)


def seed_row(session: Session) -> dict[str, Any]:
    return session.supabase.select_all("machines", filters=[("fly_machine_id", "eq", SEED_MACHINE)]).rows[0]


def sandbox_calls(session: Session) -> int:
    return session.fly.machines.retrying.transport.app.calls


def record_requests(session: Session, monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Every request the sandbox answers from now on, in order."""
    app = session.fly.machines.retrying.transport.app
    seen: list[httpx.Request] = []
    original = app.handle

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return original(request)

    monkeypatch.setattr(app, "handle", handle)
    return seen


def leaks(data: bytes, session: Session) -> list[str]:
    return [k for k, v in world_of(session).credentials.items() if k != "project_ref" and v.encode() in data]


def audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def unpaired(lines: list[dict[str, Any]]) -> list[str]:
    """What breaks "every intent has exactly one outcome, after it, and every outcome an intent"."""
    problems = []
    intents = {x["txn"]: i for i, x in enumerate(lines) if x["kind"] == "intent"}
    outcomes: dict[str, list[int]] = {}
    for i, x in enumerate(lines):
        if x["kind"] == "outcome":
            outcomes.setdefault(x["txn"], []).append(i)
    for txn, i in intents.items():
        got = outcomes.get(txn, [])
        if len(got) != 1 or got[0] < i:
            problems.append(f"intent {txn} ({lines[i]['action']} {lines[i]['step']}) has outcomes at {got}")
    problems += [f"outcome {t} has no intent" for t in outcomes if t not in intents]
    return problems


def canaries_left(session: Session) -> list[str]:
    """Canary machines not destroyed and canary rows still open, read from the world itself."""
    world = world_of(session)
    left = []
    for app in world.state["fly"]["apps"].values():
        for m in app["machines"].values():
            user = ((m.get("config") or {}).get("metadata") or {}).get("user_id") or ""
            if user.startswith("vyxops-verify-") and m["state"] != "destroyed":
                left.append(f"machine {m['id']} {m['state']}")
    for table in world.state["supabase"]["tables"].values():
        for row in table["rows"]:
            if str(row.get("user_id") or "").startswith("vyxops-verify-") and row["status"] in ("starting", "running"):
                left.append(f"row {row['id']} {row['status']}")
    return left


# --------------------------------------------------------------------------- planning


def test_seed_plan_pins_the_secret_reconciles_the_row_and_verifies(tmp_path: Path) -> None:
    """The seed's plan pins DOCKER_IMAGE to release v2's image, fails the
    stuck row of the gone machine, then verifies."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
    assert codes(plan) == ["PIN_SECRET_TO_RELEASE", "RECONCILE_STUCK_ROWS", "VERIFY_PROVISIONING"]
    pin, row, _ = plan.actions
    assert (
        pin.desired["ref"] == RELEASE_V2
        and pin.read["secret_digest"] == secret_digest(STUB)
        and pin.read["release_version"] == 2
    )
    assert (
        row.read["status"] == "starting"
        and row.read["updated_at_raw"] == "2025-10-02T16:18:40.5+00:00"
        and row.read["machine_id"] == SEED_MACHINE
    )
    # SPEC's nine-column table has no error column: the word alone is written, the fate said in the plan.
    assert row.desired == {"status": "failed"}
    assert "exited with code 0" in row.new and "auto-destroyed" in row.new
    frame = plan.frame()
    assert list(frame.columns) == ["action", "target", "current", "new", "precondition", "risk"]
    assert STUB in frame.loc[0, "current"] and RELEASE_V2 in frame.loc[0, "new"]
    doc = plan.document(True)
    assert doc["schema"] == "vyxops.remediation/1" and doc["dry_run"] is True
    assert [a["status"] for a in doc["actions"]] == ["planned"] * 3
    assert all({"code", "target", "status", "reason", "before", "after"} <= set(a) for a in doc["actions"])


def test_latest_strategy_tags_latest_then_unsets_the_secret(tmp_path: Path) -> None:
    """With strategy latest the image fix is TAG_LATEST then UNSET_SECRET, in that order, instead of a pin."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP), strategy="latest")
    assert codes(plan) == ["TAG_LATEST", "UNSET_SECRET", "RECONCILE_STUCK_ROWS", "VERIFY_PROVISIONING"]
    assert plan.actions[0].read["latest_digest"] is None  # the seed never tagged :latest


def test_fix_codes_restrict_the_plan_and_bad_ones_are_refused(tmp_path: Path) -> None:
    """--fix keeps only the named fixes; an unknown fix code or strategy is an InputError naming the input."""
    with seed(tmp_path) as s:
        inv = investigate(s, APP)
    assert codes(plan_fixes(inv, fixes=["RECONCILE_STUCK_ROWS"])) == ["RECONCILE_STUCK_ROWS"]
    with pytest.raises(InputError) as bad_fix:
        plan_fixes(inv, fixes=["REBOOT_EVERYTHING"])
    assert bad_fix.value.name == "--fix"
    with pytest.raises(InputError) as bad_strategy:
        plan_fixes(inv, strategy="yolo")
    assert bad_strategy.value.name == "--strategy"


def test_dry_run_changes_nothing(tmp_path: Path, audit: Path) -> None:
    """A dry run reports every action planned, calls nothing that changes state and leaves state.json byte for byte."""
    state = tmp_path / "sandbox" / "state.json"
    with seed(tmp_path) as s:
        before = state.read_bytes()
        plan = plan_fixes(investigate(s, APP))
        result = apply_plan(s, plan, app=APP)
    assert state.read_bytes() == before
    assert [a.status for a in result.actions] == ["planned"] * 3
    assert result.document()["dry_run"] is True and not result.audit_lines and not audit.exists()


# --------------------------------------------------------------------------- applying


def test_apply_fixes_the_seed_verifies_and_logs(tmp_path: Path, audit: Path) -> None:
    """Applying pins the secret, fails the row with the machine's fate, verifies with a cleaned-up canary and logs each
    action."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert [a.status for a in result.actions] == ["applied"] * 3, result.frame().to_string()
        assert secret_now(s) == secret_digest(RELEASE_V2)
        row = seed_row(s)
        assert row["status"] == "failed" and "error" not in row  # SPEC's table: nine columns, none for errors
        v = result.verification
        assert v["machine_started_at"] and v["row_status"] == "running" and v["image"] == RELEASE_V2
        assert s.fly.get_machine(APP, v["machine_id"])["state"] == "destroyed"
        canary = s.supabase.select_all("machines", filters=[("fly_machine_id", "eq", v["machine_id"])]).rows[0]
        # its app marks the row `stopped` when told to stop (SPEC.md); cleanup closes it only if the app did not
        assert canary["status"] in ("stopped", "destroyed") and canary["user_id"].startswith("vyxops-verify-")
        data = audit.read_bytes()
        assert not leaks(data, s)
        assert not canaries_left(s)
    lines = [json.loads(x) for x in data.decode().splitlines()]
    assert lines == result.audit_lines and not unpaired(lines)
    fixes = [
        (x["action"], x["step"], x["result"]) for x in lines if x["kind"] == "outcome" and x["step"] != "settle_canary"
    ]
    assert fixes == [
        ("PIN_SECRET_TO_RELEASE", "set_secret", "applied"),
        ("RECONCILE_STUCK_ROWS", "update_row", "applied"),
        ("VERIFY_PROVISIONING", "invoke", "applied"),
        ("VERIFY_PROVISIONING", "destroy_machine", "applied"),
        # no close_row: the canary's app marked its own row `stopped` when the machine was told to stop
        ("VERIFY_PROVISIONING", "verify", "applied"),
    ]
    for x in lines:
        assert {"time", "target", "app", "action", "step", "entity", "kind", "txn", "who", "run", "pid", "host"} <= set(
            x
        )
        assert x["who"] == "test-operator" and x["target"] == "sandbox:stub-image" and x["app"] == APP
    pin = next(x for x in lines if x["kind"] == "outcome" and x["action"] == "PIN_SECRET_TO_RELEASE")
    assert pin["before"]["digest"] == secret_digest(STUB) and pin["after"]["digest"] == secret_digest(RELEASE_V2)
    invoke = next(x for x in lines if x["kind"] == "outcome" and x["step"] == "invoke")
    assert invoke["canary"]["machine_id"] == v["machine_id"] and invoke["duty"]
    assert lines.index(invoke) < min(i for i, x in enumerate(lines) if x["step"] == "destroy_machine")
    assert next(x for x in lines if x["step"] == "settle_canary" and x["kind"] == "outcome")["canary_cleaned"]
    doc = result.document()
    assert doc["dry_run"] is False and [a["status"] for a in doc["actions"]] == ["applied"] * 3


def test_after_applying_a_new_session_finds_nothing_critical_and_nothing_to_do(tmp_path: Path, audit: Path) -> None:
    """Fixes persist in the sandbox dir: the next process's investigation has no root cause and its plan is empty."""
    with seed(tmp_path) as s:
        apply_plan(s, plan_fixes(investigate(s, APP)), dry_run=False, confirm=APP, app=APP)
    with reopen(tmp_path) as s:
        inv = investigate(s, APP)
        assert secret_now(s) == secret_digest(RELEASE_V2)
    assert inv.root is None and not any(f.severity == "critical" for f in inv.findings), (
        inv.findings_frame().to_string()
    )
    replan = plan_fixes(inv)
    assert replan.actions == [] and replan.notes


def test_applying_the_same_plan_twice_changes_nothing_but_reverifies(tmp_path: Path, audit: Path) -> None:
    """A second apply reports the pin and the row already done, changes neither, and only re-runs the verification."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
        first = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        secrets_before, row_before = s.supabase.list_secrets(), seed_row(s)
        registry_before = json.dumps(world_of(s).state["registry"], sort_keys=True)
        again = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert s.supabase.list_secrets() == secrets_before and seed_row(s) == row_before
        assert json.dumps(world_of(s).state["registry"], sort_keys=True) == registry_before
    assert [(a.status, a.reason.startswith("already done")) for a in again.actions[:2]] == [
        ("skipped", True),
        ("skipped", True),
    ]
    assert by_code(again, "VERIFY_PROVISIONING").status == "applied"
    assert {x["action"] for x in again.audit_lines} == {"VERIFY_PROVISIONING"}
    lines = audit_lines(audit)
    assert len(lines) == len(first.audit_lines) + len(again.audit_lines) and not unpaired(lines)


def test_pin_by_digest_sets_the_release_digest(tmp_path: Path, audit: Path) -> None:
    """Strategy pin-digest sets DOCKER_IMAGE to registry.fly.io/<repo>@<release digest>, and the next investigation is
    clean."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP), strategy="pin-digest")
        digest = s.fly.head_manifest(RELEASE_V2)["digest"]
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert secret_now(s) == secret_digest(f"registry.fly.io/vyx-app@{digest}")
        inv = investigate(s, APP)
    assert by_code(result, "PIN_SECRET_TO_RELEASE").status == "applied"
    assert inv.root is None


def test_latest_strategy_moves_latest_and_unsets_only_docker_image(
    tmp_path: Path, audit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TAG_LATEST makes :latest the release's digest; UNSET_SECRET then deletes DOCKER_IMAGE by name and no other
    secret."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP), strategy="latest")
        seen = record_requests(s, monkeypatch)
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert [a.status for a in result.actions] == ["applied"] * 4, result.frame().to_string()
        assert (
            s.fly.head_manifest("registry.fly.io/vyx-app:latest")["digest"] == s.fly.head_manifest(RELEASE_V2)["digest"]
        )
        names = {x["name"] for x in s.supabase.list_secrets()}
    deletes = [json.loads(r.content) for r in seen if r.method == "DELETE" and r.url.path.endswith("/secrets")]
    assert deletes == [["DOCKER_IMAGE"]]
    assert "DOCKER_IMAGE" not in names and {"FLY_APP_NAME", "SUPABASE_URL"} <= names


def test_unset_secret_waits_for_latest_to_be_the_release(
    tmp_path: Path, audit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UNSET_SECRET alone is skipped while :latest does not resolve to the release: provisioning would fall back to
    nothing."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP), fixes=["UNSET_SECRET"])
        seen = record_requests(s, monkeypatch)
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert secret_now(s) == secret_digest(STUB)
    (unset,) = result.actions
    assert unset.status == "skipped" and ":latest" in unset.reason and "fall back" in unset.reason
    assert not [r for r in seen if r.method == "DELETE"]


# --------------------------------------------------------------------------- guards


def test_secret_changed_since_planning_skips_the_pin(tmp_path: Path, audit: Path) -> None:
    """When someone set DOCKER_IMAGE after the plan was made, the pin is
    skipped with the reason and their value stays."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
        world_of(s).set_secrets([{"name": "DOCKER_IMAGE", "value": "registry.fly.io/vyx-app:hotfix"}])
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert secret_now(s) == secret_digest("registry.fly.io/vyx-app:hotfix")
    pin = by_code(result, "PIN_SECRET_TO_RELEASE")
    assert pin.status == "skipped" and "changed since planning" in pin.reason


def test_release_moved_since_planning_skips_the_pin(tmp_path: Path, audit: Path) -> None:
    """When a new release was deployed after planning, the pin to the old release is skipped, naming the new version."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
        world_of(s).deploy(APP, "registry.fly.io/vyx-app:deployment-01K6JZZZZZZZZZZZZZZZZZZZZZ")
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert secret_now(s) == secret_digest(STUB)
    pin = by_code(result, "PIN_SECRET_TO_RELEASE")
    assert pin.status == "skipped" and "release moved" in pin.reason and "v3" in pin.reason


def test_row_updated_since_planning_is_left_alone(tmp_path: Path, audit: Path) -> None:
    """A row that changed after it was read (here: the app touched it) is not reconciled, and says how it changed."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
        world_of(s).sleep(30)
        world_of(s).db_update("machines", {"fly_machine_id": SEED_MACHINE}, {"status": "starting"})
        touched = seed_row(s)
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert seed_row(s) == touched
    row = by_code(result, "RECONCILE_STUCK_ROWS")
    assert row.status == "skipped" and "changed since it was read" in row.reason and touched["updated_at"] in row.reason


def test_row_changed_between_check_and_write_is_caught_by_the_filter(
    tmp_path: Path, audit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PATCH is guarded by id, status and updated_at: a row changed
    just before it matches nothing and is skipped."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP), fixes=["RECONCILE_STUCK_ROWS"])
        app = s.fly.machines.retrying.transport.app
        original = app.handle

        def racing(request: httpx.Request) -> httpx.Response:
            if request.method == "PATCH":  # the app reports in between our read and our write
                world_of(s).sleep(1)
                world_of(s).db_update("machines", {"fly_machine_id": SEED_MACHINE}, {"status": "running"})
            return original(request)

        monkeypatch.setattr(app, "handle", racing)
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert seed_row(s)["status"] == "running"
    (row,) = result.actions
    assert row.status == "skipped" and "now status running" in row.reason
    # The PATCH was sent (its intent is logged); the re-read shows it matched nothing: skipped, not applied.
    assert [(x["kind"], x.get("result")) for x in result.audit_lines] == [("intent", None), ("outcome", "skipped")]


def test_a_failure_stops_the_plan_and_a_rerun_finishes_it(tmp_path: Path, audit: Path) -> None:
    """A failing PATCH fails its action, the rest are not run, nothing is half-applied, and a rerun without the fault
    finishes."""
    faults = Faults([FaultRule(kind="5xx", path="/rest/v1/", method="PATCH")])
    with seed(tmp_path, faults=faults) as s:
        plan = plan_fixes(investigate(s, APP))
        first = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert seed_row(s)["status"] == "starting"
    assert [a.status for a in first.actions] == ["applied", "failed", "skipped"]
    assert "503" in first.actions[1].reason and first.actions[2].reason == NOT_RUN
    assert [(x["action"], x["result"]) for x in first.audit_lines if x["kind"] == "outcome"] == [
        ("PIN_SECRET_TO_RELEASE", "applied"),
        ("RECONCILE_STUCK_ROWS", "failed"),
    ]
    with reopen(tmp_path) as s:
        second = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert seed_row(s)["status"] == "failed"
    assert [a.status for a in second.actions] == ["skipped", "applied", "applied"]
    assert second.actions[0].reason.startswith("already done")


def test_a_write_whose_answer_was_lost_is_reread_and_applied(tmp_path: Path, audit: Path) -> None:
    """When the PATCH took effect but its answer was lost (a 503 after the fact), the re-read makes it applied, and a
    rerun sees it done."""
    faults = Faults([FaultRule(kind="5xx", path="/rest/v1/", method="PATCH", when="after")])
    with seed(tmp_path, faults=faults) as s:
        plan = plan_fixes(investigate(s, APP), fixes=["RECONCILE_STUCK_ROWS"])
        first = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert seed_row(s)["status"] == "failed"
    with reopen(tmp_path) as s:
        second = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
    assert first.actions[0].status == "applied" and "the answer was lost" in first.actions[0].reason
    outcome = next(x for x in first.audit_lines if x["kind"] == "outcome")
    assert outcome["result"] == "applied" and "503" in outcome["answer_lost"]
    assert second.actions[0].status == "skipped" and second.actions[0].reason.startswith("already done")


@pytest.mark.parametrize("confirm", [None, "", "other-app"])
def test_apply_without_the_app_name_is_refused_before_any_call(
    tmp_path: Path, audit: Path, confirm: str | None
) -> None:
    """dry_run=False without confirm equal to the app is an InputError naming --confirm, raised before any platform
    call."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
        calls = sandbox_calls(s)
        with pytest.raises(InputError) as refused:
            apply_plan(s, plan, dry_run=False, confirm=confirm, app=APP)
        assert sandbox_calls(s) == calls
        assert secret_now(s) == secret_digest(STUB)
    assert refused.value.name == "--confirm" and "--confirm" in str(refused.value)
    assert not audit.exists()


# --------------------------------------------------------------------------- verification


def test_verification_reports_what_it_saw_when_provisioning_still_fails(tmp_path: Path, audit: Path) -> None:
    """Verifying the unfixed seed fails with the canary's story (started, exited, row never running) and leaves no
    stuck row."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP), fixes=["VERIFY_PROVISIONING"])
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        v = result.verification
        canary = s.supabase.select_all("machines", filters=[("fly_machine_id", "eq", v["machine_id"])]).rows[0]
        state = s.fly.get_machine(APP, v["machine_id"])["state"]
    (verify,) = result.actions
    assert verify.status == "failed" and "exited with code 0" in verify.reason and "starting" in verify.reason
    assert v["image"] == STUB and v["exit_code"] == 0 and v["row_status"] == "starting"
    assert state == "destroyed" and canary["status"] == "failed" and "error" not in canary
    verdict = [x["result"] for x in result.audit_lines if x["kind"] == "outcome" and x["step"] == "verify"]
    assert verdict == ["failed"] and not unpaired(result.audit_lines)


@pytest.mark.parametrize("strategy", ["pin", "latest"])
def test_a_plan_that_writes_a_secret_warns_of_every_functions_cold_start(tmp_path: Path, strategy: str) -> None:
    """PIN and UNSET write a secret, which restarts every function of the project (Supabase KB): plan.json and
    the rendered dry run say so with the count; the actions that write no secret carry no such warning."""
    from vyxops.nbtools.remediation import plan_html

    with seed(tmp_path) as s:
        n = len(s.supabase.list_functions())
        plan = plan_fixes(investigate(s, APP), strategy=strategy)
    doc = plan.document(True)
    writes = {"PIN_SECRET_TO_RELEASE", "UNSET_SECRET"}
    for action in doc["actions"]:
        warned = [w for w in action["warnings"] if "restarts" in w]
        if action["code"] in writes:
            assert warned == [
                f"writing a secret restarts all {n} Edge Function(s) of the project: each gets a new version and "
                "cold-starts on its next invocation (not a redeploy; the code is unchanged)"
            ]
        else:
            assert warned == []
    assert writes & {a["code"] for a in doc["actions"]}
    html = plan_html(plan)
    assert "Warnings:" in html and f"restarts all {n} Edge Function(s)" in html


def test_shared_test_helpers_have_one_home() -> None:
    """Investigating a scenario, a sandbox session and picking findings or actions by code live in
    vyxops.testing.runs: no test file defines its own copy again (four did)."""
    import re

    copies = re.compile(
        r"def \w+\(.*\)[^\n]*:\n(?:\s+\"\"\".*\"\"\"\n)?\s+return (?:\{f\.code for f in \w+\.findings\}"
        r"|\[a\.code for a in \w+\.actions\]|next\(a for a in \w+\.actions if a\.code == code\)"
        r"|\[f for f in \w+\.findings if f\.code == code\]"
        r"|open_session\(\"sandbox\", scenario=\w+, sandbox_dir=tmp_path / \"sandbox\"\))"
    )
    found = [p.name for p in Path(__file__).parent.glob("*.py") if copies.search(p.read_text())]
    assert found == []

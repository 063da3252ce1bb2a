"""A fix is a transaction that survives a kill: intents before writes, outcomes after, and the next run settles the
rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_fixes import (
    APP,
    RELEASE_V2,
    audit_lines,
    canaries_left,
    reopen,
    secret_now,
    seed_row,
    unpaired,
)

from vyxops.act.fixes import apply_plan, plan_fixes, read_history
from vyxops.analysis.investigate import investigate
from vyxops.core.images import secret_digest
from vyxops.fetch.session import Session
from vyxops.testing.runs import action_codes as codes
from vyxops.testing.runs import action_of as by_code
from vyxops.testing.runs import sandbox_session as seed
from vyxops_sandbox.faults import FaultRule, Faults
from vyxops_sandbox.testing import world_of

#: The client methods that write, and the object they live on.
WRITES = {
    "set_secrets": "supabase",
    "update_rows": "supabase",
    "invoke": "supabase",
    "destroy_machine": "fly",
}


@pytest.fixture
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The audit log of one test, set the way an operator sets it."""
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(path))
    monkeypatch.setenv("VYXOPS_OPERATOR", "test-operator")
    return path


def fail_after(
    monkeypatch: pytest.MonkeyPatch, session: Session, method: str, nth: int, raise_: Callable[[], BaseException]
) -> None:
    """Make the ``nth`` call of a client write raise once the platform has carried it out."""
    client = getattr(session, WRITES[method])
    original = getattr(client, method)
    calls = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        answer = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == nth:
            raise raise_()
        return answer

    monkeypatch.setattr(client, method, wrapper)


def rerun(tmp_path: Path, **apply_kw: Any) -> tuple[Any, Any]:
    """A later run: investigate, plan and apply again with no fault, as an operator would after a kill."""
    with reopen(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP, **apply_kw)
        assert not canaries_left(s), "a canary outlived the rerun"
        after = investigate(s, APP)
    return plan, result if after.root is None else pytest.fail(f"not fixed after the rerun: {after.root_line}")


def test_the_intent_is_on_disk_before_the_write_is_sent(
    tmp_path: Path, audit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the secret upsert reaches the platform, the audit log already holds its intent line."""
    seen: list[dict[str, Any]] = []
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP), fixes=["PIN_SECRET_TO_RELEASE"])
        original = s.supabase.set_secrets

        def set_secrets(items: list[dict[str, str]]) -> None:
            seen.append(audit_lines(audit)[-1])
            original(items)

        monkeypatch.setattr(s.supabase, "set_secrets", set_secrets)
        apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
    assert seen and seen[0]["kind"] == "intent" and seen[0]["step"] == "set_secret"
    assert seen[0]["after"]["ref"] == RELEASE_V2


@pytest.mark.parametrize("kill", [KeyboardInterrupt, SystemExit], ids=["KeyboardInterrupt", "SystemExit"])
@pytest.mark.parametrize(
    "method,nth,fixes",
    [
        ("set_secrets", 1, None),
        ("update_rows", 1, None),
        ("invoke", 1, None),
        ("destroy_machine", 1, None),
        # A canary that works has its row marked `stopped` by its own app when told to stop (SPEC.md), so
        # cleanup only PATCHes the row of a canary that failed: verifying the unfixed seed makes one.
        ("update_rows", 1, ["VERIFY_PROVISIONING"]),
    ],
    ids=["secret-upsert", "row-patch", "invoke", "canary-destroy", "canary-row-patch"],
)
def test_a_kill_right_after_any_write_is_settled_by_the_next_run(
    tmp_path: Path,
    audit: Path,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    nth: int,
    fixes: list[str] | None,
    kill: type[BaseException],
) -> None:
    """Killed right after a write took effect, the run leaves result.json and paired lines; the next run cleans up,
    verifies and ends fixed."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP), fixes=fixes)
        fail_after(monkeypatch, s, method, nth, kill)
        with pytest.raises(kill):
            apply_plan(s, plan, dry_run=False, confirm=APP, app=APP, out_dir=tmp_path / "first")
    monkeypatch.undo()
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(audit))
    first = json.loads((tmp_path / "first" / "result.json").read_text())
    assert any(a["reason"].startswith("interrupted") for a in first["actions"])
    assert not any(a["status"] == "applied" and a["code"] == "VERIFY_PROVISIONING" for a in first["actions"])
    assert not unpaired(audit_lines(audit))  # the interrupted write says so
    replan, second = rerun(tmp_path)
    assert by_code(second, "VERIFY_PROVISIONING").status == "applied"
    if method in ("invoke", "destroy_machine") or fixes:  # a canary existed when the run died
        assert by_code(second, "CLEANUP_VERIFY_CANARY").status in ("applied", "skipped")
    assert not unpaired(audit_lines(audit))
    assert not read_history(audit, target="sandbox:stub-image", app=APP).canaries


def test_after_an_interrupted_apply_the_next_run_verifies_even_a_clean_investigation(
    tmp_path: Path, audit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both fixes took effect before the kill, so nothing is wrong any more: the audit log still asks for the
    verification."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
        fail_after(monkeypatch, s, "update_rows", 1, KeyboardInterrupt)
        with pytest.raises(KeyboardInterrupt):
            apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
    with reopen(tmp_path) as s:
        inv = investigate(s, APP)
        replan = plan_fixes(inv)
    assert inv.root is None
    assert codes(replan) == ["VERIFY_PROVISIONING"]
    assert (
        "never verified" in replan.actions[0].reason and "RECONCILE_STUCK_ROWS interrupted" in replan.actions[0].reason
    )


@pytest.mark.parametrize(
    "raw", [lambda: RuntimeError("boom"), lambda: httpx.ReadTimeout("answer lost")], ids=["RuntimeError", "ReadTimeout"]
)
@pytest.mark.parametrize("method", list(WRITES))
def test_a_raw_exception_after_a_write_never_escapes_and_the_reread_decides(
    tmp_path: Path, audit: Path, monkeypatch: pytest.MonkeyPatch, method: str, raw: Callable[[], BaseException]
) -> None:
    """A raw error after a write that took effect is not 'failed': the re-read finds the change, and the run goes on."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
        fail_after(monkeypatch, s, method, 1, raw)
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP, out_dir=tmp_path / "out")
        assert not canaries_left(s)
        assert secret_now(s) == secret_digest(RELEASE_V2) and seed_row(s)["status"] == "failed"
    assert [a.status for a in result.actions] == ["applied"] * 3, result.frame().to_string()
    assert (tmp_path / "out" / "result.json").exists() and not unpaired(result.audit_lines)
    lost = [x for x in result.audit_lines if x["kind"] == "outcome" and x.get("answer_lost")]
    if method != "invoke":  # a lost invoke answer is recovered by looking the canary up by its user id
        assert len(lost) == 1 and ("boom" in lost[0]["answer_lost"] or "ReadTimeout" in lost[0]["answer_lost"])


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_patch_timeout_ends_as_an_outcome_with_its_audit_line(tmp_path: Path, audit: Path, when: str) -> None:
    """A timed-out PATCH never escapes as httpx.ReadTimeout: failed when it did not happen, applied when it did,
    result.json written."""
    faults = Faults([FaultRule(kind="timeout", path="/rest/v1/", method="PATCH", when=when)])
    with seed(tmp_path, faults=faults) as s:
        plan = plan_fixes(investigate(s, APP), fixes=["RECONCILE_STUCK_ROWS"])
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP, out_dir=tmp_path / "out")
        status = seed_row(s)["status"]
    (row,) = result.actions
    written = json.loads((tmp_path / "out" / "result.json").read_text())
    assert written["actions"][0]["status"] == row.status
    outcome = next(x for x in result.audit_lines if x["kind"] == "outcome")
    if when == "before":
        assert row.status == "failed" and "ReadTimeout" in row.reason and status == "starting"
        assert outcome["result"] == "failed"
    else:
        assert row.status == "applied" and "the answer was lost" in row.reason and status == "failed"
        assert outcome["result"] == "applied" and "ReadTimeout" in outcome["answer_lost"]


def test_a_lost_secret_answer_that_took_effect_is_applied(tmp_path: Path, audit: Path) -> None:
    """The upsert timed out after it took effect (every retry too): the re-read shows the new digest, so it is applied,
    once."""
    faults = Faults([FaultRule(kind="timeout", path="/secrets$", method="POST", when="after")])
    with seed(tmp_path, faults=faults) as s:
        plan = plan_fixes(investigate(s, APP), fixes=["PIN_SECRET_TO_RELEASE"])
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert secret_now(s) == secret_digest(RELEASE_V2)
    (pin,) = result.actions
    assert pin.status == "applied" and "the answer was lost" in pin.reason
    assert [x["result"] for x in result.audit_lines if x["kind"] == "outcome"] == ["applied"]


def test_a_malformed_200_on_the_canary_row_patch_is_not_called_closed(tmp_path: Path, audit: Path) -> None:
    """A 200 with a garbage body that changed nothing leaves the row open: cleanup failed, said so, and the next run
    closes it. (The canary fails, on the unfixed seed, so its own app does not close its row.)"""
    faults = Faults([FaultRule(kind="malformed", path="/rest/v1/", method="PATCH")])
    with seed(tmp_path, faults=faults) as s:
        plan = plan_fixes(investigate(s, APP), fixes=["VERIFY_PROVISIONING"])
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        left = canaries_left(s)
    verify = by_code(result, "VERIFY_PROVISIONING")
    assert verify.status == "failed" and "is not closed" in verify.reason
    close = next(x for x in result.audit_lines if x["kind"] == "outcome" and x["step"] == "close_row")
    assert close["result"] == "failed" and close["after"]["status"] in ("starting", "running")
    assert left and left[0].startswith("row ")
    replan, second = rerun(tmp_path)
    assert codes(replan)[0] == "CLEANUP_VERIFY_CANARY" and "audit log" in replan.actions[0].reason
    assert by_code(second, "CLEANUP_VERIFY_CANARY").status == "applied"


def test_a_canary_nobody_logged_is_found_by_listing_and_cleaned_up(tmp_path: Path, audit: Path) -> None:
    """A vyxops-verify-* machine and open row with no audit line behind them are found by listing, reported on a dry
    run, removed on apply."""
    with seed(tmp_path) as s:
        world = world_of(s)
        world.set_secrets([{"name": "DOCKER_IMAGE", "value": RELEASE_V2}])  # the canary's image serves: it stays up
        world.invoke_function("provision-machine", {"user_id": "vyxops-verify-orphan", "region": "sjc"})
        world.sleep(5)
        plan = plan_fixes(investigate(s, APP))
        dry = apply_plan(s, plan, app=APP)
        assert canaries_left(s)
    cleanup = plan.actions[0]
    assert cleanup.code == "CLEANUP_VERIFY_CANARY" and "machine list" in cleanup.reason and "open row" in cleanup.reason
    assert dry.actions[0].status == "planned" and not audit.exists()
    assert any(line.startswith("fly machines destroy --force") for line in cleanup.native)
    _, second = rerun(tmp_path)
    assert by_code(second, "CLEANUP_VERIFY_CANARY").status == "applied"


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from vyxops.act.fixes import apply_plan, plan_fixes
    from vyxops.analysis.investigate import investigate
    from vyxops.fetch.session import open_session

    with open_session("sandbox", sandbox_dir=Path(sys.argv[1])) as s:
        plan = plan_fixes(investigate(s, "vyx-app"))
        original = s.supabase.invoke

        def invoke(*args, **kwargs):
            original(*args, **kwargs)  # the canary exists now, and the sandbox saved it
            os.kill(os.getpid(), signal.SIGKILL)

        s.supabase.invoke = invoke
        apply_plan(s, plan, dry_run=False, confirm="vyx-app", app="vyx-app")
    """
)


def test_sigkill_while_provisioning_the_canary_is_cleaned_up_by_the_next_run(tmp_path: Path, audit: Path) -> None:
    """SIGKILL right after the invoke: the intents stay open, the lock is freed by the kernel, and the next run closes,
    cleans and verifies."""
    with seed(tmp_path):
        pass
    env = {**os.environ, "VYXOPS_AUDIT_LOG": str(audit)}
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path / "sandbox")], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    history = read_history(audit, target="sandbox:stub-image", app=APP)
    assert {(x["action"], x["step"]) for x in history.open_intents} == {
        ("VERIFY_PROVISIONING", "verify"),
        ("VERIFY_PROVISIONING", "invoke"),
    }
    assert [c.machine_id for c in history.canaries] == [None]  # known by user id only: the answer never came back
    with reopen(tmp_path) as s:
        dry = plan_fixes(investigate(s, APP))
    assert codes(dry)[0] == "CLEANUP_VERIFY_CANARY" and any("interrupted run" in n for n in dry.notes)
    _, second = rerun(tmp_path)
    assert [a.code for a in second.actions][0] == "CLEANUP_VERIFY_CANARY"
    assert by_code(second, "CLEANUP_VERIFY_CANARY").status == "applied"
    assert by_code(second, "VERIFY_PROVISIONING").status == "applied"
    assert any("closed 2 intent(s)" in n for n in second.notes)
    assert any(n.startswith("lock: took over a stale lock left by") for n in second.notes)  # the killed run's
    assert not unpaired(audit_lines(audit))


def test_an_unwritable_audit_log_or_result_refuses_before_any_change(
    tmp_path: Path, audit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log that cannot be written is a ConfigError, a result.json that cannot be is an InputError: both before any
    write."""
    from vyxops.core.errors import ConfigError, InputError

    state = tmp_path / "sandbox" / "state.json"
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
        before = state.read_bytes()
        (tmp_path / "log-is-a-dir").mkdir()
        with pytest.raises(ConfigError):
            apply_plan(s, plan, dry_run=False, confirm=APP, app=APP, audit_log=tmp_path / "log-is-a-dir")
        (tmp_path / "out" / "result.json").mkdir(parents=True)
        with pytest.raises(InputError) as bad_out:
            apply_plan(s, plan, dry_run=False, confirm=APP, app=APP, out_dir=tmp_path / "out")
        assert secret_now(s) != secret_digest(RELEASE_V2)
    assert bad_out.value.name == "--out" and state.read_bytes() == before

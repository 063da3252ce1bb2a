"""A crashing release gets no crashing canary: pin the secret to the last release whose machines served, or say none
did."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_fixes import canaries_left

from vyxops.act.fixes import apply_plan, plan_fixes
from vyxops.analysis.advice.served import release_health
from vyxops.analysis.investigate import investigate
from vyxops.core.images import secret_digest
from vyxops.fetch.session import Session
from vyxops.testing.runs import action_codes as codes
from vyxops.testing.runs import action_of as by_code
from vyxops.testing.runs import sandbox_session as open_
from vyxops_sandbox.testing import world_of

APP = "api-app"
GOOD = "registry.fly.io/api-app:deployment-01K9TGOOD000000000000000000"
CRASH = "registry.fly.io/api-app:deployment-01K9TCRASH00000000000000000"
AFTER_GOOD = Path(__file__).parent / "scenarios" / "release-crashes-after-good.yaml"


@pytest.fixture(autouse=True)
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(path))
    return path


def canaries_made(session: Session) -> list[str]:
    machines = world_of(session).state["fly"]["apps"][APP]["machines"].values()
    return [m["id"] for m in machines if m["config"]["metadata"].get("user_id", "").startswith("vyxops-verify-")]


def test_when_no_earlier_release_served_the_plan_says_so_and_makes_no_canary(tmp_path: Path) -> None:
    """On the shipped scenario nothing ever ran v1: no pin, no canary on the crashing image, and the notes say why."""
    with open_(tmp_path, "release-image-crashes") as s:
        plan = plan_fixes(investigate(s, APP))
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        assert not canaries_made(s)
    assert codes(plan) == ["RECONCILE_STUCK_ROWS"] and by_code(result, "RECONCILE_STUCK_ROWS").status == "applied"
    notes = {n.split(": ", 1)[0]: n.split(": ", 1)[1] for n in plan.notes}
    assert "no earlier release's machines served" in notes["PIN_SECRET_TO_LAST_GOOD_RELEASE"]
    assert "release v2's own image fails" in notes["PIN_SECRET_TO_RELEASE"]
    assert "a canary would fail the same way" in notes["VERIFY_PROVISIONING"]


def test_the_plan_pins_the_last_release_that_served_with_its_evidence_then_verifies(tmp_path: Path) -> None:
    """v1's machine reached started and its row running: the plan pins DOCKER_IMAGE to v1's image, citing that, then
    verifies on it."""
    with open_(tmp_path, AFTER_GOOD) as s:
        plan = plan_fixes(investigate(s, APP), project_ref=s.project_ref)
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        secret = world_of(s).state["supabase"]["secrets"]["DOCKER_IMAGE"]["value"]
        assert not canaries_left(s)
        after = investigate(s, APP)
    assert codes(plan) == ["PIN_SECRET_TO_LAST_GOOD_RELEASE", "RECONCILE_STUCK_ROWS", "VERIFY_PROVISIONING"]
    pin = plan.actions[0]
    assert pin.desired["ref"] == GOOD and pin.desired["digest"] == secret_digest(GOOD)
    assert "release v2's own image fails" in pin.reason and "release v1 served" in pin.reason
    assert "reached running" in pin.reason and "the last release whose machines served" in pin.new
    assert pin.native == [f"supabase secrets set DOCKER_IMAGE={GOOD} --project-ref {s.project_ref}"]
    assert [a.status for a in result.actions] == ["applied"] * 3, result.frame().to_string()
    assert secret == GOOD and result.verification and result.verification["image"] == GOOD
    assert after.root is None


def test_after_the_pin_a_second_apply_changes_nothing_and_never_pins_back_to_the_crash(tmp_path: Path) -> None:
    """Re-planned after the fix, the crashing release stays unpinned (its image fails) and nothing is applied."""
    with open_(tmp_path, AFTER_GOOD) as s:
        apply_plan(s, plan_fixes(investigate(s, APP)), dry_run=False, confirm=APP, app=APP)
    state = tmp_path / "sandbox" / "state.json"
    before = state.read_bytes()
    with open_(tmp_path, AFTER_GOOD) as s:
        replan = plan_fixes(investigate(s, APP))
        again = apply_plan(s, replan, dry_run=False, confirm=APP, app=APP)
    assert replan.actions == [] and again.actions == [] and state.read_bytes() == before
    notes = {n.split(": ", 1)[0]: n.split(": ", 1)[1] for n in replan.notes}
    assert notes["PIN_SECRET_TO_LAST_GOOD_RELEASE"].startswith("already done")
    assert "own image fails" in notes["PIN_SECRET_TO_RELEASE"]


def test_naming_the_release_pin_on_a_crashing_release_is_refused_with_the_reason(tmp_path: Path) -> None:
    """--fix PIN_SECRET_TO_RELEASE while that release's image fails plans nothing and says so."""
    with open_(tmp_path, AFTER_GOOD) as s:
        plan = plan_fixes(investigate(s, APP), fixes=["PIN_SECRET_TO_RELEASE"])
    assert plan.actions == [] and any("own image fails" in n for n in plan.notes)


def test_served_and_failed_are_read_from_machines_events_and_rows(tmp_path: Path) -> None:
    """v1 served (started, row running); v2 fails (exited with code 1 three seconds after it started); matched by
    digest."""
    with open_(tmp_path, AFTER_GOOD) as s:
        health = release_health(investigate(s, APP).evidence)
    v2, v1 = health.releases
    assert health.current is v2 and v2.image == CRASH and v2.fails and not v2.served
    assert "exited with code 1" in v2.failed[0] and "3 s after it started" in v2.failed[0]
    assert v1.image == GOOD and v1.served and not v1.failed and "reached running" in v1.served[0]
    assert health.last_good() == (v1, [])


def test_a_multi_platform_release_image_that_crashes_is_still_pinned_away_from(tmp_path: Path) -> None:
    """Both releases' images are OCI indexes (BuildKit's default, with attestations): machines record the
    platform child's digest, the registry answers the index's. The plan still knows the current release's own
    image fails and which release served (PLATFORM.md "Image identity": one image, two digests)."""
    text = AFTER_GOOD.read_text(encoding="utf-8").replace(
        "{behaviour: crash, exit_code: 1, after_s: 3}",
        "{behaviour: crash, exit_code: 1, after_s: 3, index: true, attestations: true}\n"
        f"  {GOOD}: {{behaviour: serve, index: true, attestations: true}}",
    )
    scenario = tmp_path / "release-crashes-after-good-indexes.yaml"
    scenario.write_text(text.replace("name: release-crashes-after-good", "name: release-crashes-indexes"))
    with open_(tmp_path, scenario) as s:
        inv = investigate(s, APP)
        plan = plan_fixes(inv, project_ref=s.project_ref)
        health = release_health(inv.evidence)
    assert [r.version for r in health.releases if r.served] == [1]
    assert health.current is not None and health.current.fails
    assert codes(plan) == ["PIN_SECRET_TO_LAST_GOOD_RELEASE", "RECONCILE_STUCK_ROWS", "VERIFY_PROVISIONING"]
    assert plan.actions[0].desired["ref"] == GOOD

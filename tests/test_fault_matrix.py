"""The fault matrix, fixes slice: each write of `remediate --apply` × each fault, then a rerun without faults.

For every case: nothing is reported applied that did not happen (checked in the world
itself, not through the faulted API), and after the rerun the world is fixed, no canary
is left, and every audit line pairs an intent with an outcome. ``python
tests/test_fault_matrix.py`` runs every case and prints the tried / held / wrong table.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_fixes import APP, audit_lines, canaries_left, reopen, unpaired  # noqa: E402

from vyxops.act.fixes import Plan, Result, apply_plan, plan_fixes, read_history  # noqa: E402
from vyxops.analysis.investigate import investigate  # noqa: E402
from vyxops.fetch.session import Session  # noqa: E402
from vyxops.testing.runs import sandbox_session as seed  # noqa: E402
from vyxops_sandbox.faults import FaultRule, Faults  # noqa: E402
from vyxops_sandbox.testing import world_of  # noqa: E402


@dataclass(frozen=True)
class Write:
    """One write of an apply, the request that carries it, and the plan that reaches it."""

    method: str
    path: str
    plan: dict[str, Any] = field(default_factory=dict)


WRITES = {
    "secret upsert": Write("POST", r"/secrets$"),
    "row PATCH": Write("PATCH", r"/rest/v1/machines$"),
    "invoke": Write("POST", r"/functions/v1/provision-machine$"),
    "canary destroy": Write("DELETE", r"/v1/apps/[^/]+/machines/[^/]+$"),
    # A working canary's own app marks its row `stopped` when told to stop (SPEC.md): cleanup PATCHes the
    # row of a canary that failed, which verifying the unfixed seed makes.
    "canary row PATCH": Write("PATCH", r"/rest/v1/machines$", {"fixes": ["VERIFY_PROVISIONING"]}),
    "manifest PUT": Write("PUT", r"/manifests/latest$", {"strategy": "latest"}),
    "secret DELETE": Write("DELETE", r"/secrets$", {"strategy": "latest"}),
}
FAULTS: dict[str, dict[str, Any]] = {
    "lost answer": {"kind": "timeout", "when": "after"},
    "5xx after": {"kind": "5xx", "when": "after"},
    "5xx": {"kind": "5xx"},
    "429": {"kind": "429"},
    "timeout": {"kind": "timeout"},
    "malformed": {"kind": "malformed"},  # a 200 whose body is garbage, for a write that did not happen
    "malformed after": {"kind": "malformed", "when": "after"},
}
#: What every `make test` runs (the kinds issue 9 names); `VYXOPS_FAULT_MATRIX=full` and the script run them all.
EVERY_RUN = ("lost answer", "5xx", "429", "timeout", "malformed")


def untrue_claims(plan: Plan, result: Result, session: Session) -> list[str]:
    """Actions reported applied whose effect the world does not show."""
    world = world_of(session)
    state = world.state
    wrong = []
    for action, outcome in zip(plan.actions, result.actions):
        if outcome.status != "applied":
            continue
        secret = state["supabase"]["secrets"].get("DOCKER_IMAGE", {}).get("value")
        if action.code.startswith("PIN_SECRET") and secret != action.desired["ref"]:
            wrong.append(f"{action.code} applied but DOCKER_IMAGE is {secret}")
        if action.code == "UNSET_SECRET" and secret is not None:
            wrong.append(f"UNSET_SECRET applied but DOCKER_IMAGE is {secret}")
        if action.code == "TAG_LATEST":
            latest, release = (
                world.resolve_image(action.desired["ref"]),
                world.resolve_image(action.read["release_image"]),
            )
            if latest is None or release is None or latest[2] != release[2]:
                wrong.append("TAG_LATEST applied but :latest is not the release's digest")
        if action.code == "RECONCILE_STUCK_ROWS":
            row = next(r for r in state["supabase"]["tables"]["machines"]["rows"] if r["id"] == action.read["row_id"])
            if row["status"] != "failed":
                wrong.append(f"RECONCILE_STUCK_ROWS applied but the row is {row['status']}")
        if action.code == "VERIFY_PROVISIONING":
            mid = (result.verification or {}).get("machine_id")
            machine = state["fly"]["apps"][APP]["machines"].get(mid)
            if machine is None or machine["state"] != "destroyed":
                wrong.append(f"VERIFY_PROVISIONING applied but canary {mid} is {machine and machine['state']}")
            rows = [r for r in state["supabase"]["tables"]["machines"]["rows"] if r["fly_machine_id"] == mid]
            if not rows or any(r["status"] in ("starting", "running") for r in rows):
                wrong.append(f"VERIFY_PROVISIONING applied but canary {mid}'s row is open or missing")
    return wrong


def run_case(tmp_path: Path, write: Write, fault: dict[str, Any]) -> list[str]:
    """One case: apply under the fault, then rerun without it; what went wrong (empty: it held)."""
    os.environ["VYXOPS_AUDIT_LOG"] = str(tmp_path / "audit.jsonl")
    rule = FaultRule(method=write.method, path=write.path, **fault)
    problems: list[str] = []
    with seed(tmp_path, faults=Faults([rule])) as s:
        plan = plan_fixes(investigate(s, APP), **write.plan)
        first = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
        problems += [f"first run: {w}" for w in untrue_claims(plan, first, s)]
    if not rule.fired:
        problems.append("the fault never fired: the case tested nothing")
    with reopen(tmp_path) as s:
        replan = plan_fixes(investigate(s, APP), strategy=write.plan.get("strategy", "pin"))
        second = apply_plan(s, replan, dry_run=False, confirm=APP, app=APP)
        problems += [f"rerun: {w}" for w in untrue_claims(replan, second, s)]
        problems += [f"rerun: {a.code} {a.status}: {a.reason}" for a in second.actions if a.status == "failed"]
        after = investigate(s, APP)
        problems += [f"left behind: {x}" for x in canaries_left(s)]
    if after.root is not None:
        problems.append(f"not fixed: {after.root_line}")
    lines = audit_lines(tmp_path / "audit.jsonl")
    problems += unpaired(lines)
    if read_history(tmp_path / "audit.jsonl", target="sandbox:stub-image", app=APP).canaries:
        problems.append("the audit log still holds a canary duty")
    return problems


@pytest.mark.parametrize("fault", list(FAULTS) if os.environ.get("VYXOPS_FAULT_MATRIX") == "full" else EVERY_RUN)
@pytest.mark.parametrize("write", list(WRITES))
def test_a_fault_on_a_write_holds_and_a_rerun_ends_fixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: str, fault: str
) -> None:
    """Nothing reported applied that did not happen; after a clean rerun: fixed, no canary, every intent paired."""
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    problems = run_case(tmp_path, WRITES[write], FAULTS[fault])
    assert not problems, "\n".join(problems)


def matrix() -> str:
    """Run every case and render the tried / held / wrong table (Markdown)."""
    rows = ["| write | " + " | ".join(FAULTS) + " | tried | held | wrong |", "|---" * (len(FAULTS) + 4) + "|"]
    totals = [0, 0]
    for name, write in WRITES.items():
        cells, held = [], 0
        for fault in FAULTS.values():
            with tempfile.TemporaryDirectory() as d:
                problems = run_case(Path(d), write, fault)
            cells.append("held" if not problems else "WRONG: " + "; ".join(problems)[:80])
            held += not problems
        totals[0] += len(FAULTS)
        totals[1] += held
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {len(FAULTS)} | {held} | {len(FAULTS) - held} |")
    rows.append("| **all** |" + " |" * len(FAULTS) + f" {totals[0]} | {totals[1]} | {totals[0] - totals[1]} |")
    return "\n".join(rows)


if __name__ == "__main__":
    os.environ.setdefault("VYXOPS_OPERATOR", "fault-matrix")
    print(matrix())

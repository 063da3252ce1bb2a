"""The fault matrix, investigation slice: each injectable fault × each path family, on the seed incident.

A case *holds* when the investigation either finds the seed's own root cause (the fault
was retried away, or hit a source it can do without and said so as a gap), or stops
with a typed vyxops error (exit 2 or 3). It is *wrong* when it names another root
cause, calls the app healthy, or ends in an untyped exception. ``python
tests/test_fault_matrix_investigate.py`` prints the tried / held / wrong table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vyxops.analysis.investigate import investigate
from vyxops.core.errors import VyxopsError, exit_code_for
from vyxops.fetch.http import RetryPolicy
from vyxops.fetch.session import open_session
from vyxops_sandbox.faults import FaultRule, Faults

ROOT = "SECRET_IMAGE_NOT_CURRENT_RELEASE"
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
FAMILIES = {
    "machines API": r"^/v1/apps/",
    "GraphQL releases": r"^/graphql$",
    "Fly logs": r"^/api/v1/apps/",
    "registry": r"^/v2/",
    "PostgREST rows": r"^/rest/v1/",
    "secrets": r"/secrets$",
    "functions list": r"/functions$",
    "logs endpoint": r"/analytics/endpoints/logs",
}
KINDS = {
    "429": {"kind": "429", "retry_after": 1},
    "5xx": {"kind": "5xx"},
    "timeout": {"kind": "timeout"},
    "malformed": {"kind": "malformed"},
    "latency": {"kind": "latency", "latency_ms": 1500},
}
MODES = {"once": {"nth": 1, "times": 1}, "always": {"rate": 1.0}}


def run_case(tmp_path: Path, family: str, kind: str, mode: str) -> str:
    """'' when the case held, else what went wrong."""
    rule = FaultRule(path=FAMILIES[family], **KINDS[kind], **MODES[mode])  # type: ignore[arg-type]
    try:
        faults = Faults([rule])
        with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path, faults=faults, retry=FAST) as s:
            inv = investigate(s, "vyx-app")
    except VyxopsError as exc:
        code = exit_code_for(exc)
        return "" if code in (2, 3) else f"exit {code}: {exc}"
    except Exception as exc:  # noqa: BLE001 - an untyped failure is exactly what this matrix looks for
        return f"untyped {type(exc).__name__}: {exc}"
    if not rule.fired:
        return "the fault never fired: the case tested nothing"
    if inv.root is None or inv.root.code != ROOT:
        return f"wrong diagnosis: {inv.root_line} ({inv.verdict})"
    if mode == "always" and kind != "latency" and not inv.gaps and family not in ("registry",):
        return "a source failing throughout left no gap and no error"
    return ""


CASES = [(f, k, m) for f in FAMILIES for k in KINDS for m in MODES]


@pytest.mark.parametrize(("family", "kind", "mode"), CASES, ids=[f"{f}-{k}-{m}" for f, k, m in CASES])
def test_an_investigation_under_a_fault_recovers_or_stops_typed(
    tmp_path: Path, family: str, kind: str, mode: str
) -> None:
    """A fault is retried away, becomes a gap, or ends in a typed error; never a wrong root cause or a traceback."""
    problem = run_case(tmp_path, family, kind, mode)
    assert not problem, problem


def matrix() -> str:
    import tempfile

    rows = ["| path family | " + " | ".join(f"{k} {m}" for k in KINDS for m in MODES) + " | tried | held | wrong |"]
    rows.append("|---" * (len(KINDS) * len(MODES) + 4) + "|")
    totals = [0, 0]
    for family in FAMILIES:
        cells, held = [], 0
        for kind in KINDS:
            for mode in MODES:
                with tempfile.TemporaryDirectory() as tmp:
                    ok = not run_case(Path(tmp), family, kind, mode)
                cells.append("held" if ok else "WRONG")
                held += ok
        tried = len(KINDS) * len(MODES)
        totals[0] += tried
        totals[1] += held
        rows.append(f"| {family} | " + " | ".join(cells) + f" | {tried} | {held} | {tried - held} |")
    empty_cells = " |" * (len(KINDS) * len(MODES))
    rows.append("| **all** |" + empty_cells + f" {totals[0]} | {totals[1]} | {totals[0] - totals[1]} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(matrix())
    sys.exit(0)

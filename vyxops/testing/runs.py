"""Test helpers the test files share (once redefined in four of them): a scenario investigated on a fresh
sandbox, a sandbox session, and findings or a plan's actions picked by code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vyxops.fetch.session import Session, open_session

if TYPE_CHECKING:
    from vyxops.act.fixes.model import Action, Outcome, Plan, Result
    from vyxops.analysis.detect.model import Finding
    from vyxops.analysis.investigate import Investigation


def investigate_scenario(
    tmp_path: Path, scenario: str | Path, app: str, *, scenarios: Path | None = None, **kw: Any
) -> Investigation:
    """``app`` investigated on a sandbox loaded with ``scenario`` (a file ``scenarios/<scenario>.yaml`` when
    ``scenarios`` is given, else a shipped name or a path), in ``tmp_path/<scenario's name>``."""
    from vyxops.analysis.investigate import investigate

    path = scenarios / f"{scenario}.yaml" if scenarios is not None else scenario
    with open_session("sandbox", scenario=path, sandbox_dir=tmp_path / Path(str(scenario)).name) as s:
        return investigate(s, app, **kw)


def sandbox_session(tmp_path: Path, scenario: str | Path = "stub-image", **kw: Any) -> Session:
    """A sandbox session (a context manager) loaded with ``scenario``, its state under ``tmp_path/sandbox``."""
    return open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "sandbox", **kw)


def finding_codes(inv: Investigation) -> set[str]:
    return {f.code for f in inv.findings}


def findings_of(inv: Investigation, code: str) -> list[Finding]:
    return [f for f in inv.findings if f.code == code]


def action_codes(plan_or_result: Plan | Result) -> list[str]:
    return [a.code for a in plan_or_result.actions]


def action_of(plan_or_result: Plan | Result, code: str) -> Action | Outcome:
    return next(a for a in plan_or_result.actions if a.code == code)

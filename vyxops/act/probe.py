"""``--probe``: provision a canary now, to see provisioning work (or fail) when the old evidence is gone.

Opt-in. It runs VERIFY_PROVISIONING's canary through the fixes' machinery, so it
takes the app's lock, writes intent and outcome lines to the audit log and cleans
up after itself; then the investigation is made again, with the canary's fresh
evidence in it. It is refused up front, before any platform write, when it
cannot work: no provisioning function, or a function whose ``verify_jwt`` would
refuse vyxops's bearer (:mod:`vyxops.core.function_auth`, the rule VERIFY_PROVISIONING is planned by).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from vyxops.act.fixes import Result, apply_plan, plan_fixes
from vyxops.act.probe_code import PROBE_FAILED
from vyxops.analysis.audit import Audit
from vyxops.analysis.detect import Finding, findings_document, summarize
from vyxops.analysis.detect.model import Link, ev
from vyxops.analysis.discover import resolve_contract
from vyxops.analysis.evidence import ProjectReads, parse_window
from vyxops.analysis.investigate import Investigation, investigate
from vyxops.core.contract import Contract
from vyxops.core.errors import ConfigError
from vyxops.core.function_auth import HINT, verify_jwt_of, verify_jwt_refusal
from vyxops.fetch.frames import fetch_functions
from vyxops.fetch.session import Session

CODE = "VERIFY_PROVISIONING"


@dataclass
class Probed:
    """The investigation made after the probe, what the probe did, and why it did not run (when it did not)."""

    investigation: Investigation
    result: Result | None
    skipped: str = ""


def check_probe(session: Session, contract: Contract) -> None:
    """Refuse a probe that cannot work, saying why (ConfigError, exit 2); no platform write is made."""
    fn = contract.function
    if contract.invoke is None:
        raise ConfigError(
            f"--probe: vyxops does not know what body {fn} takes (the pipeline contract has no invoke)",
            hint='declare it in vyxops.toml: [pipeline] invoke = {body = {user_id = "{canary_user}"}}',
        )
    functions = fetch_functions(session)
    hit = functions[functions["slug"] == fn]
    if hit.empty:
        raise ConfigError(
            f"--probe: the project has no Edge Function {fn!r} to provision a canary with",
            hint="deploy it, or investigate without --probe",
        )
    refusal = verify_jwt_refusal(fn, verify_jwt_of(functions, fn), session.supabase.function_bearer)
    if refusal is not None:
        raise ConfigError(f"--probe: {refusal}", hint=f"{HINT}; then probe again")


def probe_and_investigate(session: Session, app: str, **investigate_kw: Any) -> Probed:
    """Check, provision a canary (logged, locked, cleaned up), then investigate with its evidence."""
    # Discovery's reads (machines, releases, logs, tables) serve the investigation before the canary as well.
    project = ProjectReads(session)
    declared = investigate_kw.pop("contract", None)
    since, until = parse_window(
        session.now(), investigate_kw.get("since"), investigate_kw.get("until"), investigate_kw.get("tz", "UTC")
    )
    contract = resolve_contract(session, [app], declared=declared, project=project, since=since, until=until)
    check_probe(session, contract)
    investigate_kw["contract"] = contract
    before = investigate(session, app, project=project, **investigate_kw)
    plan = plan_fixes(before, fixes=[CODE])
    if not any(a.code == CODE for a in plan.actions):
        why = next((n for n in plan.notes if n.startswith(CODE)), f"{CODE}: not planned")
        return Probed(before, None, skipped=why)
    result = apply_plan(session, plan, dry_run=False, confirm=app, app=app)
    kw = {k: v for k, v in investigate_kw.items() if k != "until"}  # the canary happened after the window
    after = investigate(session, app, **kw)
    finding = probe_finding(result, contract.function, session.now())
    return Probed(after if finding is None else with_probe_finding(after, finding), result)


def probe_finding(result: Result, function: str, at: pd.Timestamp) -> Finding | None:
    """PROBE_FAILED when the probe's canary did not provision, or could not be cleaned up; else None.

    The canary may have been made in another app than the one investigated (the function's own),
    where the investigation does not look: the probe's outcome is then the only evidence of what
    provisioning does now, and it must reach the findings, the verdict and the exit status.
    """
    verify = next((a for a in result.actions if a.code == CODE), None)
    if verify is None or verify.status != "failed":
        return None
    seen = result.verification or {}
    problem, left = seen.get("problem"), seen.get("cleaned_up") is False
    if problem:
        title = f"the provisioning probe failed: {problem}"
        title += f"; its canary is not cleaned up: {seen.get('cleanup')}" if left else ""
    else:
        title = f"provisioning works, but the probe's canary is not cleaned up: {seen.get('cleanup')}"
    return Finding(
        code=PROBE_FAILED,
        severity="critical",
        title=title,
        entity=f"function:{function}",
        evidence=[ev("vyxops --probe (audit log)", at, verify.reason)],
        fixes=["CLEANUP_VERIFY_CANARY"] if left else [],
        facts={k: seen.get(k) for k in ("user_id", "machine_id", "machine_app", "cleaned_up")},
        link=Link.CREATE,
        at=at,
        symptom=True,
    )


def with_probe_finding(inv: Investigation, finding: Finding) -> Investigation:
    """``inv`` with the probe's finding; it is the root cause when the investigation named none (a failed probe
    is never "no failure was seen")."""
    findings = [*inv.findings, finding]
    root = inv.root or finding
    summary = summarize(inv.context, root, findings, inv.gaps)
    document = findings_document(inv.context, root, findings, summary, inv.gaps)
    return replace(inv, findings=findings, root=root, summary=summary, document=document)


def probe_inconclusive(session: Session, audit: Audit, **investigate_kw: Any) -> dict[str, Probed]:
    """``audit --probe``: probe each app whose verdict is inconclusive, and put its new investigation in the audit."""
    probed: dict[str, Probed] = {}
    for app, inv in list(audit.investigations.items()):
        if inv.verdict != "inconclusive":
            continue
        probed[app] = probe_and_investigate(session, app, **investigate_kw)
        audit.investigations[app] = probed[app].investigation
    return probed

"""``--probe``: provision a canary now, to see provisioning work (or fail) when the old evidence is gone.

Opt-in. It runs VERIFY_PROVISIONING's canary through the fixes' machinery, so it
takes the app's lock, writes intent and outcome lines to the audit log and cleans
up after itself; then the investigation is made again, with the canary's fresh
evidence in it. It is refused up front, before any platform write, when it
cannot work: no provisioning function, or a function whose ``verify_jwt`` would
refuse the configured key as a bearer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vyxops.audit import Audit
from vyxops.contract import Contract
from vyxops.discover import resolve_contract
from vyxops.errors import ConfigError
from vyxops.evidence import ProjectReads, parse_window
from vyxops.fixes import Result, apply_plan, plan_fixes
from vyxops.frames import fetch_functions
from vyxops.investigate import Investigation, investigate
from vyxops.session import Session

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
    verify_jwt = hit.iloc[0]["verify_jwt"]
    if bool(verify_jwt) and verify_jwt is not None and not session.supabase.key_is_jwt:
        raise ConfigError(
            f"--probe: {fn} has verify_jwt on, and the configured service key is not a JWT "
            "(an sb_secret_… key): the function would refuse the probe with 401 Invalid JWT before it runs",
            hint="use the project's legacy service_role key (a JWT) in SUPABASE_SERVICE_ROLE_KEY, or turn "
            "verify_jwt off for the function; then probe again",
        )


def probe_and_investigate(session: Session, app: str, **investigate_kw: Any) -> Probed:
    """Check, provision a canary (logged, locked, cleaned up), then investigate with its evidence."""
    # Discovery's reads (machines, releases, logs, tables) serve the investigation before the canary as well.
    project = ProjectReads(session)
    declared = investigate_kw.pop("contract", None)
    since, until = parse_window(session.now(), investigate_kw.get("since"), investigate_kw.get("until"))
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
    return Probed(investigate(session, app, **kw), result)


def probe_inconclusive(session: Session, audit: Audit, **investigate_kw: Any) -> dict[str, Probed]:
    """``audit --probe``: probe each app whose verdict is inconclusive, and put its new investigation in the audit."""
    probed: dict[str, Probed] = {}
    for app, inv in list(audit.investigations.items()):
        if inv.verdict != "inconclusive":
            continue
        probed[app] = probe_and_investigate(session, app, **investigate_kw)
        audit.investigations[app] = probed[app].investigation
    return probed

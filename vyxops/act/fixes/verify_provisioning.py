"""VERIFY_PROVISIONING: provision a canary through the real path, watch it reach started and running, clean it up."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pandas as pd

from vyxops.act.fixes.canary import Canary, app_name, clean_up, find_canary, wait_row_running, wait_started
from vyxops.act.fixes.context import ApplyContext, PlanContext
from vyxops.act.fixes.model import Action, Outcome
from vyxops.act.fixes.reads import CANARY_USER_PREFIX
from vyxops.act.fixes.registry import Fix, Place, register
from vyxops.act.fixes.steps import describe_error
from vyxops.act.fixes.values import brief
from vyxops.core.contract import Invoke
from vyxops.core.errors import PreconditionError
from vyxops.core.function_auth import HINT, bearer_said, verify_jwt_of, verify_jwt_refusal
from vyxops.core.timeutil import iso

CODE = "VERIFY_PROVISIONING"
DEFAULT_REGION = "sjc"
#: A Fly region code. The region comes from a DB row, which provisioning wrote from a request body.
REGION = re.compile(r"^[a-z]{3}$")


def plan(ctx: PlanContext) -> list[Action]:
    """Last: it checks the fixes before it on the real path, and the ones an interrupted run left unverified."""
    if not ctx.allowed(CODE):
        return []
    named = CODE in ctx.wanted
    before = [a.code for a in ctx.actions if a.code != "CLEANUP_VERIFY_CANARY"]
    unverified = ctx.history.unverified_text()
    if not (before or named or ctx.asked_critically(CODE) or unverified):
        ctx.note(
            CODE,
            "not needed: nothing is planned, no critical finding asks for it, "
            "and the audit log shows no unverified fix",
        )
        return []
    failing = ctx.release_fails()
    if failing and not any(a.code == "PIN_SECRET_TO_LAST_GOOD_RELEASE" for a in ctx.actions) and not _pinned_away(ctx):
        ctx.note(
            CODE,
            f"not planned: provisioning would use release v{ctx.facts['release_version']}'s image, which fails "
            f"({failing}): a canary would fail the same way",
        )
        return []
    contract = ctx.evidence.contract
    if contract.invoke is None:
        ctx.note(
            CODE,
            f"not planned: vyxops does not know what body {contract.function} takes (the contract has no invoke); "
            'declare [pipeline].invoke in vyxops.toml, e.g. invoke = {body = {user_id = "{canary_user}"}}',
        )
        return []
    e = ctx.evidence
    refused = verify_jwt_refusal(contract.function, verify_jwt_of(e.functions, contract.function), e.function_bearer)
    if refused is not None:  # the one rule --probe refuses by (vyxops.core.function_auth)
        ctx.note(CODE, f"not planned: {refused}; to verify provisioning, {HINT}; then run again")
        return []
    region, region_note = _region(ctx)
    if region_note:
        ctx.note(CODE, region_note)
    reasons = []
    if before:
        reasons.append("checks " + ", ".join(dict.fromkeys(before)))
    if unverified:
        reasons.append("the audit log shows fixes never verified since: " + unverified)
    asked = ctx.asked(CODE)
    if asked:
        reasons.insert(0, "asked for by " + ", ".join(asked))
    if named and not reasons:
        reasons.append("named with --fix")
    if e.function_bearer == "function_jwt":
        reasons.append(f"invoked with {bearer_said(e.function_bearer)}")
    critical = any(f.severity == "critical" for f in ctx.inv.findings)
    return [
        Action(
            code=CODE,
            target=f"function:{contract.function}",
            current="provisioning last failed" if critical else "not verified",
            new=f"a canary machine in {region} reaches started and its row running; then it is destroyed",
            precondition="the fixes before it applied or already done",
            risk=(
                "low: creates one short-lived machine (user vyxops-verify-…) and one row, cleaned up; "
                "runs on every apply"
            ),
            reason="; ".join(reasons),
            read={"function": contract.function, "region": region, "table": contract.table.name},
            desired={"machine": "started, then destroyed", "row": "running, then destroyed"},
        )
    ]


def _pinned_away(ctx: PlanContext) -> bool:
    """Whether the image secret already points somewhere other than the failing release's image."""
    cur = ctx.health.current
    ref = ctx.facts["secret_ref"]
    if cur is None or ctx.facts["secret_digest"] is None or ref is None:
        return False
    _, digest = ctx.evidence.head(ref)
    return ref != cur.image and (digest is None or not ctx.evidence.identity.same(digest, cur.digest))


def _region(ctx: PlanContext) -> tuple[str, str]:
    """The newest row's region when it is a Fly region code, else the default (and a note saying why)."""
    rows = ctx.evidence.machine_rows.dropna(subset=["created_at"]).sort_values("created_at")
    if rows.empty or pd.isna(rows.iloc[-1]["region"]):
        return DEFAULT_REGION, ""
    region = str(rows.iloc[-1]["region"])
    if REGION.match(region):
        return region, ""
    return (
        DEFAULT_REGION,
        f"region {region!r} of row {rows.iloc[-1]['id']} is not a Fly region code: the canary uses {DEFAULT_REGION}",
    )


def apply(ctx: ApplyContext, a: Action) -> Outcome:
    """Not idempotent by nature: it runs on every apply and leaves nothing lasting behind."""
    s, invoke = ctx.session, ctx.contract.invoke
    if invoke is None:  # a plan made with another contract: nothing is invoked, nothing is written
        raise PreconditionError(f"the pipeline contract has no invoke: vyxops does not know what body "
                                f"{ctx.contract.function} takes; declare [pipeline].invoke and re-plan")  # fmt: skip
    region = str(a.read.get("region") or DEFAULT_REGION)
    user_id = f"{CANARY_USER_PREFIX}{s.now().strftime('%Y%m%d%H%M%S')}-{ctx.log.run[:6]}"
    seen: dict[str, Any] = {"user_id": user_id, "region": region, "started_at": iso(s.now())}
    ctx.verification = seen
    txn = ctx.log.intent(CODE, "verify", a.target, after=a.desired, canary_user_id=user_id)
    try:
        outcome = _verify(ctx, a, invoke, user_id, region, seen)
    except Exception as exc:
        ctx.log.outcome(txn, "failed", describe_error(exc))
        raise
    except BaseException:
        ctx.log.outcome(txn, "interrupted", "interrupted while verifying: the next run cleans up the canary")
        raise
    seen["finished_at"] = iso(s.now())
    ctx.log.outcome(txn, outcome.status, outcome.reason, after=seen)
    return outcome


def _verify(ctx: ApplyContext, a: Action, invoke: Invoke, user_id: str, region: str, seen: dict[str, Any]) -> Outcome:
    s = ctx.session
    canary, refused = _invoke(ctx, invoke, user_id, region, seen)
    if canary is None:
        seen["problem"] = f"{refused}; no machine was provisioned"
        return Outcome(
            a.code,
            a.target,
            "failed",
            f"{refused}; no machine was provisioned",
            None,
            {"invoke_status": seen.get("invoke_status")},
        )
    mid, app = str(canary.machine_id), canary.app
    problem: str | None
    try:
        if app is None:
            problem = f"canary machine {mid} was provisioned, but no app of org {s.org} shows it"
        else:
            problem = wait_started(s, app, mid, seen) or wait_row_running(s, app, ctx.contract, mid, seen)
    except Exception as exc:
        problem = f"could not watch canary {mid}: {describe_error(exc)}"
    cleaned, cleanup = clean_up(ctx, a.code, canary, problem)
    seen["cleaned_up"] = cleaned != "failed"
    seen["cleanup"] = cleanup
    seen["problem"] = problem
    after = {k: seen.get(k) for k in ("machine_id", "machine_app", "machine_state", "row_status", "cleaned_up")}
    if problem is not None:
        return Outcome(
            a.code, a.target, "failed", f"provisioning did not work: {problem}; cleanup: {cleanup}", None, after
        )
    if cleaned == "failed":
        why = f"provisioning works (machine {mid} started, row running) but cleanup failed: {cleanup}"
        return Outcome(a.code, a.target, "failed", why, None, after)
    why = (
        f"provisioning works: machine {mid} reached started and its row running in {seen['waited_s']:.0f} s; {cleanup}"
    )
    return Outcome(a.code, a.target, "applied", why, None, after)


def _invoke(
    ctx: ApplyContext, invoke: Invoke, user_id: str, region: str, seen: dict[str, Any]
) -> tuple[Canary | None, str]:
    """Invoke provisioning; the canary's id and cleanup duty are logged as soon as it is known.

    An answer that is lost, malformed or an error is not the end: the canary is looked
    for by its user id before anyone says no machine was made.
    """
    s, fn = ctx.session, ctx.contract.function
    ref = {"user_id": user_id}
    request = invoke.build(user_id, region)
    txn = ctx.log.intent(CODE, "invoke", f"function:{fn}", canary=ref, body=request)
    try:
        try:
            status, body = s.supabase.invoke(fn, request)
            answer = f"{fn} answered {status}: {brief(body)}"
        except Exception as exc:
            status, body, answer = None, None, f"{fn}: {describe_error(exc)}"
        seen["invoke_status"] = status
        ok = status is not None and 200 <= status < 300
        mid = answered_machine(body, invoke.machine_id) if ok else None
        app = answered_app(body, ctx.contract.columns.app) if ok else None
        try:
            canary = find_canary(s, ctx.contract, user_id, mid, app=app, near=ctx.app)
        except Exception as exc:
            if mid:
                canary = Canary(user_id, mid, app=app, app_from="the function's answer" if app else "")
            else:
                why = f"{answer}; could not look for the canary by user_id ({describe_error(exc)})"
                ctx.log.outcome(txn, "unknown", why, canary=ref)
                return None, why
    except Exception:  # writing the audit log failed: nothing more can be logged
        raise
    except BaseException:
        ctx.log.outcome(txn, "interrupted", "interrupted while provisioning the canary", canary=ref)
        raise
    if canary.machine_id is None:
        ctx.log.outcome(txn, "failed", answer, canary_cleaned={**ref, "why": "no canary machine or row exists"})
        seen["function_answer"] = brief(body)
        return None, answer
    seen["machine_id"] = canary.machine_id
    seen["machine_app"] = canary.app
    seen["machine_app_from"] = canary.app_from
    column = ctx.contract.columns.image
    from_rows = next((r.get(column) for r in canary.rows), None) if column else None
    seen["image"] = body.get("image") if isinstance(body, dict) and body.get("image") else from_rows
    lost = "" if mid else f" ({answer}; found machine {canary.machine_id} by its user_id)"
    where = f"in app {canary.app} (from {canary.app_from})" if canary.app else f"in no app of org {s.org} vyxops sees"
    ctx.log.outcome(
        txn,
        "applied",
        f"canary machine {canary.machine_id} provisioned {where}{lost}",
        canary=canary.ref(),
        duty="destroy the canary machine and close its row",
    )
    return canary, ""


def answered_machine(body: object, key: str) -> str | None:
    """The machine id in the function's answer, under the contract's key (or ``id``), or None."""
    if not isinstance(body, dict):
        return None
    mid = body.get(key) or body.get("machine_id") or body.get("id")
    return str(mid) if isinstance(mid, (str, int)) and mid else None


def answered_app(body: object, column: str | None) -> str | None:
    """The app the function's answer says it created the machine in (``app``, ``app_name`` or the table's app
    column's name, e.g. ``fly_app``), when it says one that is a Fly app name; else None."""
    if not isinstance(body, dict):
        return None
    keys = [k for k in (column, "app", "app_name", "fly_app") if k]
    return next((a for a in (app_name(body.get(k)) for k in keys) if a), None)


def native(a: Action, place: Place) -> list[str]:
    invoke = place.contract.invoke
    request = invoke.build("vyxops-verify-manual", str(a.read.get("region") or DEFAULT_REGION)) if invoke else {}
    body = shlex.quote(json.dumps(request))
    key = invoke.machine_id if invoke else "machine_id"
    field = f".{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else shlex.quote(f".{json.dumps(key)}")
    app, fn = shlex.quote(place.app), place.contract.function
    return [
        f'MID=$(curl -sS -X POST "$SUPABASE_URL/functions/v1/{fn}" '
        f'-H "apikey: $SUPABASE_SERVICE_ROLE_KEY" '
        f'-H "Authorization: Bearer ${{VYXOPS_FUNCTION_JWT:-$SUPABASE_SERVICE_ROLE_KEY}}" '
        f'-H "Content-Type: application/json" -d {body} '
        f"| jq -r {field})",
        f'fly machine status "$MID" -a {app}',
        f'fly machines destroy --force "$MID" -a {app}',
    ]


def dashboard(a: Action, place: Place) -> list[str]:
    return [place.supabase(f"functions/{place.contract.function}/logs"), place.fly("machines")]


FIX = register(
    Fix(
        code=CODE,
        order=90,
        description="provision a canary through the real path, wait for started and DB running, then clean it up",
        plan=plan,
        apply=apply,
        native=native,
        dashboard=dashboard,
    )
)

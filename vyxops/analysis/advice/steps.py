"""The root cause's recommended actions, and fix lists that ask only for what remediate would plan."""

from __future__ import annotations

from vyxops.analysis.advice.model import NextStep, Situation, kinds, release_fails
from vyxops.analysis.advice.place import Place
from vyxops.analysis.advice.served import ReleaseHealth
from vyxops.analysis.detect.model import Finding
from vyxops.analysis.evidence import Evidence
from vyxops.core.function_auth import verify_jwt_of, verify_jwt_refusal
from vyxops.core.redaction import redact

#: Machines that something other than provisioning made: verifying provisioning says nothing about them.
NOT_PROVISIONED = ("other", "internal")
VERIFY = "VERIFY_PROVISIONING"
PIN_RELEASE = "PIN_SECRET_TO_RELEASE"
PIN_LAST_GOOD = "PIN_SECRET_TO_LAST_GOOD_RELEASE"


def next_steps(
    e: Evidence,
    root: Finding | None,
    findings: list[Finding],
    health: ReleaseHealth,
    project_ref: str | None = None,
    tz: str = "UTC",
) -> list[NextStep]:
    """What a person does about ``root`` where no automated fix mends it, each with its commands and evidence."""
    if root is None:
        return []
    s = Situation(e, root, findings, Place(e.app, project_ref, e.contract), health, tz=tz)
    out = []
    for kind in kinds():
        if root.code not in kind.roots:
            continue
        step = kind.advise(s)
        if step is not None:
            out.append(_redacted(step))
    return out


def _redacted(step: NextStep) -> NextStep:
    """Belt and braces: a command or a line of evidence never carries a token (they are built from names)."""
    return NextStep(
        step.code,
        redact(step.title),
        tuple(redact(c) for c in step.commands),
        step.dashboard,
        tuple(redact(x) for x in step.evidence),
    )


def settle_fixes(e: Evidence, root: Finding | None, findings: list[Finding], health: ReleaseHealth) -> None:
    """Keep every finding's ``fixes`` to what remediate would plan (a finding never recommends a fix remediate
    refuses), in place; the fixes' planners say the same in their notes:

    * the current release's own image fails: no finding asks to pin the secret to that release, and no canary is
      asked for unless the secret can first be pinned to the last release whose machines served (then the root
      asks for that pin);
    * what the contract cannot do: pin a secret the function does not read, tag a fallback it does not have,
      invoke a function whose body is not known; nor can an image
      fix point at a release image that no longer resolves;
    * a machine provisioning did not make (a worker, a console) asks for no verification of provisioning.
    """
    failing = release_fails(root, health, e)
    good = health.last_good()[0] if failing else None
    can_pin = good is not None and bool(e.contract.image_secret)
    refused = (
        _refused(e, health) | ({PIN_RELEASE} if failing else set()) | ({VERIFY} if failing and not can_pin else set())
    )
    for f in findings:
        f.fixes = [c for c in f.fixes if c not in refused]
        if f.facts.get("origin") in NOT_PROVISIONED:
            f.fixes = [c for c in f.fixes if c != VERIFY]
    if can_pin and root is not None and PIN_LAST_GOOD not in root.fixes:
        root.fixes.insert(0, PIN_LAST_GOOD)


def _refused(e: Evidence, health: ReleaseHealth) -> set[str]:
    """The fixes the contract or the release's image rule out whatever the findings say."""
    c, out = e.contract, set()
    if not c.image_secret:
        out |= {PIN_RELEASE, PIN_LAST_GOOD, "UNSET_SECRET"}
    if not c.fallback_ref(e.app):
        out |= {"TAG_LATEST", "UNSET_SECRET"}
    if health.current is None or health.current.exists is False:
        out |= {PIN_RELEASE, "TAG_LATEST"}  # nothing to point at, or it would make every create fail
    # A table with no failure word keeps RECONCILE_STUCK_ROWS asked for: its planner then gives the SQL to adapt.
    if c.invoke is None:
        out.add(VERIFY)
    elif verify_jwt_refusal(c.function, verify_jwt_of(e.functions, c.function), e.function_bearer) is not None:
        out.add(VERIFY)  # the platform would refuse the canary's bearer (the rule VERIFY's planner notes)
    return out

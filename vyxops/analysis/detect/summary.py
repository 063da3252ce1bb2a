"""The paragraph that names the chain with times, the verdict, and ``findings.json``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from vyxops.analysis.detect.context import Context, releases_said
from vyxops.analysis.detect.creates import KIND_SAYS
from vyxops.analysis.detect.machines import story_sentence
from vyxops.analysis.detect.model import Finding, is_machine_failure
from vyxops.core import facts
from vyxops.core.config import target_of_label
from vyxops.core.coverage import Gap
from vyxops.core.present import fmt_time_in_text, vyxops_command
from vyxops.core.timeutil import iso

FINDINGS_SCHEMA = "vyxops.findings/1"
Sentences = Callable[[Context, Finding, list[Finding]], list[str]]
#: code -> the sentences that tell its chain; a code without one is told by its title.
SUMMARIES: dict[str, Sentences] = {}


def summary_for(*codes: str) -> Callable[[Sentences], Sentences]:
    def wrap(fn: Sentences) -> Sentences:
        for code in codes:
            SUMMARIES[code] = fn
        return fn

    return wrap


def _when(ts: Any) -> str:
    return fmt_time_in_text(ts, _TZ[0])


_TZ = ["UTC"]  # the zone summaries are told in (set by summarize for the length of one call)


def _rows_sentences(found: list[Finding], failures: list[Finding]) -> list[str]:
    """What the DB rows of the failed machines say."""
    out = []
    ids = {f.facts["machine_id"] for f in failures}
    for f in found:
        if f.code == "DB_STATUS_STUCK" and f.facts.get("machine_id") in ids:
            row = f.facts["row"]
            since = row["updated_at"] if pd.notna(row["updated_at"]) else row["created_at"]  # no updated_at column
            out.append(
                f"Its DB row {row['id']} has been `{row['status']}` since {_when(since)} ({f.facts['minutes']} min)."
            )
        elif f.code == "DB_FLY_STATE_DRIFT" and f.facts.get("machine_id") in ids and not f.facts.get("silent"):
            row = f.facts["row"]
            out.append(
                f"Its DB row {row['id']} still says `{row['status']}` "
                f"although the machine is {f.facts['machine_state'] or 'gone'}."
            )
    return out


def _failures_told(found: list[Finding], keep: Callable[[Finding], bool]) -> list[str]:
    failures = [f for f in found if is_machine_failure(f.code) and f.current and keep(f)]
    failures.sort(key=lambda f: f.at if f.at is not None else pd.Timestamp(0, tz="UTC"))
    told = []
    for f in failures[-3:]:
        told.append(story_sentence(f, _TZ[0]))
        told += _rows_sentences(found, [f])
    if len(failures) > 3:
        told.insert(0, f"{len(failures)} machines failed this way; the last three:")
    return told


def _release_commands(ref: str | None, digest: str | None, found: list[Finding]) -> list[str]:
    """Why an image never became a release: the release command of its deploy exited non-zero."""
    out = []
    for x in found:
        g = x.facts
        if x.code != "RELEASE_COMMAND_FAILED" or not (g["image"] == ref or (digest and g.get("digest") == digest)):
            continue
        deploy = f"the deploy at {_when(g['deployed_at'])}" if g.get("deployed_at") is not None else "a deploy"
        failed = f" (release v{g['release_version']} is marked failed)" if g.get("release_version") else ""
        out.append(
            f"The release command of {deploy} (machine {g['machine_id']}) "
            f"{facts.describe_exit(g.get('exit_code'), None)}, so that deploy was aborted{failed} and "
            f"{g['image']} never became a release machines run."
        )
    return out


@summary_for("SECRET_IMAGE_NOT_CURRENT_RELEASE")
def _secret(ctx: Context, root: Finding, found: list[Finding]) -> list[str]:
    f, secret = root.facts, ctx.provisioning.secret
    parts = [
        f"Supabase secret {secret} (updated {_when(f['updated_at'])}) points at {f['ref']} — its SHA-256 "
        f"digest matches that reference{releases_said(f.get('releases') or [], f['release_version'])} — not the "
        f"current release v{f['release_version']}'s image {f['release_image']} "
        f"(released {_when(f['release_created_at'])})."
    ]
    parts += _release_commands(f["ref"], f.get("digest"), found)
    if f["exists"]:
        parts.append(
            f"{f['ref']} exists in the registry, so the Machines API accepted the create "
            "(a missing tag is refused with 400 MANIFEST_UNKNOWN and no machine)."
        )
    parts += _failures_told(
        found, lambda x: x.facts.get("image") == f["ref"] or x.facts.get("image_id") == f.get("image_id")
    )
    return parts


@summary_for("IMAGE_TAG_MISSING", "LATEST_TAG_MISSING")
def _missing(ctx: Context, root: Finding, found: list[Finding]) -> list[str]:
    f = root.facts
    how = "the registry answers HEAD with 404 MANIFEST_UNKNOWN"
    if f.get("from_refusals"):
        how = "the registry could not be asked, and the Machines API refused creates with it as MANIFEST_UNKNOWN"
    fn, secret = ctx.e.contract.function, ctx.provisioning.secret
    if root.code == "LATEST_TAG_MISSING" and not secret:  # a function that reads no image secret
        parts = [f"{fn} provisions with {f['ref']}, which {f['how']}: {how}."]
    elif root.code == "LATEST_TAG_MISSING":
        lead = "set to" if f["secret_set"] else f"not set, so {fn} falls back to"
        parts = [f"{secret} is {lead} {f['ref']}, which {f['how']}: {how}."]
    else:
        parts = [
            f"{secret} (updated {_when(f['updated_at'])}) points at {f['ref']} — its digest matches "
            f"that reference — and {how}."
        ]
    rej = next((x for x in found if x.code == "MACHINE_CREATE_REJECTED"), None)
    if rej is not None:
        r = rej.facts
        parts.append(
            f"The Machines API refused {r['count']} create(s) with 400 MANIFEST_UNKNOWN between {_when(r['first'])} "
            f"and {_when(r['last'])}: no machine was made and no DB row written; {fn} answered 500."
        )
    else:
        parts.append(
            "Every provisioning will be refused while this holds (the Machines API checks the image at create)."
        )
    if ctx.release is not None:
        parts.append(f"The current release v{ctx.release.version} runs {ctx.release.image}.")
    return parts


@summary_for("MACHINE_EXITED_AUTO_DESTROYED", "MACHINE_EXITED", "MACHINE_LAUNCH_FAILED", "MACHINE_RESTART_LOOP")
def _machine(ctx: Context, root: Finding, found: list[Finding]) -> list[str]:
    release, img = ctx.release, root.facts["image"]
    if release is not None and release.same_image(img, root.facts.get("digest")):
        same = "" if img == release.image else f" (as {img}, same digest {str(release.digest)[:19]}…)"
        parts = [
            f"Nothing points at a wrong image: machines run the current release v{release.version}'s own image "
            f"{release.image}{same}, and it fails."
        ]
    else:
        ran = releases_said(ctx.releases_of(img, root.facts.get("digest")))
        parts = [f"Machine {root.facts['machine_id']} ran {img}{ran}."]
    return parts + _failures_told(found, lambda x: x.facts.get("image") == img)


@summary_for("LATEST_TAG_STALE")
def _latest(ctx: Context, root: Finding, found: list[Finding]) -> list[str]:
    f = root.facts
    fn, secret = ctx.e.contract.function, ctx.provisioning.secret
    why = f"{secret} is unset, so {fn} uses" if not f["secret_set"] else f"{secret} names"
    why = why if secret else f"{fn} provisions with"
    parts = [
        f"{why} {f['ref']}, which now names {f['digest']}{releases_said(f.get('releases') or [])}, "
        f"not release v{f['release_version']}'s image "
        f"{f['release_image']} ({f['release_digest']}): the tag was overwritten, or not moved by the last deploy."
    ]
    return parts + _failures_told(found, lambda x: x.facts.get("image") == f["ref"])


@summary_for("DB_FLY_STATE_DRIFT")
def _drift(ctx: Context, root: Finding, found: list[Finding]) -> list[str]:
    row = root.facts["row"]
    mid, state = row["machine_id"], root.facts["machine_state"]
    if root.facts.get("silent"):
        return [
            f"Fly says machine {mid} is {state} while its DB row {row['id']} says {row['status']} "
            f"(created {_when(row['created_at'])}, last updated {_when(row['updated_at'])}): the machine runs "
            "but never reported back to the DB."
        ]
    return [
        f"DB row {row['id']} says {row['status']} (last updated {_when(row['updated_at'])}) but Fly says machine "
        f"{mid} is {state or 'not there, even by id'}: nothing on Fly explains it, so the row is wrong."
    ]


@summary_for("MACHINE_CREATE_REJECTED")
def _refused(ctx: Context, root: Finding, found: list[Finding]) -> list[str]:
    r = root.facts
    named = ", ".join(r["refs"]) or "an image the logs do not name"
    parts = [
        f"The Machines API refused {r['count']} create(s) for {named} between {_when(r['first'])} and "
        f"{_when(r['last'])}: no machine was made and no DB row written."
    ]
    other = {k: n for k, n in r.get("kinds", {}).items() if k != "image"}
    if other:
        parts.append("What Fly answered: " + "; ".join(f"{KIND_SAYS[k]} ({n})" for k, n in other.items()) + ".")
    return parts


@summary_for("FLY_TOKEN_REJECTED", "PROVISIONING_RATE_LIMITED", "REGION_CAPACITY")
def _refusal_class(ctx: Context, root: Finding, found: list[Finding]) -> list[str]:
    f = root.facts
    parts = [
        f"The Machines API refused {f['count']} of {f['function']}'s creates between {_when(f['first'])} and "
        f"{_when(f['last'])} (HTTP {f['statuses']}): {root.title}. No machine was made, and the function answered "
        "each request with an error."
    ]
    if f.get("attempts"):
        parts.append(f"{f['attempts']} of them are still in effect: no create of the same scope has worked since.")
    return parts + _also(root) + [f"What to do: {f['action']}."]


@summary_for("SECRET_DIGEST_UNMATCHED")
def _unmatched(ctx: Context, root: Finding, found: list[Finding]) -> list[str]:
    p, release = ctx.provisioning, ctx.release
    parts = [
        f"{p.secret} was set at {_when(p.secret_updated_at)} to a value whose SHA-256 digest matches none of the "
        f"{p.tried} image references vyxops knows (release images, :latest, the images machines and rows used, "
        "those in the logs): what provisioning uses since then cannot be read back."
    ]
    rej = next((x for x in found if x.code == "MACHINE_CREATE_REJECTED"), None)
    if rej is not None:
        r = rej.facts
        kinds = "; ".join(f"{KIND_SAYS[k]} ({n})" for k, n in r.get("kinds", {}).items())
        parts.append(
            f"Since then the Machines API refused {r['count']} create(s) between {_when(r['first'])} and "
            f"{_when(r['last'])} ({kinds}): no machine was made."
        )
    failed = next((x for x in found if x.code == "PROVISIONING_REQUEST_FAILED"), None)
    if failed is not None:
        parts.append(f"{failed.facts['function']} failed {failed.facts['count']} request(s) without saying why.")
    if release is not None:
        parts.append(
            f"What to do: set {p.secret} to release v{release.version}'s image {release.image} "
            "(PIN_SECRET_TO_RELEASE), then verify provisioning."
        )
    return parts


@summary_for("PROVISIONING_REQUEST_FAILED")
def _request_failed(ctx: Context, root: Finding, found: list[Finding]) -> list[str]:
    f = root.facts
    parts = [
        f"{f['function']} answered {f['statuses']} to {f['count']} provisioning request(s) between "
        f"{_when(f['first'])} and {_when(f['last'])}, and no log line of those invocations says what Fly answered: "
        "each invocation's status is in function_edge_logs whatever the function logged."
    ]
    if f.get("last_ok") is not None:
        parts.append(f"The last request it answered with 2xx before them was at {_when(f['last_ok'])}.")
    return parts + [f"What to do: {f['action']}."]


@summary_for("IMAGE_SECRET_UNSET")
def _secret_unset(ctx: Context, root: Finding, found: list[Finding]) -> list[str]:
    f = root.facts
    parts = [
        f"{f['secret']} is not among the project's secrets and {f['function']} has no fallback image, so every "
        "request fails before the function asks Fly for a machine."
    ]
    failed = next((x for x in found if x.code == "PROVISIONING_REQUEST_FAILED"), None)
    if failed is not None:
        g = failed.facts
        parts.append(
            f"{f['function']} answered {g['statuses']} to {g['count']} request(s) between {_when(g['first'])} and "
            f"{_when(g['last'])}" + (f"; the last that worked was at {_when(g['last_ok'])}." if g.get("last_ok")
                                      is not None else ".")
        )  # fmt: skip
    if f.get("changed") is not None:
        parts.append(f"Its version changed at {_when(f['changed'])}, as every secret write (or a deploy) makes it.")
    return parts + [f"What to do: {f['action']}."]


def _also(root: Finding) -> list[str]:
    """The other causes in effect beside the root (SPEC.md: the summary names the other)."""
    also: list[Finding] = root.facts.get("also") or []
    return [f"Also in effect: {f.title}." for f in also]


def summarize(ctx: Context, root: Finding | None, found: list[Finding], gaps: list[Gap], tz: str = "UTC") -> str:
    """One paragraph: the chain (secret → image → machine → exit/destroy → DB row), times in ``tz``; or the verdict."""
    _TZ[0] = tz
    try:
        if root is None:
            return _no_root(ctx, found, gaps)
        tell = SUMMARIES.get(root.code)
        parts = tell(ctx, root, found) if tell else [root.title + "."]
        parts += _latent(root, found)
        if gaps:
            parts.append("Incomplete evidence: " + "; ".join(g.why for g in gaps) + ".")
        return " ".join(p for p in parts if p)
    finally:
        _TZ[0] = "UTC"


def _latent(root: Finding, found: list[Finding]) -> list[str]:
    """Causes in effect that did not cause what happened, said as what comes next."""
    out = []
    for f in found:
        if f is not root and f.code in ("IMAGE_TAG_MISSING", "LATEST_TAG_MISSING"):
            out.append(
                f"Now, {f.facts['ref']} does not resolve: the next provisioning will be refused — that did not "
                "cause the failure above, whose create was accepted."
            )
    return out


def _no_root(ctx: Context, found: list[Finding], gaps: list[Gap]) -> str:
    history = [f for f in found if f.symptom and not f.current]
    parts = []
    if any(g.decides for g in gaps):
        target, scenario = target_of_label(ctx.e.target)
        probe = vyxops_command("investigate", ctx.app, target, scenario, f"out/{ctx.app}-probe", "--probe")
        parts.append(
            "No failure was seen, but the evidence is incomplete: " + "; ".join(g.why for g in gaps) + ". "
            "An outage may be hiding there. To see provisioning work now, run a provisioning probe "
            f"(a canary machine, logged and cleaned up after): `{probe}`."
        )
    else:
        parts.append("Nothing critical: provisioning works as far as the evidence shows.")
        parts += [f"(Not deciding: {g.why}.)" for g in gaps]
    if history:
        parts.append(f"{len(history)} earlier failure(s) are history: " + "; ".join(f.title for f in history[:3]) + ".")
    leftovers = [f for f in found if f.symptom and f.current and f.severity == "warning"]
    if leftovers:
        parts.append(
            "Left behind: " + "; ".join(f.title for f in leftovers[:3]) + " (reconcile with RECONCILE_STUCK_ROWS)."
        )
    return " ".join(parts)


def verdict(root: Finding | None, gaps: list[Gap]) -> str:
    """``root_cause`` when one is named; ``healthy`` only on complete evidence from the sources that decide health
    (a gap in Fly's app logs, which only corroborate, does not stop it); else ``inconclusive``."""
    if root is not None:
        return "root_cause"
    return "inconclusive" if any(g.decides for g in gaps) else "healthy"


def findings_document(
    ctx: Context, root: Finding | None, found: list[Finding], summary: str, gaps: list[Gap]
) -> dict[str, Any]:
    """``findings.json`` (schema vyxops.findings/1)."""
    e = ctx.e
    return {
        "schema": FINDINGS_SCHEMA,
        "target": e.target,
        "app": e.app,
        "generated_at": iso(e.now),
        "window": {"since": iso(e.since), "until": iso(e.until)},
        "verdict": verdict(root, gaps),
        "complete": not any(g.decides for g in gaps),
        "gaps": [g.as_json() for g in gaps],
        "root_cause": None if root is None else {"code": root.code, "summary": summary},
        "summary": summary,
        "findings": [f.as_json() for f in found],
    }

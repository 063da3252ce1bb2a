"""TAG_LATEST: retag the current release's image as ``:latest`` (the manifest's bytes, PUT unchanged)."""

from __future__ import annotations

import shlex
from typing import Any

from vyxops.act.fixes.context import ApplyContext, PlanContext
from vyxops.act.fixes.model import Action, Outcome
from vyxops.act.fixes.pin_secret import plan_image_fix, release_problem
from vyxops.act.fixes.reads import check_release
from vyxops.act.fixes.registry import Fix, Place, register
from vyxops.act.fixes.steps import outcome_of, run_write
from vyxops.act.fixes.values import short
from vyxops.core.errors import PreconditionError
from vyxops.core.images import parse_image_ref

CODE = "TAG_LATEST"


def plan(ctx: PlanContext) -> list[Action]:
    return plan_image_fix(ctx, CODE, _plan)


def _plan(f: dict[str, Any], why: str) -> Action | str:
    if not f["latest_ref"]:
        return "not planned: the function has no fallback image to tag (the contract's image_fallback is empty)"
    problem = release_problem(f)
    if problem:
        return problem
    if not f["release_digest"]:
        return "not planned: the release image's digest is unknown"
    v, digest = f["release_version"], f["release_digest"]
    if f["latest_digest"] == digest:
        return f"already done: {f['latest_ref']} is already release v{v}'s image ({short(digest)})"
    read = {k: f[k] for k in ("latest_ref", "latest_digest", "release_version", "release_image", "release_digest")}
    was = short(f["latest_digest"]) if f["latest_digest"] else "missing"
    return Action(
        code=CODE,
        target=f"image:{f['latest_ref']}",
        current=short(f["latest_digest"]) if f["latest_digest"] else "missing (MANIFEST_UNKNOWN)",
        new=f"{short(digest)} = {f['release_image']} (release v{v})",
        precondition=f":latest still {was}; release v{v} still current with digest {short(digest)}",
        risk=(
            "medium: anything pulling :latest gets the release's image; a pruned tag breaks it again "
            "(pinning is sturdier)"
        ),
        reason=why,
        read=read,
        desired={"ref": f["latest_ref"], "digest": digest},
    )


def apply(ctx: ApplyContext, a: Action) -> Outcome:
    s = ctx.session
    rel = check_release(s, ctx.app, a.read)
    latest = s.fly.head_manifest(a.read["latest_ref"])
    before = {"digest": latest["digest"] if latest["exists"] else None}
    if latest["exists"] and latest["digest"] == rel["digest"]:
        why = f"already done: :latest is already release v{rel['version']}'s image ({short(rel['digest'])})"
        return Outcome(a.code, a.target, "skipped", why, before, a.desired)
    if before["digest"] != a.read["latest_digest"]:
        now = short(before["digest"]) if before["digest"] else "missing"
        planned = short(a.read["latest_digest"]) if a.read["latest_digest"] else "missing"
        raise PreconditionError(f":latest changed since planning: {now}, planned from {planned}; re-plan")
    body, media_type, digest = s.fly.get_manifest(a.read["release_image"])
    if digest and digest != rel["digest"]:
        raise PreconditionError(f"{a.read['release_image']} changed while reading it ({short(digest)}); re-plan")
    repo = parse_image_ref(a.read["latest_ref"]).repository

    def confirm() -> tuple[bool, dict[str, Any]]:
        check = s.fly.head_manifest(a.read["latest_ref"])
        got = check["digest"] if check["exists"] else None
        return got == rel["digest"], {"digest": got}

    step = run_write(
        ctx.log,
        a.code,
        "put_manifest",
        a.target,
        write=lambda: s.fly.put_manifest(repo, "latest", body, media_type),
        confirm=confirm,
        done=f":latest now resolves to release v{rel['version']}'s image ({short(rel['digest'])})",
        before=before,
        planned=a.desired,
    )
    return outcome_of(step, a.code, a.target, before)


def native(a: Action, place: Place) -> list[str]:
    image = shlex.quote(str(a.read["release_image"]))
    return [f"fly auth docker && crane tag {image} latest"]


def dashboard(a: Action, place: Place) -> list[str]:
    return [place.fly()]


FIX = register(
    Fix(
        code=CODE,
        order=30,
        description="retag the current release's image as :latest (with --strategy latest)",
        plan=plan,
        apply=apply,
        native=native,
        dashboard=dashboard,
    )
)

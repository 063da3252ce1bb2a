"""UNSET_SECRET: delete the image secret (by name, never every secret) once the fallback is the release's image."""

from __future__ import annotations

import shlex
from typing import Any

from vyxops.act.fixes.context import ApplyContext, PlanContext
from vyxops.act.fixes.model import Action, Outcome, cold_start_warning
from vyxops.act.fixes.pin_secret import plan_image_fix, release_problem, secret_text
from vyxops.act.fixes.reads import check_release, secret_now
from vyxops.act.fixes.registry import Fix, Place, register
from vyxops.act.fixes.steps import outcome_of, run_write
from vyxops.act.fixes.values import short
from vyxops.core.errors import PreconditionError

CODE = "UNSET_SECRET"


def plan(ctx: PlanContext) -> list[Action]:
    return plan_image_fix(ctx, CODE, _plan)


def _plan(f: dict[str, Any], why: str) -> Action | str:
    name = f["secret_name"]
    if f["secret_digest"] is None:
        return f"already done: {name} is not set"
    if not f["latest_ref"]:
        return "not planned: the function has no fallback image; unsetting the secret would stop provisioning"
    problem = release_problem(f)
    if problem:
        return problem
    keys = ("secret_name", "secret_digest", "secret_ref", "latest_ref", "release_version", "release_image",
            "release_digest")  # fmt: skip
    v = f["release_version"]
    return Action(
        code=CODE,
        target=f"secret:{name}",
        current=secret_text(f["secret_digest"], f["secret_ref"]),
        new=f"unset: provisioning uses {f['latest_ref']}",
        precondition=(
            f"{name} digest still {short(f['secret_digest'])}; {f['latest_ref']} resolves to release v{v}'s "
            f"digest {short(f['release_digest'])}"
        ),
        risk=f"medium: provisioning then depends on {f['latest_ref']}; only {name} is deleted, never another secret",
        reason=why,
        read={k: f[k] for k in keys},
        warnings=[cold_start_warning(f["function_count"])],
        desired={"name": name, "set": False, "falls_back_to": f["latest_ref"]},
    )


def apply(ctx: ApplyContext, a: Action) -> Outcome:
    s = ctx.session
    name = a.desired["name"]
    digest = secret_now(s, name)
    before = {"digest": digest, "ref": a.read.get("secret_ref") if digest == a.read["secret_digest"] else None}
    if digest is None:
        return Outcome(a.code, a.target, "skipped", f"already done: {name} is not set", before, a.desired)
    if digest != a.read["secret_digest"]:
        raise PreconditionError(
            f"{name} changed since planning: digest {short(digest)}, planned from "
            f"{short(a.read['secret_digest'])}; re-plan"
        )
    rel = check_release(s, ctx.app, a.read)
    latest = s.fly.head_manifest(a.read["latest_ref"])
    if not latest["exists"] or latest["digest"] != rel["digest"]:
        now = short(latest["digest"]) if latest["exists"] else "missing"
        raise PreconditionError(
            f"not unset: {a.read['latest_ref']} is {now}, not release v{rel['version']}'s image "
            f"{short(rel['digest'])}; unsetting would make provisioning fall back to it (apply TAG_LATEST first)"
        )

    def confirm() -> tuple[bool, dict[str, Any]]:
        got = secret_now(s, name)
        return got is None, {"digest": got, "set": got is not None}

    step = run_write(
        ctx.log,
        a.code,
        "delete_secret",
        a.target,
        # by name: never an empty list, which would mean every secret
        write=lambda: s.supabase.delete_secrets([name]),
        confirm=confirm,
        done=f"{name} unset: provisioning uses {a.read['latest_ref']} = release v{rel['version']}",
        before=before,
        planned=a.desired,
    )
    return outcome_of(step, a.code, a.target, before)


def native(a: Action, place: Place) -> list[str]:
    return [f"supabase secrets unset {shlex.quote(str(a.desired['name']))} --project-ref {place.ref_arg}"]


def dashboard(a: Action, place: Place) -> list[str]:
    return [place.supabase("functions/secrets")]


FIX = register(
    Fix(
        code=CODE,
        order=40,
        description="delete the image secret by name, so provisioning uses its fallback, :latest (--strategy latest, "
        "after TAG_LATEST)",
        plan=plan,
        apply=apply,
        native=native,
        dashboard=dashboard,
    )
)

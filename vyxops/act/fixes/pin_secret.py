"""PIN_SECRET_TO_RELEASE: set the image secret (the contract's) to the current release's image, by tag or digest."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from vyxops.act.fixes.context import ApplyContext, PlanContext
from vyxops.act.fixes.model import Action, Outcome, cold_start_warning
from vyxops.act.fixes.reads import check_release, secret_now
from vyxops.act.fixes.registry import Fix, Place, register
from vyxops.act.fixes.steps import outcome_of, run_write
from vyxops.act.fixes.values import short
from vyxops.core.errors import PreconditionError
from vyxops.core.images import parse_image_ref, secret_digest, tag_or_ref

CODE = "PIN_SECRET_TO_RELEASE"


def release_problem(f: dict[str, Any]) -> str | None:
    """Why the current release's image cannot be pointed at, or None."""
    if f["release_version"] is None or not f["release_image"]:
        return "not planned: the app has no current release with an image to point at"
    if f["release_exists"] is False:
        return (
            f"not planned: release v{f['release_version']}'s image {f['release_image']} does not resolve in the "
            "registry (pruned?); fixing to it would make every create fail"
        )
    return None


def secret_text(digest: str | None, ref: str | None, fallback: str | None = None) -> str:
    """What the image secret holds, as a person reads it."""
    if digest is None:
        return (
            f"unset (provisioning falls back to {tag_or_ref(fallback)})"
            if fallback
            else "unset (the function cannot provision)"
        )
    return f"{ref} ({short(digest)})" if ref else f"digest {short(digest)} (matches no known image)"


def plan_image_fix(ctx: PlanContext, code: str, make: Callable[[dict[str, Any], str], Action | str]) -> list[Action]:
    """The shared rule of the image fixes: planned when the findings (or --fix) choose it, never for a failing release.

    When nothing asks for an image fix, the strategy's own fix still says in the notes
    whether it holds, so a second apply reports each fix as done instead of nothing.
    """
    why = ctx.image_choice(code)
    if why is None:
        return []
    if not ctx.facts["secret_name"] and code != "TAG_LATEST":
        ctx.note(code, "not planned: the function reads no image secret (the contract's image_secret is empty)")
        return []
    failing = ctx.release_fails()
    if failing:
        ctx.note(code, f"not planned: release v{ctx.facts['release_version']}'s own image fails ({failing})")
        return []
    made = make(ctx.facts, why)
    if isinstance(made, str):
        ctx.note(code, made)
        return []
    if not why:
        ctx.note(code, "not planned: no finding asks for it")
        return []
    return [made]


def plan(ctx: PlanContext) -> list[Action]:
    return plan_image_fix(ctx, CODE, lambda f, why: _plan(f, ctx.strategy, why))


def _plan(f: dict[str, Any], strategy: str, why: str) -> Action | str:
    problem = release_problem(f)
    if problem:
        return problem
    rel = parse_image_ref(f["release_image"])
    if strategy == "pin-digest":
        if not f["release_digest"]:
            return "not planned: the release image's digest is unknown, so it cannot be pinned by digest"
        ref = f"{rel.registry}/{rel.repository}@{f['release_digest']}"
    else:
        ref = f["release_image"]
    if f["secret_digest"] == secret_digest(ref):
        return f"already done: {f['secret_name']} already points at {ref}"
    keys = ("secret_name", "secret_digest", "secret_ref", "release_version", "release_image", "release_digest")
    read = {k: f[k] for k in keys}
    name = f["secret_name"]
    was = short(f["secret_digest"]) if f["secret_digest"] else "unset"
    return Action(
        code=CODE,
        target=f"secret:{name}",
        current=secret_text(f["secret_digest"], f["secret_ref"], f["latest_ref"]),
        new=f"{ref} (release v{f['release_version']}, {f['release_said']}, {short(secret_digest(ref))})",
        precondition=(
            f"{name} digest still {was}; release v{f['release_version']} still current; its image still resolves"
        ),
        risk="low: the next provisioning uses the release's image; undo by setting the old value again",
        reason=why,
        read=read,
        warnings=[cold_start_warning(f["function_count"])],
        desired={"name": name, "ref": ref, "digest": secret_digest(ref)},
    )


def apply(ctx: ApplyContext, a: Action) -> Outcome:
    check_release(ctx.session, ctx.app, a.read)
    return write_secret(
        ctx, a, f"{a.desired['name']} now points at {a.desired['ref']} (release v{a.read['release_version']})"
    )


def write_secret(ctx: ApplyContext, a: Action, done: str) -> Outcome:
    """Upsert the image secret = ``a.desired["ref"]`` if it still holds what was planned; judged by reading it."""
    s = ctx.session
    ref, want, name = a.desired["ref"], a.desired["digest"], a.desired["name"]
    digest = secret_now(s, name)
    before = {"digest": digest, "ref": a.read.get("secret_ref") if digest == a.read["secret_digest"] else None}
    if digest == want:
        return Outcome(a.code, a.target, "skipped", f"already done: {name} already points at {ref}", before, a.desired)
    if digest != a.read["secret_digest"]:
        now, planned = (
            short(digest) if digest else "unset",
            short(a.read["secret_digest"]) if a.read["secret_digest"] else "unset",
        )
        raise PreconditionError(f"{name} changed since planning: digest {now}, planned from {planned}; re-plan")

    def confirm() -> tuple[bool, dict[str, Any]]:
        got = secret_now(s, name)
        return got == want, {"digest": got, "ref": ref if got == want else None}

    step = run_write(
        ctx.log,
        a.code,
        "set_secret",
        a.target,
        write=lambda: s.supabase.set_secrets([{"name": name, "value": ref}]),
        confirm=confirm,
        done=done,
        before=before,
        planned=a.desired,
    )
    return outcome_of(step, a.code, a.target, before)


def native(a: Action, place: Place) -> list[str]:
    value = shlex.quote(f"{a.desired['name']}={a.desired['ref']}")
    return [f"supabase secrets set {value} --project-ref {place.ref_arg}"]


def dashboard(a: Action, place: Place) -> list[str]:
    return [place.supabase("functions/secrets")]


FIX = register(
    Fix(
        code=CODE,
        order=20,
        description="set the image secret to the current release's image (by tag, or by digest with --strategy "
        "pin-digest)",
        plan=plan,
        apply=apply,
        native=native,
        dashboard=dashboard,
    )
)

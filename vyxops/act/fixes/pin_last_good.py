"""PIN_SECRET_TO_LAST_GOOD_RELEASE: when the current release's own image fails, point the image secret at the
image of the last release whose machines served (issue 12 §8), so no canary and no user runs the failing image.
"""

from __future__ import annotations

import shlex
from typing import Any

from vyxops.act.fixes.context import ApplyContext, PlanContext
from vyxops.act.fixes.model import Action, Outcome, cold_start_warning
from vyxops.act.fixes.pin_secret import secret_text, write_secret
from vyxops.act.fixes.reads import current_release
from vyxops.act.fixes.registry import Fix, Place, register
from vyxops.act.fixes.values import short
from vyxops.analysis.advice.served import SERVED_AFTER, ReleaseRecord
from vyxops.core.errors import PreconditionError
from vyxops.core.images import parse_image_ref, secret_digest

CODE = "PIN_SECRET_TO_LAST_GOOD_RELEASE"


def plan(ctx: PlanContext) -> list[Action]:
    if not ctx.allowed(CODE):
        return []
    failing = ctx.release_fails()
    cur = ctx.health.current
    if not failing or cur is None:
        if CODE in ctx.wanted:
            ctx.note(CODE, "not planned: the current release's own image is not known to fail")
        return []
    if not ctx.facts["secret_name"]:
        ctx.note(CODE, "not planned: the function reads no image secret to pin (the contract's image_secret is empty)")
        return []
    good, passed_over = ctx.health.last_good()
    for text in passed_over:
        ctx.note(CODE, text)
    if good is None:
        minutes = int(SERVED_AFTER.total_seconds() // 60)
        ctx.note(
            CODE,
            f"not planned: release v{cur.version}'s own image fails ({failing}), and no earlier release's machines "
            f"served (none reached started with its row running, or ran {minutes} min without exiting); "
            "deploy a fixed image. No canary is planned: it would fail the same way",
        )
        return []
    ref = good.image
    if ctx.strategy == "pin-digest" and good.digest:
        r = parse_image_ref(good.image)
        ref = f"{r.registry}/{r.repository}@{good.digest}"
    if ctx.facts["secret_digest"] == secret_digest(ref):
        name = ctx.facts["secret_name"]
        ctx.note(CODE, f"already done: {name} already points at {ref} (release v{good.version}, which served)")
        return []
    return [_action(ctx.facts, cur, good, ref, failing)]


def _action(f: dict[str, Any], cur: ReleaseRecord, good: ReleaseRecord, ref: str, failing: str) -> Action:
    was = short(f["secret_digest"]) if f["secret_digest"] else "unset"
    name = f["secret_name"]
    return Action(
        code=CODE,
        target=f"secret:{name}",
        current=secret_text(f["secret_digest"], f["secret_ref"], f["latest_ref"]),
        new=f"{ref} (release v{good.version}, the last release whose machines served)",
        precondition=(
            f"{name} digest still {was}; release v{cur.version} still current; release v{good.version}'s "
            f"image still resolves to {short(good.digest)}"
        ),
        risk=(
            f"medium: new sessions run release v{good.version}'s older code until a fixed release is deployed; "
            f"undo by setting {name} again"
        ),
        reason=f"release v{cur.version}'s own image fails ({failing}); release v{good.version} served: "
        + "; ".join(good.served[:2]),
        read={
            "secret_digest": f["secret_digest"],
            "secret_ref": f["secret_ref"],
            "release_version": cur.version,
            "release_image": cur.image,
            "good_version": good.version,
            "good_image": good.image,
            "good_digest": good.digest,
            "served": good.served[:3],
        },
        warnings=[cold_start_warning(f["function_count"])],
        desired={"name": name, "ref": ref, "digest": secret_digest(ref)},
    )


def apply(ctx: ApplyContext, a: Action) -> Outcome:
    s, r = ctx.session, a.read
    rel = current_release(s, ctx.app)
    if rel is None or rel.get("version") != r["release_version"]:
        now = "no complete release" if rel is None else f"v{rel.get('version')} ({rel.get('imageRef')})"
        raise PreconditionError(
            f"release moved since planning: {now} is current now, the plan was made while v{r['release_version']} "
            "failed; re-plan (the new release may serve)"
        )
    head = s.fly.head_manifest(r["good_image"])
    if not head["exists"] or (r["good_digest"] and head["digest"] != r["good_digest"]):
        now = short(head["digest"]) if head["exists"] else "missing"
        raise PreconditionError(
            f"release v{r['good_version']}'s image {r['good_image']} is {now} now, "
            f"planned {short(r['good_digest'])}; re-plan"
        )
    done = f"{a.desired['name']} now points at {a.desired['ref']} (release v{r['good_version']}, which served)"
    return write_secret(ctx, a, done)


def native(a: Action, place: Place) -> list[str]:
    value = shlex.quote(f"{a.desired['name']}={a.desired['ref']}")
    return [f"supabase secrets set {value} --project-ref {place.ref_arg}"]


def dashboard(a: Action, place: Place) -> list[str]:
    return [place.supabase("functions/secrets"), place.fly("machines")]


FIX = register(
    Fix(
        code=CODE,
        order=10,
        description="the current release's own image fails: set the image secret to the last release whose "
        "machines served",
        plan=plan,
        apply=apply,
        native=native,
        dashboard=dashboard,
    )
)

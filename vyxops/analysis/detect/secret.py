"""The secret link: what the image secret (or the fallback, ``:latest`` by default, when it is unset) points at."""

from __future__ import annotations

import shlex

import pandas as pd

from vyxops.analysis.detect.context import Context, Provisioning, Release
from vyxops.analysis.detect.model import Finding, Link, ev, is_machine_failure, register
from vyxops.analysis.detect.requests import unexplained_since
from vyxops.core.coverage import Gap


def _used_since(cause: Finding, symptom: Finding) -> bool:
    since = cause.at
    return since is None or symptom.at is None or pd.isna(since) or symptom.at >= since


def _secret_explains(cause: Finding, symptom: Finding) -> bool:
    """A machine failure on the image the secret points at, since the secret was set, is the secret's doing; so are,
    when its digest matches no image vyxops knows, the creates refused as a missing image or a bad config (400/422)
    and the requests failed unread since it changed: the value provisioning uses since then is unknown."""
    if cause.code == "SECRET_DIGEST_UNMATCHED":
        return _unknown_value_explains(cause, symptom)
    if not is_machine_failure(symptom.code) or not _used_since(cause, symptom):
        return False
    f, s = cause.facts, symptom.facts
    return s.get("image") == f["ref"] or (f.get("image_id") is not None and s.get("image_id") == f["image_id"])


def _unknown_value_explains(cause: Finding, symptom: Finding) -> bool:
    since = cause.at
    if symptom.code == "PROVISIONING_REQUEST_FAILED":
        return since is not None and unexplained_since(symptom, since)
    if symptom.code != "MACHINE_CREATE_REJECTED" or since is None or pd.isna(since):
        return False
    return any(kind in ("image", "config") and now and at >= since for at, kind, _, _, now in symptom.facts["refused"])


@register("SECRET_IMAGE_NOT_CURRENT_RELEASE", "SECRET_DIGEST_UNMATCHED", link=Link.SECRET, explains=_secret_explains)
def detect_secret(ctx: Context) -> list[Finding]:
    """The image secret's digest against the current release's image (SPEC.md: found by hashing candidates)."""
    p, release = ctx.provisioning, ctx.release
    if not p.secret_set:
        return []
    if p.ref is None:
        return [_digest_unmatched(ctx)]
    if release is None or release.same_image(p.ref, p.digest) or ctx.missing(p.ref):
        return []  # the release's own image (by tag or digest), or missing: IMAGE_TAG_MISSING speaks for it
    return [_secret_not_current_release(ctx, p, release)]


def _digest_unmatched(ctx: Context) -> Finding:
    """SECRET_DIGEST_UNMATCHED, and the gap it leaves: no known reference hashes to the secret's digest."""
    p = ctx.provisioning
    ctx.gaps.append(
        Gap(
            "supabase.secrets",
            f"{p.secret}'s digest matches none of {p.tried} known image references, so what "
            "provisioning uses cannot be told (the references it could match may have aged out of the logs)",
        )
    )
    detail = (
        f"{p.secret} digest {str(p.secret_digest)[:16]}… matches none of {p.tried} candidate "
        "references (release images, :latest, machine configs, DB rows, logs)"
    )
    return Finding(
        "SECRET_DIGEST_UNMATCHED",
        "warning",
        f"{p.secret} matches no known image reference",
        f"secret:{p.secret}",
        [ev("supabase.secrets", p.secret_updated_at, detail)],
        ["PIN_SECRET_TO_RELEASE"],
        {"digest": p.secret_digest},
        at=p.secret_updated_at,
    )


def _secret_not_current_release(ctx: Context, p: Provisioning, release: Release) -> Finding:
    """SECRET_IMAGE_NOT_CURRENT_RELEASE: the secret names ``p.ref``, another image than the release's."""
    evidence = [
        ev(
            "supabase.secrets",
            p.secret_updated_at,
            f"{p.secret} digest {str(p.secret_digest)[:16]}… = sha256({p.ref!r})",
        ),
        ev(
            "fly.releases",
            release.created_at,
            f"current release v{release.version} runs {release.image}" + (f"; {release.said}" if release.said else ""),
        ),
    ]
    if p.exists:
        evidence.append(ev("fly.registry", None, f"HEAD {p.ref} → 200, {p.digest}: the tag exists"))
    elif p.check:
        evidence.append(ev("fly.registry", None, f"HEAD {p.ref} → {p.check}: could not check that it exists"))
    return Finding(
        "SECRET_IMAGE_NOT_CURRENT_RELEASE",
        "warning",
        f"{p.secret} points at {p.ref}, not release v{release.version}'s image",
        f"secret:{p.secret}",
        evidence,
        ["PIN_SECRET_TO_RELEASE", "VERIFY_PROVISIONING"],
        {
            "ref": p.ref,
            "digest": p.digest,
            "image_id": ctx.identity.of(p.digest),  # an index stands for its platform child (images.ImageIdentity)
            "releases": ctx.releases_of(p.ref, p.digest),  # earlier releases that ran it (a rollback's)
            "exists": p.exists,
            "release_image": release.image,
            "release_version": release.version,
            "updated_at": p.secret_updated_at,
            "release_created_at": release.created_at,
        },
        at=p.secret_updated_at,
    )


def _latest_explains(cause: Finding, symptom: Finding) -> bool:
    """A machine failure on :latest while it named another image than the release is the tag's doing."""
    if not is_machine_failure(symptom.code):
        return False
    s = symptom.facts
    return bool(s.get("image") == cause.facts["ref"] and s.get("image_id") != cause.facts["release_id"])


@register("LATEST_TAG_STALE", link=Link.SECRET, explains=_latest_explains)
def detect_latest_stale(ctx: Context) -> list[Finding]:
    """``:latest`` is not the current release's image while provisioning relies on it."""
    p, release = ctx.provisioning, ctx.release
    if release is None or not p.uses_latest or not p.exists or release.digest is None:
        return []
    if ctx.identity.same(p.digest, release.digest):
        return []
    latest = ctx.latest_ref
    how = "the secret is unset, so provisioning uses it" if not p.secret_set else f"{p.secret} names it"
    return [
        Finding(
            "LATEST_TAG_STALE",
            "warning",
            f":latest is not release v{release.version}'s image ({how})",
            f"image:{latest}",
            [
                ev("fly.registry", None, f"{latest} → {p.digest}"),
                ev("fly.releases", release.created_at, f"v{release.version} {release.image} → {release.digest}"),
            ],
            ["TAG_LATEST"],
            {
                "ref": latest,
                "digest": p.digest,
                "release_digest": release.digest,
                "release_id": ctx.identity.of(release.digest),
                "releases": ctx.releases_of(None, p.digest),  # the releases that ran what :latest names now
                "release_version": release.version,
                "release_image": release.image,
                "secret_set": p.secret_set,
            },
        )
    ]


def _unset_explains(cause: Finding, symptom: Finding) -> bool:
    """With no image to use, the function fails every request before it asks Fly: the failed requests are its doing."""
    return unexplained_since(symptom, None)


@register("IMAGE_SECRET_UNSET", link=Link.SECRET, explains=_unset_explains, certain=True)
def detect_image_secret_unset(ctx: Context) -> list[Finding]:
    """The contract's image secret is unset and the function has no fallback image: it cannot provision."""
    p = ctx.provisioning
    if not p.cannot_provision:
        return []
    fn = ctx.e.contract.function
    evidence = [ev("supabase.secrets", None, f"{p.secret} is not among the project's secrets")]
    evidence.append(ev("pipeline", None, f"{fn} has no fallback image (the contract's image_fallback is empty)"))
    changed = _function_changed(ctx)
    if changed is not None:
        evidence.append(ev("supabase.functions", changed, f"{fn}'s version changed: a deploy, or a secret write "
                                                          "(every secret write restarts every function)"))  # fmt: skip
    release = ctx.release
    target = f"release v{release.version}'s image {release.image}" if release is not None else "the app's image"
    return [
        Finding(
            "IMAGE_SECRET_UNSET",
            "critical",
            f"{p.secret} is not set and {fn} has no fallback: it cannot provision",
            f"secret:{p.secret}",
            evidence,
            ["PIN_SECRET_TO_RELEASE", "VERIFY_PROVISIONING"],
            {"secret": p.secret, "function": fn, "changed": changed, "target": target,
             "action": f"set {p.secret} to {target}: `supabase secrets set {shlex.quote(p.secret)}=… "
                       f"--project-ref {ctx.e.project_ref or '<project-ref>'}` (PIN_SECRET_TO_RELEASE does it)"},
            at=changed,
        )
    ]  # fmt: skip


def _function_changed(ctx: Context) -> pd.Timestamp | None:
    """When the provisioning function's current version began (its ``updated_at``), or None."""
    fns = ctx.e.functions[ctx.e.functions["slug"] == ctx.e.contract.function]
    if fns.empty or pd.isna(fns.iloc[0]["updated_at"]):
        return None
    at: pd.Timestamp = fns.iloc[0]["updated_at"]
    return at if ctx.e.since <= at <= ctx.as_of else None  # an old deploy says nothing of this window

"""The image link: the reference provisioning uses does not resolve in the registry."""

from __future__ import annotations

import pandas as pd

from vyxops.analysis.detect.context import Context
from vyxops.analysis.detect.model import Finding, Link, ev, register
from vyxops.analysis.detect.requests import unexplained_since
from vyxops.core.images import tag_or_ref
from vyxops.core.present import fmt_time


def _refusals_explained(cause: Finding, symptom: Finding) -> bool:
    """Refused creates that name the missing reference are its doing (the Machines API checks at create), and so
    are refusals of the image or config class that name no image once provisioning used it, and requests the
    function failed without saying why since then: every provisioning fails while the image does not resolve."""
    if symptom.code == "PROVISIONING_REQUEST_FAILED":
        return unexplained_since(symptom, cause.at)
    if symptom.code != "MACHINE_CREATE_REJECTED":
        return False
    since, missing = cause.at, cause.facts["ref"]
    # Only what Fly refused for the image (or its config): a create refused for the token or the region was
    # refused before the image was looked at (the platform checks token, rate, image, placement in turn).
    return any(
        kind in ("image", "config")
        and (ref == missing or (ref is None and now and (since is None or pd.isna(since) or at >= since)))
        for at, kind, ref, _, now in symptom.facts.get("refused", ())
    )


@register("IMAGE_TAG_MISSING", "LATEST_TAG_MISSING", link=Link.IMAGE, explains=_refusals_explained, certain=True)
def detect_missing_image(ctx: Context) -> list[Finding]:
    """The image provisioning uses now does not resolve: every create will be refused (400 MANIFEST_UNKNOWN)."""
    p = ctx.provisioning
    if p.ref is None or not ctx.missing(p.ref):
        return []
    refused = ctx.refused(p.ref)
    said = f"HEAD {p.ref} → {p.check}" if p.exists is False else f"HEAD {p.ref} → {p.check or 'not checked'}"
    evidence = [ev("fly.registry", None, said)]
    if p.secret_set:
        detail = f"{p.secret} digest {str(p.secret_digest)[:16]}… = sha256({p.ref!r})"
        evidence.insert(0, ev("supabase.secrets", p.secret_updated_at, detail))
    else:
        fallback = tag_or_ref(str(p.fallback))
        fn = ctx.e.contract.function
        detail = f"{p.secret} is not set: {fn} falls back to {fallback}" if p.secret else f"{fn} uses {p.fallback}"
        evidence.insert(0, ev("supabase.secrets", None, detail))
    evidence += [ev("supabase.function_logs", r.time, str(r.message)[:240]) for r in refused.head(3).itertuples()]
    latest = p.ref == ctx.latest_ref
    if latest and not p.secret_set:
        ran = ctx.ledger[ctx.ledger["image_tag"] == "latest"]
        how = "was pruned (machines ran it before)" if not ran.empty else "was never tagged or was pruned"
        return [
            Finding(
                "LATEST_TAG_MISSING",
                "critical",
                f"{p.ref} does not exist: it {how}",
                f"image:{p.ref}",
                evidence,
                ["TAG_LATEST", "PIN_SECRET_TO_RELEASE", "VERIFY_PROVISIONING"],
                {"ref": p.ref, "how": how, "secret_set": p.secret_set, "rejections": len(refused)},
            )
        ]
    since = f" since {fmt_time(p.secret_updated_at, ctx.tz)}" if p.secret_updated_at is not None else ""
    return [
        Finding(
            "IMAGE_TAG_MISSING",
            "critical",
            f"{p.ref} does not resolve in the registry",
            f"image:{p.ref}",
            evidence,
            ["PIN_SECRET_TO_RELEASE", "VERIFY_PROVISIONING"],
            {
                "ref": p.ref,
                "updated_at": p.secret_updated_at,
                "rejections": len(refused),
                "since": since,
                "from_refusals": p.exists is None,
            },
            at=p.secret_updated_at,
        )
    ]

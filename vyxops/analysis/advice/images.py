"""The image provisioning should use is the current release's, and that image no longer resolves: no secret or
tag can be pointed at it, so the release is rebuilt (``fly deploy`` builds, pushes and releases;
fly.io/docs/blueprints/rollback-guide: redeploying an image "works as long as the image is still in the Fly
registry")."""

from __future__ import annotations

from vyxops.analysis.advice.model import NextStep, Situation, register, release_said

IMAGE_ROOTS = (
    "SECRET_IMAGE_NOT_CURRENT_RELEASE",
    "SECRET_DIGEST_UNMATCHED",
    "IMAGE_TAG_MISSING",
    "LATEST_TAG_MISSING",
    "LATEST_TAG_STALE",
    "IMAGE_SECRET_UNSET",
)


@register(
    "REDEPLOY_PRUNED_RELEASE",
    "the current release's image no longer resolves, so no image fix can point at it: deploy the app again",
    *IMAGE_ROOTS,
)
def redeploy_pruned_release(s: Situation) -> NextStep | None:
    cur = s.health.current
    if cur is None or cur.exists is not False:
        return None
    app = s.place.app_arg
    secret = s.place.contract.image_secret
    then = (
        f"then point {secret} at the new release's image (vyxops remediate plans it)"
        if secret
        else ("then tag the new release's image as the fallback (vyxops remediate plans it)")
    )
    return NextStep(
        "REDEPLOY_PRUNED_RELEASE",
        f"Deploy {s.place.app} again from its source: {release_said(cur)} does not resolve in the registry "
        f"(pruned?), so nothing can point provisioning at it; {then}",
        (f"fly releases --app {app} --image", f"fly deploy --app {app}"),
        (s.place.fly(""),),
        (
            f"{release_said(cur)} does not resolve in the registry (HEAD answered 404)",
            f"root cause {s.root.code}: {s.root.title}",
        ),
    )

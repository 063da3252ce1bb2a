"""The create link: provisioning attempts the Machines API refused (no machine was made), and why.

Every refusal is listed under MACHINE_CREATE_REJECTED. What Fly answered says why
(:mod:`vyxops.core.refusals`); a class code speaks for the refusals of its class and is
the root when it explains them: FLY_TOKEN_REJECTED (401/403/404), PROVISIONING_RATE_LIMITED
(429) and REGION_CAPACITY (one per region); a missing image keeps its own codes
(IMAGE_TAG_MISSING, LATEST_TAG_MISSING), upstream of the create.

History per cause (SPEC.md): a refusal is over once a later create of the same scope
worked — capacity: a machine provisioned in the same region started after it; any
other class: any provisioned machine started after it; a missing image also once
provisioning uses another image.
"""

from __future__ import annotations

import bisect
from collections import Counter
from typing import cast

import pandas as pd

from vyxops.analysis.detect.context import Context
from vyxops.analysis.detect.model import Finding, Link, ev, register
from vyxops.core.present import NOT_REPORTED, fmt_time_in_text

#: What each refusal class is called in a sentence.
KIND_SAYS = {
    "token": "the function's Fly token was refused",
    "rate_limit": "rate-limited (429)",
    "image": "the image does not resolve",
    "capacity": "no capacity in the region",
    "config": "the machine's config was refused",
    "fly_error": "the Machines API failed",
}


def worked_after(ctx: Context, at: object, region: object = None) -> pd.Timestamp | None:
    """The first start of a provisioned machine that worked after ``at`` (in ``region`` when given), or None."""
    if not isinstance(at, pd.Timestamp) or pd.isna(at):
        return None
    starts, regions = ctx.success_starts(), ctx.success_regions()
    for i in range(bisect.bisect_right(starts, at), len(starts)):
        if region is None or regions[i] == region:
            return starts[i]
    return None


def refusal_current(ctx: Context) -> list[bool]:
    """For each of ``ctx.refusals``: still in effect (no later create of its scope worked, its image still used)."""
    out = []
    for at, ref, kind, region in zip(*(ctx.refusals[c].tolist() for c in ("time", "image", "kind", "region"))):
        if kind == "capacity" and not isinstance(region, str):
            out.append(True)  # a region the logs do not name: no later create is known to be in it (SPEC.md)
            continue
        scope = region if kind == "capacity" else None
        still_used = not ctx.no_longer_used(ref, None) if isinstance(ref, str) and kind == "image" else True
        out.append(worked_after(ctx, at, scope) is None and still_used)
    return out


@register("MACHINE_CREATE_REJECTED", link=Link.CREATE, symptom=True)
def detect_create_rejected(ctx: Context) -> list[Finding]:
    """MACHINE_CREATE_REJECTED: every refused create for this app's provisioning, in one finding."""
    refusals = ctx.refusals
    if refusals.empty:
        return []
    current = refusal_current(ctx)
    evidence = []
    for r in refusals.tail(5).itertuples():
        # an Int64 column: an int or NA, which pandas-stubs cannot tell from a tuple field
        code = cast(int, r.status_code)
        answered = f" (invocation answered {int(code)})" if pd.notna(code) else ""
        evidence.append(ev("supabase.function_logs", r.time, str(r.message)[:240] + answered))
    n, live = len(refusals), sum(current)
    title = f"{n} provisioning attempt(s) refused by the Machines API; no machine was made"
    resolved = None
    if not live:
        resolved = worked_after(ctx, refusals["time"].max())
    kinds = refusals["kind"].tolist()
    return [
        Finding(
            "MACHINE_CREATE_REJECTED",
            "critical",
            title,
            f"function:{ctx.e.contract.function}",
            evidence,
            ["VERIFY_PROVISIONING"],
            {
                "count": n,
                "current": live,
                "first": refusals["time"].min(),
                "last": refusals["time"].max(),
                "refs": sorted({str(x) for x in refusals["image"].dropna()}),
                "kinds": dict(Counter(kinds)),
                "refused": [
                    (at, kind, ref if isinstance(ref, str) else None, where if isinstance(where, str) else None, now)
                    for at, kind, ref, where, now in zip(
                        refusals["time"].tolist(),
                        kinds,
                        refusals["image"].tolist(),
                        refusals["region"].tolist(),
                        current,
                    )
                ],
            },
            at=refusals["time"].max(),
            current=live > 0,
            resolved_at=resolved,
        )
    ]


def when(ts: object, tz: str = "UTC") -> str:
    """A time for a finding's sentence, in ``tz`` (the investigation's --tz: ``Context.tz``)."""
    return fmt_time_in_text(ts, tz) if isinstance(ts, pd.Timestamp) else NOT_REPORTED

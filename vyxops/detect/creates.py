"""The create link: provisioning attempts the Machines API refused (no machine was made)."""

from __future__ import annotations

import pandas as pd

from vyxops.detect.context import Context
from vyxops.detect.model import Finding, Link, ev, register


def _current(ctx: Context, refusals: pd.DataFrame) -> pd.Series:
    """Refusals still in effect: no provisioning worked after them, and their image is still what it uses."""
    later_ok = ctx.successes()["start_at"]
    first_ok_after = refusals["time"].map(lambda t: later_ok[later_ok > t].min() if not later_ok.empty else pd.NaT)
    still_used = refusals["image"].map(lambda ref: not ctx.no_longer_used(ref, None) if ref else True)
    return first_ok_after.isna() & still_used


@register("MACHINE_CREATE_REJECTED", link=Link.CREATE, symptom=True)
def detect_create_rejected(ctx: Context) -> list[Finding]:
    """MACHINE_CREATE_REJECTED: every refused create for this app's provisioning, in one finding."""
    refusals = ctx.refusals
    if refusals.empty:
        return []
    current = _current(ctx, refusals)
    evidence = []
    for r in refusals.tail(5).itertuples():
        answered = f" (invocation answered {r.status_code})" if r.status_code is not None else ""
        evidence.append(ev("supabase.function_logs", r.time, str(r.message)[:240] + answered))
    n, live = len(refusals), int(current.sum())
    title = f"{n} provisioning attempt(s) refused by the Machines API; no machine was made"
    resolved = None
    if not live:
        later = ctx.successes()["start_at"]
        after = later[later > refusals["time"].max()]
        resolved = None if after.empty else after.iloc[0]
    return [
        Finding(
            "MACHINE_CREATE_REJECTED",
            "critical",
            title,
            "function:provision-machine",
            evidence,
            ["VERIFY_PROVISIONING"],
            {
                "count": n,
                "current": live,
                "first": refusals["time"].min(),
                "last": refusals["time"].max(),
                "refs": sorted({str(x) for x in refusals["image"].dropna()}),
            },
            at=refusals["time"].max(),
            current=live > 0,
            resolved_at=resolved,
        )
    ]

"""The create link: provisioning attempts the Machines API refused (no machine was made)."""

from __future__ import annotations

import pandas as pd

from vyxops.detect.context import Context
from vyxops.detect.model import Finding, Link, ev, register


def _current(ctx: Context, refusals: pd.DataFrame) -> list[bool]:
    """Refusals still in effect: no provisioning worked after them, and their image is still what it uses."""
    starts = ctx.success_starts()  # oldest first: one started after a refusal if the last did
    out = []
    for at, ref in zip(refusals["time"].tolist(), refusals["image"].tolist()):
        worked_after = bool(starts) and starts[-1] > at  # a refusal at no known time has none after it
        still_used = not ctx.no_longer_used(ref, None) if ref else True
        out.append(not worked_after and still_used)
    return out


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
    n, live = len(refusals), sum(current)
    title = f"{n} provisioning attempt(s) refused by the Machines API; no machine was made"
    resolved = None
    if not live:
        last = refusals["time"].max()
        resolved = next((start for start in ctx.success_starts() if start > last), None)
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

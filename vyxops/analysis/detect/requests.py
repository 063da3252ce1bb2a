"""Failed provisioning requests whose logs do not say why: the one signal every function shares.

The provisioning function's HTTP status is in ``function_edge_logs`` for every
invocation. A 4xx/5xx is a failed provisioning request whatever the function's
console says (SPEC.md), so an outage can never read as healthy because a team words
its errors its own way, or logs nothing at all (a function that logs nothing is not a
gap: its edge log still carries the status). Those whose logs say what Fly answered
are refusals (:mod:`vyxops.analysis.detect.creates`); the rest are PROVISIONING_REQUEST_FAILED,
the root only when nothing readable explains them. Over once the function answered a
later request with 2xx.
"""

from __future__ import annotations

import pandas as pd

from vyxops.analysis.detect.context import Context
from vyxops.analysis.detect.creates import when
from vyxops.analysis.detect.model import Finding, Link, ev, register


@register("PROVISIONING_REQUEST_FAILED", link=Link.CREATE, symptom=True)
def detect_request_failed(ctx: Context) -> list[Finding]:
    """PROVISIONING_REQUEST_FAILED: the function answered 4xx/5xx and its logs do not say what Fly answered."""
    failed = ctx.failed_requests
    if failed.empty:
        return []
    fn = ctx.e.contract.function
    first, last = failed["time"].min(), failed["time"].max()
    resolved = next((t for t in ctx.answered_ok if t > last), None)
    live = sum(1 for at in failed["time"].tolist() if not any(t > at for t in ctx.answered_ok))
    statuses = sorted({int(x) for x in failed["status_code"].dropna()})
    said = "/".join(map(str, statuses)) or "an error"
    evidence = [
        ev("supabase.function_logs", row.time, f"{str(row.message)[:200]}: no log line of this invocation "
                                               "says what Fly answered")
        for row in failed.tail(5).itertuples()
    ]  # fmt: skip
    title = f"{fn} answered {said} to {len(failed)} provisioning request(s); its logs do not say what Fly answered"
    if resolved is not None:
        evidence.append(ev("supabase.function_logs", resolved, f"{fn} answered a request with 2xx again"))
        title += f" (resolved at {when(resolved, ctx.tz)})"
    last_ok = max((t for t in ctx.answered_ok if t < first), default=None)
    return [
        Finding(
            "PROVISIONING_REQUEST_FAILED", "critical", title, f"function:{fn}:requests", evidence,
            ["VERIFY_PROVISIONING"],
            {"count": len(failed), "current": live, "first": first, "last": last, "statuses": said,
             "last_ok": last_ok, "function": fn,
             "action": f"read {fn}'s own logs for these invocations in the Supabase dashboard (the function's "
                       "Logs tab), or run a probe (`--probe`), which reads the function's answer body"},
            at=first, current=live > 0, resolved_at=resolved,
        )
    ]  # fmt: skip


def unexplained_since(symptom: Finding, since: pd.Timestamp | None) -> bool:
    """Whether PROVISIONING_REQUEST_FAILED's failures began at or after ``since`` (None: any time)."""
    if symptom.code != "PROVISIONING_REQUEST_FAILED":
        return False
    first = symptom.facts.get("first")
    return since is None or first is None or pd.isna(since) or first >= since

"""Why the Machines API refused the creates: the class codes that speak for MACHINE_CREATE_REJECTED.

A class code is a cause (not a symptom): it explains the refusals of its class that
are still in effect, and when two classes hold at once the ranking roots at the one
that explains more of the window's failing attempts (``facts["attempts"]``), naming
the other (SPEC.md). None has an automated fix; each says what a person does, with
the platform's own command (``facts["action"]``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from vyxops.analysis.detect.context import Context
from vyxops.analysis.detect.creates import KIND_SAYS, refusal_current, when, worked_after
from vyxops.analysis.detect.model import Finding, Link, ev, register

_ANY = "*"  # a region filter that takes every region


def _attempts(symptom: Finding, kind: str, region: str | None) -> int:
    """How many of MACHINE_CREATE_REJECTED's refusals in effect are of ``kind`` (and ``region``)."""
    if symptom.code != "MACHINE_CREATE_REJECTED":
        return 0
    return sum(
        1
        for _, k, _, where, now in symptom.facts.get("refused", ())
        if k == kind and now and (region == _ANY or where == region)
    )


def _explains(kind: str) -> Callable[[Finding, Finding], bool]:
    def explains(cause: Finding, symptom: Finding) -> bool:
        return _attempts(symptom, kind, cause.facts.get("region", _ANY)) > 0

    explains.__doc__ = f"A {kind} cause explains the refused creates of its class still in effect."
    return explains


def _count(ctx: Context, kind: str) -> int:
    """How many of the app's refused creates Fly refused as ``kind``."""
    return int((ctx.refusals["kind"] == kind).sum())


def _class_finding(ctx: Context, code: str, kind: str, entity: str, title: str, region: str | None = _ANY) -> Finding:
    """One class code's finding over the refusals of ``kind`` (in ``region``), with its history."""
    r = ctx.refusals
    current = refusal_current(ctx)
    keep = [k == kind and (region == _ANY or w == region) for k, w in zip(r["kind"].tolist(), r["region"].tolist())]
    mine = r[keep]
    live = sum(now for now, k in zip(current, keep) if k)
    first, last = mine["time"].min(), mine["time"].max()
    statuses = sorted({int(x) for x in mine["fly_status"].dropna()})
    resolved = None if live or region is None else worked_after(ctx, last, None if region == _ANY else region)
    evidence = [
        ev("supabase.function_logs", row.time, f"{str(row.message)[:200]} (Fly: {KIND_SAYS[kind]})")
        for row in mine.tail(3).itertuples()
    ]
    if resolved is not None:
        evidence.append(ev("fly.machines", resolved, "a provisioned machine started: the create worked again"))
        title += f" (resolved at {when(resolved, ctx.tz)})"
    said = "/".join(map(str, statuses)) or "no status"
    return Finding(
        code, "critical" if live else "info", title, entity, evidence, [],
        {"count": len(mine), "attempts": live, "first": first, "last": last, "statuses": said, "region": region,
         "function": ctx.e.contract.function},
        at=first, current=live > 0, resolved_at=resolved,
    )  # fmt: skip


@register("FLY_TOKEN_REJECTED", link=Link.CREATE, explains=_explains("token"))
def detect_token_rejected(ctx: Context) -> list[Finding]:
    """The function's Fly token was refused (401/403, or 404: it cannot see the app): expired, revoked, no access."""
    n = _count(ctx, "token")
    if not n:
        return []
    fn = ctx.e.contract.function
    f = _class_finding(ctx, "FLY_TOKEN_REJECTED", "token", f"function:{fn}:fly-token",
                       f"Fly refused {fn}'s token for {n} create(s)")  # fmt: skip
    f.title += f" (HTTP {f.facts['statuses']})" if "resolved" not in f.title else ""
    f.facts["action"] = (
        f"make a new Fly token for {ctx.app} (`fly tokens create deploy -a {ctx.app}`) and set it as the secret "
        f"{fn} sends to Fly (`supabase secrets set NAME=<token> --project-ref {_ref(ctx)}`); "
        "a 403/404 means the token cannot see this app: make it in the app's org"
    )
    return [f]


@register("PROVISIONING_RATE_LIMITED", link=Link.CREATE, explains=_explains("rate_limit"))
def detect_rate_limited(ctx: Context) -> list[Finding]:
    """The Machines API answered the function's creates with 429."""
    n = _count(ctx, "rate_limit")
    if not n:
        return []
    fn = ctx.e.contract.function
    f = _class_finding(ctx, "PROVISIONING_RATE_LIMITED", "rate_limit", f"function:{fn}:rate-limit",
                       f"the Machines API rate-limited {n} of {fn}'s create(s) (429)")  # fmt: skip
    f.facts["action"] = (
        f"retry {fn}'s creates on 429 with a backoff (flyctl does) and spread bursts: the Machines API allows "
        "1 create a second per app, bursts of 3; nothing is wrong with the image or the token"
    )
    return [f]


@register("REGION_CAPACITY", link=Link.CREATE, explains=_explains("capacity"))
def detect_region_capacity(ctx: Context) -> list[Finding]:
    """Creates refused for lack of capacity, one finding per region (over once a create there worked)."""
    r = ctx.refusals[ctx.refusals["kind"] == "capacity"]
    per_region = Counter(w if isinstance(w, str) else None for w in r["region"].tolist())  # None: not named
    out = []
    for region, n in per_region.items():
        where = region or "a region the logs do not name"
        f = _class_finding(ctx, "REGION_CAPACITY", "capacity", f"region:{region or 'unknown'}",
                           f"no capacity in {where}: {n} create(s) refused", region)  # fmt: skip
        f.facts["action"] = (
            "provision in another region (`fly platform regions` lists them) or retry later; fly-go's "
            'suggestion: "Try choosing a different region for machine creation"'
            + (f"; `fly machines list -a {ctx.app}` shows where machines run now" if region else "")
        )
        out.append(f)
    return out


def _ref(ctx: Context) -> str:
    return ctx.e.project_ref or "<project-ref>"

"""Platform rate limits the sandbox enforces: token buckets on the world's clock.

Fly Machines API (PLATFORM.md; Fly's docs, "Working with the Machines API" → Rate
Limits): "1 req/s per action per machine or app, burst 3; get machine 5 req/s,
burst 10". A bucket is keyed by (action, machine id) for a call on one machine and
by (action, app) for a call on an app's collection (list or create machines), so
listing app A's machines spends nothing of app B's budget nor of creating in A.

The buckets refill on ``world.now_ms``: in process that clock moves only when a
client sleeps (the SandboxClock, a wait), when served in realtime it follows wall
time (the router advances it), so the same bucket serves both. They live in memory
beside each World (like management_api's budgets), never in the saved state: a new
process starts with full buckets, as after a quiet spell.
"""

from __future__ import annotations

import math
import weakref

from vyxops.core.facts import FLY_ACTION_LIMIT, FLY_GET_MACHINE_LIMIT, RateLimit
from vyxops_sandbox.world import World

__all__ = ["fly_machines_bucket", "take"]

MILLI = 1000  # a bucket counts thousandths of a request, so that refill is exact integer arithmetic

# key -> [thousandths of a request in the bucket, world.now_ms of the last refill]
_buckets: weakref.WeakKeyDictionary[World, dict[tuple[str, ...], list[int]]] = weakref.WeakKeyDictionary()


def take(world: World, key: tuple[str, ...], limit: RateLimit) -> int | None:
    """Spend one request of ``key``'s bucket: None when allowed, else whole seconds until one is available (≥ 1)."""
    buckets = _buckets.setdefault(world, {})
    now = world.now_ms
    full = limit.burst * MILLI
    bucket = buckets.setdefault(key, [full, now])
    # A clock set back (a reset world) refills nothing until it moves on again.
    bucket[0] = min(full, bucket[0] + max(0, now - bucket[1]) * limit.per_s)  # per_s thousandths a millisecond
    bucket[1] = now
    if bucket[0] >= MILLI:
        bucket[0] -= MILLI
        return None
    wait_ms = math.ceil((MILLI - bucket[0]) / limit.per_s)
    return max(1, math.ceil(wait_ms / 1000))


GET_MACHINE = "GET /v1/apps/{app}/machines/{id}"


def fly_machines_bucket(
    method: str, pattern: str, params: dict[str, str], org: str = ""
) -> tuple[tuple[str, str], RateLimit]:
    """The bucket a Machines API call spends from: its key and size.

    The action is the endpoint (method and path template, e.g. ``POST
    /v1/apps/{app}/machines/{id}/stop``); it is counted per machine for a call on
    one machine, else per app, and per ``org`` (the ``org_slug`` asked for) for the apps list.
    """
    scope = params.get("id") or params.get("app") or f"org:{org}"
    action = f"{method} {pattern}"
    return (action, scope), FLY_GET_MACHINE_LIMIT if action == GET_MACHINE else FLY_ACTION_LIMIT

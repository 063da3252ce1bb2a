"""One rate budget per platform, shared by every request the process sends on one clock.

Concurrent fetching only pays if it stays inside what the platforms allow; a burst of
429s costs more than it saves. Every request of :class:`vyxops.fetch.http.Api` and of the
transport supabase-py sends through asks :func:`budget_for` its clock's :class:`Budget`
for a token first, and tells it what came back.

What the budget knows (PLATFORM.md "Rate limits"):

- **Fly Machines API**: 1 request/s per action per machine or app, burst 3; *get machine*
  5 requests/s, burst 10. The key is (action, app or machine id), so the reads of fifty
  different apps never wait for each other, while one app's tenth read of one action does.
- **Supabase Management API**: 120 requests a minute per user, per project or organization,
  per endpoint, as a *fixed window*: past the 120th, every call is refused until the minute
  ends (api_rate_limits.mdx). The budget keeps one window per endpoint (its template:
  ``/functions/a`` and ``/functions/b`` share one) and project: the 121st request waits for the
  window to end instead of trickling out as a bucket would. Every answer reports the window
  (``X-RateLimit-Limit/-Remaining/-Reset``, Reset in seconds); the budget takes the server's
  count when it is higher (all of a user's tokens and processes share the window), and when
  ``Remaining`` reaches 0 the endpoint waits for ``Reset`` rather than spending a request on a 429.
- **Everything** (these two and the platforms with no documented limit: the registry,
  PostgREST, Edge Functions, Fly's GraphQL and logs): a 429 pauses that key for the
  wait :meth:`vyxops.fetch.http.RetryPolicy.rate_limit_delay` computes (``Retry-After``, or a
  backoff when there is none), for every thread, not just the one that was refused.

The budget reserves tokens under a lock and waits outside it, on the session's clock:
wall time live, the virtual clock on the sandbox, so tests of waiting take no time.
One budget per clock: live sessions share one (the process's), each sandbox world its own.

It also holds the requests on the wire at once to :data:`IN_FLIGHT` (:meth:`Budget.sending`).
Held below the size of every connection pool (:mod:`vyxops.fetch.pools`), nothing queues in a pool:
httpcore 1.0's pool matched every queued request against every connection each time a request
arrived or ended, and a 50-app audit queued some 400 requests in it, seconds of CPU. On the
served sandbox, one run in three also met a connection reset mid-answer, or stalled for the
30 s timeout; none did in 24 runs once held (``tests/test_budget.py``).
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from vyxops.core.facts import FLY_ACTION_LIMIT, FLY_GET_MACHINE_LIMIT, SUPABASE_MGMT_WINDOW, FixedWindow, RateLimit


class _Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


# --------------------------------------------------------------------------- the documented limits (vyxops.core.facts)

#: 120 a minute per endpoint, a fixed window; the headers say exactly where the server's window stands.
SUPABASE_MGMT = SUPABASE_MGMT_WINDOW
Limit = RateLimit | FixedWindow
Rule = Callable[[str, str], tuple[tuple[str, ...], Limit] | None]

_MACHINE_PATH = re.compile(r"^/v1/apps/(?P<app>[^/]+)/machines/(?P<id>[^/]+)(?P<action>/[^/]+)?$")
_APP_PATH = re.compile(r"^/v1/apps/(?P<app>[^/]+)(?P<rest>/.*)?$")


def fly_machines_key(method: str, path: str) -> tuple[tuple[str, ...], RateLimit] | None:
    """The (key, limit) of a Fly Machines API request: action per machine, else action per app."""
    m = _MACHINE_PATH.match(path)
    if m:
        action = (m.group("action") or "").lstrip("/")
        if method == "GET" and not action:
            return ("get", m.group("id")), FLY_GET_MACHINE_LIMIT
        return (f"{method} {action or 'machine'}", m.group("id")), FLY_ACTION_LIMIT
    m = _APP_PATH.match(path)
    if m:
        return (f"{method} {m.group('rest') or '/'}", m.group("app")), FLY_ACTION_LIMIT
    return None


_MGMT_SCOPED = re.compile(r"^/v1/(?P<kind>projects|organizations)/(?P<scope>[^/]+)(?P<rest>/.*)?$")
_MGMT_FUNCTION = re.compile(r"^/functions/[^/]+")


def supabase_mgmt_key(method: str, path: str) -> tuple[tuple[str, ...], Limit] | None:
    """The (key, limit) of a Management API request: its endpoint (method and path template) and scope.

    The scope is the project or organization in the path ("requests that don't include a project
    or organization [...] are counted against the user"); a function's slug is part of the
    template, not of the key: ``GET …/functions/a`` and ``…/functions/b`` spend one window.
    """
    m = _MGMT_SCOPED.match(path)
    if not m:
        return (method, path), SUPABASE_MGMT
    rest = _MGMT_FUNCTION.sub("/functions/{function_slug}", m.group("rest") or "")
    return (method, f"/v1/{m.group('kind')}/{{ref}}{rest}", m.group("scope")), SUPABASE_MGMT


#: platform → how its requests are keyed and limited; a platform not here is only paced by its 429s.
RULES: dict[str, Rule] = {
    "fly-machines": fly_machines_key,
    "supabase-mgmt": supabase_mgmt_key,
}

#: The longest a spent window holds a key: the Management API's windows are a minute.
MAX_PAUSE_S = 60.0


# --------------------------------------------------------------------------- buckets


class _Bucket:
    """A token bucket that may go into debt: a request reserves a token now and waits out the debt."""

    def __init__(self, limit: RateLimit | None, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst) if limit else 0.0
        self.at = now
        self.paused_until = 0.0

    def reserve(self, now: float) -> float:
        """Take one token; seconds to wait before sending."""
        wait = max(0.0, self.paused_until - now)
        if self.limit is None:
            return wait
        # ``now`` is read before the lock is taken, so another thread may have come in with a later one
        elapsed = max(0.0, now - self.at)
        self.tokens = min(float(self.limit.burst), self.tokens + elapsed * self.limit.per_s)
        self.at = max(self.at, now)
        self.tokens -= 1.0
        if self.tokens < 0:
            wait = max(wait, -self.tokens / self.limit.per_s)
        return wait

    def observe(self, remaining: int, reset: float, now: float) -> None:
        """A bucket takes nothing from a window's headers but the pause (:meth:`Budget.observe`)."""


class _Window:
    """A fixed window, as the Management API counts: ``used`` requests reserved since the window
    opened; those past the limit are reserved in the windows that follow, and wait for them."""

    def __init__(self, limit: FixedWindow) -> None:
        self.limit = limit
        self.used = 0
        self.end = -math.inf  # opened by the first request
        self.paused_until = 0.0

    def _roll(self, now: float) -> None:
        """Move to the window ``now`` falls in: one opened by the requests reserved past the last
        one's end (they went out at its end), or a new one opened now."""
        n, seconds = self.limit.requests, float(self.limit.seconds)
        while now >= self.end:
            if self.used <= n:
                self.used, self.end = 0, now + seconds
                return
            self.used -= n
            self.end += seconds

    def reserve(self, now: float) -> float:
        """Take one request of the window; seconds to wait before sending (until its window opens)."""
        wait = max(0.0, self.paused_until - now)
        self._roll(now)
        later = self.used // self.limit.requests  # how many windows after this one the request goes in
        self.used += 1
        if later:
            wait = max(wait, self.end + (later - 1) * self.limit.seconds - now)
        return wait

    def observe(self, remaining: int, reset: float, now: float) -> None:
        """Take the server's end of the window (it may have opened before ours: another token or
        process of the same user opened it) and its count when higher than ours. Reset is whole
        seconds read after the answer left, so the end it gives is never early. An answer far
        older than our window (read late, after it rolled over) says nothing of ours."""
        self._roll(now)
        server_end = now + reset
        if server_end + self.limit.seconds / 2 < self.end:
            return
        self.end = server_end
        self.used = max(self.used, self.limit.requests - remaining)


#: Requests on the wire at once, per budget (per process live). Enough to hide the latency of
#: requests that come in bursts: a 50-app audit's first wave of reads (those that need no other's
#: answer) sends some 250 at once (five per app), and all of them must fit in the few round trips
#: its reads' dependencies need; half as many left the first wave alone three round trips. The
#: pool's cost per request grows with the connections it holds, so no higher than that (the
#: measurements: bench/FIGURES.md).
IN_FLIGHT = 192


class Budget:
    """The rate budget of one clock: every platform's buckets, the 429s it has seen, and the
    requests in flight."""

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self._in_flight = threading.BoundedSemaphore(IN_FLIGHT)
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, ...], _Bucket | _Window] = {}
        self.waited_s = 0.0  # total time requests waited for the budget (benchmarks print it)
        self.rate_limited = 0  # 429s seen

    def _bucket(self, platform: str, method: str, path: str, now: float) -> _Bucket | _Window:
        """The bucket or window of this request's key (a platform without documented limits is one key)."""
        rule = RULES.get(platform)
        keyed = rule(method, path) if rule else None
        key, limit = ((platform, *keyed[0]), keyed[1]) if keyed else ((platform, "*"), None)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Window(limit) if isinstance(limit, FixedWindow) else _Bucket(limit, now)
        return bucket

    def acquire(self, platform: str, method: str, path: str) -> float:
        """Wait until a request may go out (on the clock); the seconds waited."""
        now = self.clock.now()  # outside the lock: a served sandbox's clock is itself a request
        with self._lock:
            wait = self._bucket(platform, method, path, now).reserve(now)
            self.waited_s += wait
        if wait > 0:
            self.clock.sleep(wait)
        return wait

    @contextmanager
    def sending(self) -> Iterator[None]:
        """Hold one of the :data:`IN_FLIGHT` places while a request is sent and its answer read."""
        with self._in_flight:
            yield

    def observe(self, platform: str, method: str, path: str, headers: Mapping[str, str]) -> None:
        """Learn from an answer's ``X-RateLimit-*``: a spent window pauses its key until ``Reset``.

        Supabase's Management API sends ``X-RateLimit-Remaining`` and ``-Reset`` (seconds
        until the window reopens, api_rate_limits.mdx) on every answer: a fixed window takes
        the server's count, and a key whose window is spent waits for it instead of spending
        a request on a 429.
        """
        remaining = _seconds(headers.get("x-ratelimit-remaining"))
        reset = _seconds(headers.get("x-ratelimit-reset"))
        if remaining is None or reset is None:
            return
        reset = min(reset, MAX_PAUSE_S)
        now = self.clock.now()
        with self._lock:
            self._bucket(platform, method, path, now).observe(int(remaining), reset, now)
        if remaining == 0:
            self.pause(platform, method, path, reset, counted=False)

    def pause(self, platform: str, method: str, path: str, seconds: float, *, counted: bool = True) -> None:
        """Hold every request of this key for ``seconds`` (a 429's Retry-After, or a spent window)."""
        now = self.clock.now()
        with self._lock:
            bucket = self._bucket(platform, method, path, now)
            bucket.paused_until = max(bucket.paused_until, now + seconds)
            self.rate_limited += int(counted)


def _seconds(value: str | None) -> float | None:
    """A header's whole or fractional seconds; None when absent or not a number."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


_BUDGETS: weakref.WeakKeyDictionary[object, Budget] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def budget_for(clock: _Clock) -> Budget:
    """The budget every request on ``clock`` shares (a clock may name its scope: ``budget_scope``)."""
    scope = getattr(clock, "budget_scope", clock)
    with _SHARED_LOCK:
        budget = _BUDGETS.get(scope)
        if budget is None:
            budget = _BUDGETS[scope] = Budget(clock)
        return budget

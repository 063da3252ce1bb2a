"""The shared rate budget: PLATFORM.md's documented limits, X-RateLimit-* headers, and 429 pauses."""

from __future__ import annotations

import random
import threading

import httpx
import pytest

from vyxops.core import errors
from vyxops.core.facts import FLY_ACTION_LIMIT, FLY_GET_MACHINE_LIMIT
from vyxops.fetch.budget import SUPABASE_MGMT, budget_for, fly_machines_key, supabase_mgmt_key
from vyxops.fetch.http import Api, RetryPolicy, RetryTransport, WallClock, make_client
from vyxops.testing.clock import FakeClock
from vyxops.testing.overlap import Overlap


def api_on(clock: FakeClock, handler, platform: str = "fly-machines") -> Api:  # type: ignore[no-untyped-def]
    client = make_client(platform, "https://api.example.test", None, transport=httpx.MockTransport(handler))
    return Api(client, platform, clock=clock, rng=random.Random(1))


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={})


def test_the_documented_fly_limits_key_by_action_and_machine_or_app() -> None:
    """Get machine is 5/s burst 10 per machine; every other action 1/s burst 3 per machine or app (PLATFORM.md)."""
    assert (FLY_GET_MACHINE_LIMIT.per_s, FLY_GET_MACHINE_LIMIT.burst) == (5, 10)
    assert (FLY_ACTION_LIMIT.per_s, FLY_ACTION_LIMIT.burst) == (1, 3)
    assert (SUPABASE_MGMT.requests, SUPABASE_MGMT.seconds) == (120, 60)
    assert fly_machines_key("GET", "/v1/apps/a/machines/m1") == (("get", "m1"), FLY_GET_MACHINE_LIMIT)
    assert fly_machines_key("POST", "/v1/apps/a/machines/m1/stop") == (("POST stop", "m1"), FLY_ACTION_LIMIT)
    assert fly_machines_key("GET", "/v1/apps/a/machines") == (("GET /machines", "a"), FLY_ACTION_LIMIT)
    assert fly_machines_key("GET", "/v1/apps/b/machines")[0] != fly_machines_key("GET", "/v1/apps/a/machines")[0]


def test_one_apps_list_waits_after_its_burst_while_another_apps_does_not() -> None:
    """Three lists of app a go at once, the fourth waits a second; app b's first list waits for nothing."""
    clock = FakeClock()
    api = api_on(clock, ok)
    for _ in range(3):
        api.request("GET", "/v1/apps/a/machines")
    assert clock.sleeps == []
    api.request("GET", "/v1/apps/b/machines")
    assert clock.sleeps == []
    api.request("GET", "/v1/apps/a/machines")
    assert clock.sleeps == [pytest.approx(1.0)]


def test_get_machine_allows_ten_then_paces_at_five_a_second() -> None:
    clock = FakeClock()
    api = api_on(clock, ok)
    for _ in range(12):
        api.request("GET", "/v1/apps/a/machines/m1")
    assert clock.sleeps == [pytest.approx(0.2), pytest.approx(0.2)]


def test_a_spent_management_window_waits_for_its_reset_instead_of_spending_a_429() -> None:
    """X-RateLimit-Remaining: 0 with Reset: 42 holds that endpoint 42 s; another endpoint goes on."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=[], headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "42"})

    clock = FakeClock()
    api = api_on(clock, handler, platform="supabase-mgmt")
    api.request("GET", "/v1/projects/p/secrets")
    api.request("GET", "/v1/projects/p/functions")
    assert clock.sleeps == []
    api.request("GET", "/v1/projects/p/secrets")
    assert clock.sleeps == [pytest.approx(42.0)]
    assert budget_for(clock).rate_limited == 0


def test_the_121st_management_request_waits_for_the_window_to_end_not_half_a_second() -> None:
    """A fixed window (api_rate_limits.mdx): past the 120th, every call is refused until the minute
    ends, so the budget holds the 121st until then; a bucket refilling 2/s would send it at 0.5 s, into a 429."""
    clock = FakeClock()
    budget = budget_for(clock)
    for _ in range(120):
        budget.acquire("supabase-mgmt", "GET", "/v1/projects/p/secrets")
    assert clock.sleeps == []
    clock.t += 10.0
    budget.acquire("supabase-mgmt", "GET", "/v1/projects/p/secrets")
    assert clock.sleeps == [pytest.approx(50.0)]
    for _ in range(119):  # the new window's other 119 go at once
        budget.acquire("supabase-mgmt", "GET", "/v1/projects/p/secrets")
    assert clock.sleeps == [pytest.approx(50.0)]
    budget.acquire("supabase-mgmt", "GET", "/v1/projects/p/functions")  # another endpoint: its own window
    assert clock.sleeps == [pytest.approx(50.0)]


def test_a_function_slug_is_part_of_the_endpoint_not_of_the_window() -> None:
    """GET …/functions/a and …/functions/b are one endpoint (the server keys by route); another project is not."""
    a, _ = supabase_mgmt_key("GET", "/v1/projects/p/functions/a")
    b, _ = supabase_mgmt_key("GET", "/v1/projects/p/functions/b")
    other, _ = supabase_mgmt_key("GET", "/v1/projects/q/functions/a")
    assert a == b != other
    assert supabase_mgmt_key("GET", "/v1/projects/p/functions")[0] != a


def test_a_window_another_token_of_the_user_spent_is_read_from_the_headers() -> None:
    """All of a user's tokens share the window: Remaining 5 with Reset 30 leaves five requests, then a 30 s wait."""
    clock = FakeClock()
    budget = budget_for(clock)
    budget.acquire("supabase-mgmt", "GET", "/v1/projects/p/secrets")
    budget.observe(
        "supabase-mgmt", "GET", "/v1/projects/p/secrets", {"x-ratelimit-remaining": "5", "x-ratelimit-reset": "30"}
    )
    for _ in range(5):
        budget.acquire("supabase-mgmt", "GET", "/v1/projects/p/secrets")
    assert clock.sleeps == []
    budget.acquire("supabase-mgmt", "GET", "/v1/projects/p/secrets")
    assert clock.sleeps == [pytest.approx(30.0)]


def test_a_late_answer_of_the_last_window_does_not_spend_the_new_one() -> None:
    """An answer read after the window rolled over (Remaining 0, Reset 1) is about the old window: ignored."""
    clock = FakeClock()
    budget = budget_for(clock)
    budget.acquire("supabase-mgmt", "GET", "/v1/projects/p/secrets")
    clock.t += 61.0
    budget.acquire("supabase-mgmt", "GET", "/v1/projects/p/secrets")  # opens a new window
    budget.observe(
        "supabase-mgmt", "GET", "/v1/projects/p/secrets", {"x-ratelimit-remaining": "3", "x-ratelimit-reset": "1"}
    )
    for _ in range(100):
        budget.acquire("supabase-mgmt", "GET", "/v1/projects/p/secrets")
    assert clock.sleeps == []


def test_a_text_429_without_retry_after_waits_for_the_reset_and_fails_with_a_clear_message() -> None:
    """The Management API's 429 is framework text; X-RateLimit-Reset (seconds) says how long to wait."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(
            429,
            content=b"ThrottlerException: Too Many Requests",
            headers={"content-type": "text/html; charset=utf-8", "x-ratelimit-limit": "120",
                     "x-ratelimit-remaining": "0", "x-ratelimit-reset": "17"},
        )  # fmt: skip

    clock = FakeClock()
    client = make_client("supabase-mgmt", "https://api.example.test", None, transport=httpx.MockTransport(handler))
    api = Api(client, "supabase-mgmt", clock=clock, rng=random.Random(1), retry=RetryPolicy(max_rate_limited=2))
    with pytest.raises(errors.RateLimitedError) as info:
        api.get_json("/v1/projects/p/secrets")
    assert clock.sleeps == [pytest.approx(17.0)]
    text = str(info.value)
    assert "rate limited (429): ThrottlerException: Too Many Requests" in text
    assert "reopens in 17 s" in text and "every access token of that user" in text
    assert "malformed" not in text and len(seen) == 2


def test_a_429_pauses_the_key_for_every_client_on_the_clock() -> None:
    """One client's 429 with Retry-After: 7 holds the other client's next request to that key, too."""
    answers = iter([httpx.Response(429, headers={"retry-after": "7"})] + [httpx.Response(200, json={})] * 5)
    clock = FakeClock()
    first = api_on(clock, lambda r: next(answers))
    second = api_on(clock, ok)
    assert first.budget is second.budget
    first.request("GET", "/graphql")  # unlimited platform key; paused by the 429 only
    assert clock.sleeps == [pytest.approx(7.0)]
    second.request("GET", "/graphql")
    assert clock.sleeps == [pytest.approx(7.0)]  # the pause is over: no second wait


def test_a_429_storm_slows_a_request_but_does_not_fail_it() -> None:
    """Eight 429s in a row (each asking 2 s), then an answer: the request succeeds after 16 s of waiting."""
    answers = [httpx.Response(429, headers={"retry-after": "2"})] * 8 + [httpx.Response(200, json={"ok": True})]
    it = iter(answers)
    clock = FakeClock()
    api = api_on(clock, lambda r: next(it), platform="fly-api")
    assert api.get_json("/api/v1/apps/a/logs") == {"ok": True}
    assert sum(clock.sleeps) == pytest.approx(16.0)


def test_a_create_is_retried_on_429_but_never_after_a_5xx() -> None:
    """A 429 means the server did not act, so a create goes again; a 503 may have been applied, so it does not."""
    answers = iter([httpx.Response(429, headers={"retry-after": "1"}), httpx.Response(503), httpx.Response(200)])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return next(answers)

    api = api_on(FakeClock(), handler)
    with pytest.raises(errors.ApiError) as info:
        api.request("POST", "/v1/apps/a/machines", json={"config": {}})
    assert info.value.status == 503 and seen == ["POST", "POST"]


def test_supabase_py_transport_shares_the_budget_and_waits_out_429s() -> None:
    """The transport supabase-py sends through pauses on 429 too, on the same budget as the Api clients."""
    answers = iter([httpx.Response(429, headers={"retry-after": "3"}), httpx.Response(200, json=[])])
    clock = FakeClock()
    transport = RetryTransport(httpx.MockTransport(lambda r: next(answers)), RetryPolicy(), clock)
    with httpx.Client(transport=transport, base_url="https://x.supabase.co") as client:
        assert client.get("/rest/v1/machines").status_code == 200
    assert clock.sleeps == [pytest.approx(3.0)]
    assert transport.budget is budget_for(clock) and budget_for(clock).rate_limited == 1


def test_every_wall_clock_session_shares_one_budget_and_each_fake_clock_has_its_own() -> None:
    assert budget_for(WallClock()) is budget_for(WallClock())
    assert budget_for(FakeClock()) is not budget_for(FakeClock())


def test_concurrent_requests_on_one_key_are_paced_not_bunched() -> None:
    """Six threads listing one app: three go at once, the other three wait 1, 2 and 3 s (tokens reserved in turn)."""
    clock = FakeClock(moves=False)  # the threads' own sleeps must not refill each other's tokens
    api = api_on(clock, ok)
    threads = [threading.Thread(target=api.request, args=("GET", "/v1/apps/a/machines")) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(round(s, 6) for s in clock.sleeps) == [1.0, 2.0, 3.0]


def test_no_more_than_in_flight_requests_are_on_the_wire_at_once_through_either_client() -> None:
    """Three times IN_FLIGHT requests at once, half through Api and half through the transport
    supabase-py sends through: never more than IN_FLIGHT are being answered at the same moment."""
    from concurrent.futures import ThreadPoolExecutor

    from vyxops.fetch.budget import IN_FLIGHT

    overlap = Overlap()

    def slow(request: httpx.Request) -> httpx.Response:
        with overlap.call(lasting=0.05):
            return httpx.Response(200, json={})

    clock = WallClock()
    api = Api(make_client("fly-registry", "https://r.test", None, transport=httpx.MockTransport(slow)), "fly-registry")
    rest = httpx.Client(transport=RetryTransport(httpx.MockTransport(slow), clock=clock, platform="supabase-rest"))
    calls = [lambda: api.request("GET", "/v2/") for _ in range(IN_FLIGHT * 3 // 2)]
    calls += [lambda: rest.get("https://db.test/rest/v1/t") for _ in range(IN_FLIGHT * 3 // 2)]
    with ThreadPoolExecutor(max_workers=IN_FLIGHT * 3) as pool:
        answers = list(pool.map(lambda call: call().status_code, calls))
    assert answers == [200] * len(calls)
    assert IN_FLIGHT // 4 < overlap.most <= IN_FLIGHT  # many at once, never more than the cap


def test_the_least_time_a_limit_allows_is_its_burst_then_its_rate_or_one_window_per_limit() -> None:
    """What bench_live's bound is made of: Fly's bucket lets its burst through at once, then its rate; the
    Management API's fixed window lets 120 through, then the 121st waits out the minute."""
    from vyxops.core.facts import FLY_ACTION_LIMIT, SUPABASE_MGMT_WINDOW

    assert [FLY_ACTION_LIMIT.least_seconds(n) for n in (1, 3, 5)] == [0.0, 0.0, 2.0]
    assert [SUPABASE_MGMT_WINDOW.least_seconds(n) for n in (1, 120, 121, 241)] == [0.0, 0.0, 60.0, 120.0]

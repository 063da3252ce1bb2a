"""The sandbox's Fly Machines API rate limits (vyxops_sandbox/limits.py) and served latency that overlaps.

PLATFORM.md: "1 req/s per action per machine or app, burst 3; get machine 5 req/s,
burst 10". Buckets refill on the world's clock, so in process only a sleep refills them.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from vyxops.testing.overlap import Overlap
from vyxops_sandbox.faults import FaultRule, Faults
from vyxops_sandbox.router import SandboxApp, SandboxTransport
from vyxops_sandbox.scenario import load_scenario
from vyxops_sandbox.server import make_server
from vyxops_sandbox.target import SandboxClock
from vyxops_sandbox.world import World

MACHINES = "https://api.machines.dev"
TWO_APPS = Path(__file__).parent / "scenarios" / "two-apps-only-beta-broken.yaml"
APP = "vyx-app"
SEED_MACHINE = "5683732efe3208"  # the stub-image seed's machine: destroyed, still readable by id


def two_apps() -> World:
    return World.from_scenario(load_scenario(TWO_APPS))


def client(world: World) -> httpx.Client:
    """An httpx client answered by the sandbox in process (no retries: every 429 is seen)."""
    return httpx.Client(
        transport=SandboxTransport(SandboxApp(world, autosave=False)),
        headers={"Authorization": f"Bearer {world.credentials['fly_api_token']}"},
    )


def machines(app: str, suffix: str = "") -> str:
    return f"{MACHINES}/v1/apps/{app}/machines{suffix}"


def test_fourth_list_in_one_virtual_second_is_429_while_another_app_is_still_allowed() -> None:
    """Listing is 1/s burst 3 per app: the 4th list of alpha-app is refused; beta-app's budget is its own."""
    world = two_apps()
    with client(world) as http:
        assert [http.get(machines("alpha-app")).status_code for _ in range(3)] == [200, 200, 200]
        assert http.get(machines("alpha-app")).status_code == 429
        assert http.get(machines("beta-app")).status_code == 200
        # Another action on the same app (create) has its own bucket too: a bad body is 400, not 429.
        assert http.post(machines("alpha-app"), json={}).status_code == 400


def test_get_machine_allows_a_burst_of_ten_then_429() -> None:
    """Get Machine is 5/s burst 10, per machine."""
    world = World.from_scenario(load_scenario("stub-image"))
    with client(world) as http:
        codes = [http.get(machines(APP, f"/{SEED_MACHINE}")).status_code for _ in range(11)]
    assert codes == [200] * 10 + [429]


def test_the_429_says_when_to_come_back_and_sleeping_the_virtual_clock_allows_again() -> None:
    """Retry-After is the whole seconds until a request fits; after sleeping that long on the virtual clock it does."""
    world = two_apps()
    clock = SandboxClock(world)
    with client(world) as http:
        for _ in range(3):
            http.get(machines("alpha-app"))
        refused = http.get(machines("alpha-app"))
        assert refused.status_code == 429
        assert isinstance(refused.json().get("error"), str)  # Fly's {"error": …} shape; its text is unverified
        assert refused.headers["content-type"].startswith("application/json")
        assert refused.headers["retry-after"] == "1"  # 1 req/s, empty bucket: a token in 1 s
        assert "fly-request-id" in refused.headers
        clock.sleep(0.5)
        assert http.get(machines("alpha-app")).status_code == 429  # half a token is not a request
        clock.sleep(0.5)
        assert http.get(machines("alpha-app")).status_code == 200
        assert http.get(machines("alpha-app")).status_code == 429
        world.sleep(10)  # a quiet spell refills the burst, no more
        assert [http.get(machines("alpha-app")).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_retry_after_rounds_the_get_machine_wait_up_to_a_whole_second() -> None:
    """At 5/s the next token is 200 ms away: Retry-After says 1 (whole seconds), and 200 ms later one fits."""
    world = World.from_scenario(load_scenario("stub-image"))
    with client(world) as http:
        for _ in range(10):
            http.get(machines(APP, f"/{SEED_MACHINE}"))
        refused = http.get(machines(APP, f"/{SEED_MACHINE}"))
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        world.sleep(0.2)
        assert http.get(machines(APP, f"/{SEED_MACHINE}")).status_code == 200


def test_a_refused_or_unauthenticated_call_spends_nothing() -> None:
    """Only authenticated calls count: three 401s leave the burst whole."""
    world = two_apps()
    with client(world) as http:
        for _ in range(3):
            assert http.get(machines("alpha-app"), headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert [http.get(machines("alpha-app")).status_code for _ in range(3)] == [200, 200, 200]


def test_concurrent_requests_to_a_served_sandbox_overlap_their_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    """A latency fault served in realtime delays each of 5 concurrent requests, in parallel, not in a queue:
    all 5 are inside their delay at once (a barrier of 5 that a queue behind the lock could never pass)."""
    from vyxops_sandbox import router

    latency_ms = 300
    held, overlap = threading.Barrier(5), Overlap()

    def sleep(seconds: float) -> None:  # the served latency: counted, and held until all five are in it
        with overlap.call():
            held.wait(timeout=10)
            time.sleep(seconds)

    monkeypatch.setattr(router, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    world = World.from_scenario(load_scenario("stub-image"))
    server = make_server(world, 0, Faults([FaultRule(kind="latency", latency_ms=latency_ms)]), quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/v1/apps/{APP}/machines/{SEED_MACHINE}"
    headers = {"Authorization": f"Bearer {world.credentials['fly_api_token']}"}
    results: list[Any] = [None] * 5

    def fetch(i: int) -> None:
        with httpx.Client(timeout=30) as http:
            results[i] = http.get(url, headers=headers).status_code

    try:
        start = time.monotonic()
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        total = time.monotonic() - start
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert results == [200] * 5
    assert overlap.most == 5, f"at most {overlap.most} of 5 requests were in their latency at once"
    assert total >= latency_ms / 1000  # each was delayed: a lower bound holds under any load


@pytest.mark.parametrize("action", ["events", "wait", "stop"])
def test_each_machine_action_has_its_own_bucket_of_three(action: str) -> None:
    """events, wait and stop on one machine: three each, then 429, and none spends another's budget."""
    world = World.from_scenario(load_scenario("stub-image"))
    method = "POST" if action == "stop" else "GET"
    url = machines(APP, f"/{SEED_MACHINE}/{action}")
    with client(world) as http:
        codes = [
            http.request(method, url, params={"state": "destroyed"} if action == "wait" else None) for _ in range(4)
        ]
        assert [c.status_code == 429 for c in codes] == [False, False, False, True]
        assert http.get(machines(APP, f"/{SEED_MACHINE}")).status_code == 200


def test_a_realtime_served_clock_is_read_from_the_server_once_a_second_and_runs_with_wall_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every request's rate budget reads the clock: against `vyxops sandbox serve` that must not be a
    control request each time (it had doubled the requests of an audit), yet stay the server's time."""
    from vyxops.fetch.session import open_session
    from vyxops_sandbox import client as served_client

    world = World.from_scenario(load_scenario("stub-image"))
    server = make_server(world, 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    reads: list[tuple[str, float]] = []  # (control read, how long it took)
    control = served_client._control

    def counted(http: httpx.Client, method: str, name: str, **kw: Any) -> Any:
        began = time.monotonic()
        try:
            return control(http, method, name, **kw)
        finally:
            reads.append((name, time.monotonic() - began))

    monkeypatch.setattr(served_client, "_control", counted)
    try:
        with open_session("sandbox", environ={"VYXOPS_SANDBOX_URL": f"http://{host}:{port}"}) as s:
            clock = s.clock
            began, opening = time.monotonic(), len(reads)
            first = clock.now()
            seen = [clock.now() for _ in range(200)]
            time.sleep(0.25)
            asked = time.monotonic()
            later = clock.now()
            server_now = httpx.get(f"http://{host}:{port}/_sandbox/clock").json()["now_ms"] / 1000
            answered = time.monotonic()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    clock_reads = [took for name, took in reads if name == "clock"]
    # Once a second (resync_s), however slow a loaded machine makes these 200 reads: never once per read.
    assert sum(name == "clock" for name, _ in reads[opening:]) <= 1 + int(answered - began), reads
    assert seen == sorted(seen) and seen[0] >= first
    # It runs with wall time: the 0.25 s slept moved it, and by no more than the wall time that passed
    # (the server counts whole milliseconds: a few ms of slack).
    assert 0.25 - 0.01 <= later - first <= answered - began + 0.01
    # And it is the server's time: the client's reckoning differs from a fresh server read by no more than
    # a read takes (the client dates a read at its sending) or the time between the two readings.
    assert -max(clock_reads) - 0.01 <= server_now - later <= answered - asked + 0.01, (later, server_now)


def test_a_control_read_survives_a_reset_connection_and_a_control_write_is_sent_once() -> None:
    """A pooled connection found reset says nothing of the sandbox: a GET is tried again; a POST never is."""
    from vyxops.core.errors import ConfigError
    from vyxops_sandbox import client as served_client

    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        if len(sent) in (1, 3):
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(200, json={"now_ms": 1000})

    http = httpx.Client(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(answer))
    assert served_client._control(http, "GET", "clock") == {"now_ms": 1000}
    with pytest.raises(ConfigError, match="did not answer POST /_sandbox/clock: ReadError"):
        served_client._control(http, "POST", "clock", json={"sleep_s": 1})
    assert sent == ["GET", "GET", "POST"]


# --------------------------------------------------------------------------- Supabase Management API

MGMT = "https://api.supabase.com"


def mgmt_client(world: World, token: str) -> httpx.Client:
    """An httpx client for the Management API answered in process (no retries: every 429 is seen)."""
    return httpx.Client(
        base_url=MGMT,
        transport=SandboxTransport(SandboxApp(world, autosave=False)),
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_management_window_is_the_users_and_its_429_is_the_frameworks_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """api_rate_limits.mdx: all of a user's tokens share the window; after the 120th call every call is 429 until
    the minute ends, with X-RateLimit-* (Reset in seconds). The body is ThrottlerException's text, not JSON."""
    world = two_apps()
    creds = dict(world.credentials)
    second = "sbp_" + "0" * 40
    monkeypatch.setattr(World, "credentials", property(lambda self: {**creds, "supabase_access_token_ci": second}))
    path = f"/v1/projects/{creds['project_ref']}/secrets"
    with mgmt_client(world, creds["supabase_access_token"]) as first, mgmt_client(world, second) as other:
        assert [first.get(path).status_code for _ in range(60)] == [200] * 60
        world.sleep(20)
        # The sandbox's auth knows one token; the window is counted before it, by the token's owner.
        assert [other.get(path).headers["x-ratelimit-remaining"] for _ in range(60)] == [
            str(n) for n in range(59, -1, -1)
        ]
        refused = first.get(path)
        assert refused.status_code == 429
        assert refused.content == b"ThrottlerException: Too Many Requests"
        assert refused.headers["content-type"].startswith("text/")
        assert refused.headers["x-ratelimit-remaining"] == "0" and refused.headers["x-ratelimit-reset"] == "40"
        assert other.get(path).status_code == 429  # the other token is the same user's
        world.sleep(39)
        assert first.get(path).status_code == 429  # until the minute ends: a fixed window, no refill
        world.sleep(1)
        assert other.get(path).status_code != 429
        assert first.get(path).headers["x-ratelimit-remaining"] == "118"


def test_vyxops_reads_past_a_spent_window_without_a_429_whichever_function_it_asks_for() -> None:
    """130 reads of two functions (one endpoint to the server) wait out the window instead of meeting 429s."""
    from vyxops.fetch.budget import budget_for
    from vyxops.fetch.http import Api, bearer, make_client

    world = two_apps()
    clock = SandboxClock(world)
    creds = world.credentials
    client = make_client(
        "supabase-mgmt",
        MGMT,
        bearer(creds["supabase_access_token"]),
        transport=SandboxTransport(SandboxApp(world, autosave=False)),
    )
    api = Api(client, "supabase-mgmt", clock=clock)
    start = clock.now()
    for i in range(130):
        slug = ("provision-machine", "other-function")[i % 2]
        api.request("GET", f"/v1/projects/{creds['project_ref']}/functions/{slug}", ok=(404,))
    assert budget_for(clock).rate_limited == 0
    assert clock.now() - start >= 59

"""Live-path mistakes in the product clients, each pinned by a test that failed before its fix (issue 8).

Two kinds of test: against ``httpx.MockTransport`` where only the wire shape
matters (the exact bytes a real platform may send), and against a sandbox
scenario whose ``platform:`` block makes the sandbox answer as the real platform
does (sb_secret keys, macaroon tokens, Go's nulls, log retention).
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from vyxops.analysis import sources
from vyxops.core import config
from vyxops.core.contract import SEED
from vyxops.fetch import frames
from vyxops.fetch.http import Attempt, RegistryBasicAuth, RetryPolicy, supabase_key
from vyxops.fetch.session import Session, build_session, open_session
from vyxops.fetch.targets import Credentials, Opened
from vyxops.testing.clock import FakeClock
from vyxops.testing.schemas import check_frame
from vyxops_sandbox.testing import world_of

Handler = Callable[[httpx.Request], httpx.Response]
NOW = pd.Timestamp("2025-10-02T17:25:00Z")
SB_SECRET = "sb_secret_" + "k" * 32  # a canary: key-shaped, never real
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJyb2xlIjoic2VydmljZV9yb2xlIiwiaXNzIjoic3VwYWJhc2UifQ."
    "c2lnbmF0dXJlLW9mLWEtY2FuYXJ5LWp3dC1uZXZlci1yZWFs"
)


class FixedClock:
    def now(self) -> float:
        return NOW.value / 1e9

    def sleep(self, seconds: float) -> None:
        pass


def mock_session(
    handler: Handler, *, fly_token: str = "legacy-token-0000000000000000", key: str = SB_SECRET
) -> Session:
    """Real clients over a MockTransport: what the product sends and how it reads the answers."""
    opened = Opened(
        opener="mock",
        label="mock",
        description="mock transport",
        credentials=Credentials(fly_token, key, "sbp_" + "a" * 40, "mockprojectref0001"),
        clock=FixedClock(),
        supabase_url="https://mockprojectref0001.supabase.co",
        transport=httpx.MockTransport(handler),
    )
    return build_session(config.parse_target("live"), opened, retry=RetryPolicy(max_attempts=1))


def scenario_file(tmp_path: Path, platform: str, extra_steps: str = "", images: str = "") -> Path:
    """The seed incident with a ``platform:`` block (and optional steps), written to a file."""
    seed = (Path(__file__).resolve().parents[1] / "vyxops" / "scenarios" / "stub-image.yaml").read_text()
    text = seed.replace("name: stub-image", "name: stub-image-live").replace(
        "images:\n", f"platform: {platform}\nimages:\n{images}"
    )
    path = tmp_path / "stub-image-live.yaml"
    path.write_text(text + extra_steps)
    return path


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Callable[..., Session]]:
    opened: list[Session] = []

    def open_(platform: str, **kw: str) -> Session:
        s = open_session("sandbox", scenario=scenario_file(tmp_path, platform, **kw), sandbox_dir=tmp_path / "sb")
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.close()


# --------------------------------------------------------------------------- the registry password


def test_registry_password_is_the_fly_token_without_its_flyv1_scheme() -> None:
    """Basic x:<token without 'FlyV1 '>; a macaroon bundle stays comma-joined (fly-go's token helpers)."""
    request = httpx.Request("GET", "https://registry.fly.io/v2/")
    flow = RegistryBasicAuth("FlyV1 fm2_aaaaaaaaaaaaaaaaaaaa,fm2_bbbbbbbbbbbbbbbbbbbb").auth_flow(request)
    sent = next(flow)
    scheme, encoded = sent.headers["authorization"].split(" ", 1)
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "x:fm2_aaaaaaaaaaaaaaaaaaaa,fm2_bbbbbbbbbbbbbbbbbbbb"


def test_a_macaroon_token_can_check_a_manifest_on_the_sandbox_registry(sandbox: Callable[..., Session]) -> None:
    """With token: macaroon the registry accepts the product's Basic password: the stub tag is seen to exist."""
    s = sandbox("{fly: {token: macaroon}}")
    df = frames.fetch_manifests(s, ["registry.fly.io/vyx-app:stub"])
    assert df["exists"].tolist() == [True] and df["check"].tolist() == ["200"]


# --------------------------------------------------------------------------- Supabase keys


def test_an_sb_key_goes_in_the_apikey_header_only_and_a_jwt_in_both() -> None:
    """sb_secret_/sb_publishable_ keys are not JWTs: never an Authorization: Bearer; a JWT-shaped key is sent twice."""
    for key, bearer in ((SB_SECRET, None), ("sb_publishable_" + "p" * 32, None), (JWT, f"Bearer {JWT}")):
        sent = next(supabase_key(key).auth_flow(httpx.Request("POST", "https://x.supabase.co/functions/v1/f")))
        assert sent.headers["apikey"] == key
        assert sent.headers.get("authorization") == bearer


def test_rows_are_read_with_an_sb_secret_key(sandbox: Callable[..., Session]) -> None:
    """With api_key: sb_secret the PostgREST client sends the key as apikey only, and the gateway lets it read rows."""
    s = sandbox("{supabase: {api_key: sb_secret}}")
    rows = frames.fetch_machine_rows(s, SEED)
    assert rows["machine_id"].tolist() == ["5683732efe3208"]


def test_a_function_without_verify_jwt_is_invoked_with_an_sb_secret_key(sandbox: Callable[..., Session]) -> None:
    """verify_jwt: false and an sb_secret key: the invoke reaches the function (apikey header) and provisions."""
    s = sandbox("{supabase: {api_key: sb_secret, verify_jwt: false}}")
    status, body = s.supabase.invoke("provision-machine", {"user_id": "u-9"})
    assert status == 200 and body["status"] == "starting"


# --------------------------------------------------------------------------- Go's nulls


NULL_BODIES: dict[str, Any] = {
    "/v1/apps": {"total_apps": 0, "apps": None},
    "/v1/apps/vyx-app/machines": None,
    "/v1/apps/vyx-app/machines/5683732efe3208/events": None,
    # GraphQL answers every field a query selects (null when it has no value: the spec's ExecuteSelectionSet),
    # so the combined query's answer carries currentRelease, here null: an app never released.
    "/graphql": {"data": {"app": {"releases": {"nodes": None}, "currentRelease": None}}},
    "/api/v1/apps/vyx-app/logs": {"data": None, "meta": {"next_token": ""}},
    # The Management API's lists are JSON arrays, never null (NestJS; vyxops.core.answers): empty, they are [].
    "/v1/projects/mockprojectref0001/secrets": [],
    "/v1/projects/mockprojectref0001/functions": [],
    "/v1/projects/mockprojectref0001/analytics/endpoints/logs": {"result": None, "error": None},
}


def nulls(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path in NULL_BODIES:
        return httpx.Response(
            200, content=json.dumps(NULL_BODIES[path]).encode(), headers={"content-type": "application/json"}
        )
    return httpx.Response(404, json={"message": "not here"})


def test_null_lists_from_every_api_read_as_empty_frames() -> None:
    """`null` where a list is expected (Go's nil slice) is an empty list: every fetcher returns an empty frame."""
    s = mock_session(nulls)
    m, e = frames.fetch_machines(s, "vyx-app")
    got = {
        "apps": frames.fetch_apps(s),
        "machines": m,
        "releases": frames.fetch_releases(s, "vyx-app"),
        "secrets": frames.fetch_secrets(s),
        "functions": frames.fetch_functions(s),
        "function_logs": frames.fetch_function_logs(s, NOW - pd.Timedelta(hours=1), NOW),
        "fly_logs": frames.fetch_fly_logs(s, "vyx-app", since=NOW - pd.Timedelta(hours=1)),
    }
    for name, df in got.items():
        check_frame(name, df)
        assert df.empty, name
    assert e.empty


def test_null_lists_from_the_sandbox_read_as_empty(sandbox: Callable[..., Session]) -> None:
    """fly.empty_as_null: the events of a machine list and a machine without metadata read without a crash."""
    s = sandbox("{fly: {empty_as_null: true}}")
    world_of(s).create_machine("vyx-app", {"image": "registry.fly.io/vyx-app:stub"}, machine_id="aaaaaaaaaaaaaa")
    m, _ = frames.fetch_machines(s, "vyx-app")
    assert set(m["machine_id"]) == {"5683732efe3208", "aaaaaaaaaaaaaa"}
    assert m.set_index("machine_id").loc["aaaaaaaaaaaaaa", "user_id"] is pd.NA


def test_secrets_without_updated_at_read_as_a_null_time(sandbox: Callable[..., Session]) -> None:
    """secrets_updated_at: false: the secrets frame has every name and digest and a null updated_at."""
    s = sandbox("{supabase: {secrets_updated_at: false}}")
    df = frames.fetch_secrets(s)
    assert "DOCKER_IMAGE" in set(df["name"]) and df["updated_at"].isna().all()


# --------------------------------------------------------------------------- Fly logs


def test_the_first_fly_logs_request_backfills_from_the_windows_start() -> None:
    """Fly's docs: next_token is a ns timestamp that can "backfill from a specific moment" and the API
    answers lines after it: the first request asks from just before the window's start."""
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        token = "1759422001123456789" if len(seen) == 1 else request.url.params.get("next_token", "")
        return httpx.Response(200, json={"data": [], "meta": {"next_token": token}})

    frames.fetch_fly_logs(mock_session(handler), "vyx-app", since=NOW - pd.Timedelta(hours=2))
    assert seen[0]["next_token"] == str((NOW - pd.Timedelta(hours=2)).value - 1)


def test_fly_logs_the_api_cannot_reach_are_a_gap_not_an_empty_past(sandbox: Callable[..., Session]) -> None:
    """250 lines in the last hour, an 8-day window: every line is read, from the oldest; the day before the
    API's ~7-day retention is a gap on the frame, one that does not decide health."""
    s = sandbox("{}")
    app = world_of(s).app("vyx-app")
    base = (world_of(s).now_ms - 3_600_000) * 1_000_000
    for i in range(250):
        line = {"ts_ns": base + i * 1_000_000_000, "message": f"line {i}", "level": "info", "instance": "i"}
        app["logs"].append({**line, "region": "sjc", "provider": "app"})
    logs = frames.fetch_fly_logs(s, "vyx-app", since=s.now() - pd.Timedelta(days=8))
    lines = [text for text in logs["message"] if text.startswith("line ")]
    assert lines == [f"line {i}" for i in range(250)]
    [gap] = sources.coverage("fly_logs", logs)  # as the evidence holds it: the table says whether it decides
    assert gap.source == "fly.logs" and gap.decides is False
    assert (gap.since, gap.until) == ("2025-09-24T17:25:00Z", "2025-09-25T17:25:00Z")
    assert logs.attrs["complete"] is False


def test_fly_logs_within_the_reach_of_one_page_have_no_gap(sandbox: Callable[..., Session]) -> None:
    """A window inside the last 24 h whose lines fit one page is complete."""
    s = sandbox("{}")
    logs = frames.fetch_fly_logs(s, "vyx-app", since=s.now() - pd.Timedelta(hours=2))
    assert logs.attrs["complete"] and logs.attrs["gaps"] == [] and len(logs) > 0


# --------------------------------------------------------------------------- function logs


def test_function_logs_past_the_plans_retention_are_a_gap(sandbox: Callable[..., Session]) -> None:
    """plan: free keeps a day: a three-day window gets a gap for the two days the plan no longer keeps."""
    s = sandbox("{supabase: {plan: free}}")
    df = frames.fetch_function_logs(s, s.now() - pd.Timedelta(days=3), s.now())
    [gap] = df.attrs["gaps"]
    assert gap["source"] == "supabase.function_logs"
    assert (gap["since"], gap["until"]) == ("2025-09-29T17:25:00Z", "2025-10-01T17:25:00Z")
    assert "free" in gap["why"] and df.attrs["complete"] is False


def test_function_logs_inside_the_plans_retention_have_no_gap(sandbox: Callable[..., Session]) -> None:
    """plan: pro keeps 7 days: a three-day window is complete."""
    s = sandbox("{supabase: {plan: pro}}")
    df = frames.fetch_function_logs(s, s.now() - pd.Timedelta(days=3), s.now())
    assert df.attrs["gaps"] == [] and df.attrs["complete"]


def test_an_unreadable_plan_assumes_the_shortest_retention_any_plan_keeps() -> None:
    """Without the project's plan (403), the fetcher assumes Free's day: older parts of the window are a gap."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/analytics/endpoints/logs"):
            return httpx.Response(200, json={"result": [], "error": None})
        return httpx.Response(403, json={"message": "Forbidden resource"})

    df = frames.fetch_function_logs(mock_session(handler), NOW - pd.Timedelta(days=2), NOW)
    [gap] = df.attrs["gaps"]
    assert gap["until"] == "2025-10-01T17:25:00Z" and "could not be read" in gap["why"]


def test_function_logs_near_a_window_edge_survive_the_endpoints_minute_rounding(
    sandbox: Callable[..., Session],
) -> None:
    """The endpoint rounds bounds to the nearest minute; rows 10 s inside either edge of the window are still read."""
    s = sandbox("{}")
    world = world_of(s)
    until = pd.Timestamp("2025-10-02T17:20:20Z")
    since = pd.Timestamp("2025-10-02T17:10:40Z")
    for log_id, at in (
        ("after-start", since + pd.Timedelta(seconds=10)),
        ("before-end", until - pd.Timedelta(seconds=10)),
    ):
        world.state["supabase"]["logs"].append(
            {
                "id": log_id,
                "timestamp_us": int(at.value // 1000),
                "source": "function_logs",
                "event_message": f"{log_id}\n",
                "severity_text": "INFO",
                "log_attributes": {"level": "info", "event_type": "Log", "function_id": "f", "execution_id": "e"},
            }
        )
    df = frames.fetch_function_logs(s, since, until, sources=("function_logs",))
    assert {"after-start", "before-end"} <= set(df["log_id"])


# --------------------------------------------------------------------------- registry answers


def registry(
    status: int, *, body: bytes = b"", headers: dict[str, str] | None = None, get: httpx.Response | None = None
) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and get is not None:
            return get
        return httpx.Response(status, content=b"" if request.method == "HEAD" else body, headers=headers or {})

    return handler


def unknown(code: str) -> httpx.Response:
    body = {"errors": [{"code": code, "message": "unknown", "detail": None}]}
    return httpx.Response(404, json=body, headers={"docker-distribution-api-version": "registry/2.0"})


@pytest.mark.parametrize(
    ("handler", "exists", "check"),
    [
        (registry(200, headers={"docker-content-digest": "sha256:" + "a" * 64}), True, "200"),
        (registry(200, body=b"<html>portal</html>"), None, "200 without Docker-Content-Digest"),
        (registry(404, get=unknown("MANIFEST_UNKNOWN")), False, "404 MANIFEST_UNKNOWN"),
        (registry(404, get=unknown("NAME_UNKNOWN")), False, "404 NAME_UNKNOWN"),
        (registry(404, get=httpx.Response(404, text="404 page not found\n")), None, "404 not a registry answer"),
        (registry(401), None, "401 denied"),
        (registry(403), None, "403 denied"),
        (registry(400), None, "400"),
    ],
    ids=["200-digest", "200-no-digest", "manifest-unknown", "name-unknown", "route-404", "401", "403", "400"],
)
def test_a_manifest_exists_only_with_a_digest_and_is_missing_only_when_the_registry_says_so(
    handler: Handler, exists: bool | None, check: str
) -> None:
    """exists is True only for 200 + Docker-Content-Digest, False only for MANIFEST_UNKNOWN/NAME_UNKNOWN; else a gap."""
    df = frames.fetch_manifests(mock_session(handler), ["registry.fly.io/other-app:v1"])
    got = df.iloc[0]
    assert (None if pd.isna(got["exists"]) else bool(got["exists"])) == exists
    assert got["check"] == check
    gaps = df.attrs["gaps"]
    assert (gaps == []) == (exists is not None)
    if gaps:
        assert gaps[0]["source"] == "fly.registry" and "registry.fly.io/other-app:v1" in gaps[0]["why"]


def test_a_repository_the_token_may_not_see_is_a_gap_not_the_end_of_the_investigation(
    sandbox: Callable[..., Session],
) -> None:
    """A deploy token for vyx-app: another repository's HEAD is 401, read as 'could not check', and the rest goes on."""
    s = sandbox("{fly: {token_apps: [vyx-app]}}", images="  registry.fly.io/shared-base:v1: {behaviour: serve}\n")
    df = frames.fetch_manifests(s, ["registry.fly.io/shared-base:v1", "registry.fly.io/vyx-app:stub"]).set_index("ref")
    assert pd.isna(df.loc["registry.fly.io/shared-base:v1", "exists"])
    assert df.loc["registry.fly.io/shared-base:v1", "check"] == "401 denied"
    assert bool(df.loc["registry.fly.io/vyx-app:stub", "exists"])
    assert [g["source"] for g in df.attrs["gaps"]] == ["fly.registry"]


def test_fly_logs_follow_the_tokens_the_api_returns_to_the_end() -> None:
    """Each page's next_token is sent back as given, until a page comes back empty; every line is read once."""
    start = frames.fly_log_token(NOW - pd.Timedelta(hours=1))
    pages = {start: (["a", "b"], "100"), "100": (["c"], "200"), "200": ([], "200")}
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("next_token")
        sent.append(token)
        lines, nxt = pages[token]
        data = [{"id": x, "attributes": {"timestamp": "2025-10-02T17:00:00Z", "message": x}} for x in lines]
        return httpx.Response(200, json={"data": data, "meta": {"next_token": nxt}})

    logs = frames.fetch_fly_logs(mock_session(handler), "vyx-app", since=NOW - pd.Timedelta(hours=1))
    assert sent == [start, "100", "200"] and logs["message"].tolist() == ["a", "b", "c"]
    assert logs.attrs["gaps"] == []


def test_fly_logs_stop_at_the_first_page_that_passes_the_windows_end() -> None:
    """A page whose lines pass the window's end (until) ends the read: the lines after it are not the window's."""
    sent: list[str | None] = []
    times = {"a": "2025-10-02T17:00:00Z", "b": "2025-10-02T17:25:00.5Z"}

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.params.get("next_token"))
        data = [{"id": x, "attributes": {"timestamp": t, "message": x}} for x, t in times.items()]
        return httpx.Response(200, json={"data": data if len(sent) == 1 else [], "meta": {"next_token": "100"}})

    s = mock_session(handler)
    logs = frames.fetch_fly_logs(s, "vyx-app", since=NOW - pd.Timedelta(hours=1), until=NOW)
    assert len(sent) == 1 and logs["message"].tolist() == ["a"] and logs.attrs["gaps"] == []
    sent.clear()  # a window that reaches past its lines reads on until a page comes back empty
    logs = frames.fetch_fly_logs(s, "vyx-app", since=NOW - pd.Timedelta(hours=1), until=NOW + pd.Timedelta(seconds=1))
    assert sent[1:] == ["100"] and logs["message"].tolist() == ["a", "b"]


class CountingPolicy(RetryPolicy):
    """The default policy, counting the 429 pauses it is asked for."""

    asked: int = 0

    def rate_limit_delay(self, limited: int, rng: random.Random, retry_after: str | None, now: float) -> float:
        self.asked += 1
        return super().rate_limit_delay(limited, rng, retry_after, now)


def test_a_429_then_200_is_retried_by_one_loop_for_the_management_api_and_postgrest() -> None:
    """The Management API (Api) and PostgREST (supabase-py's own client) meet a 429 then a 200: one retry
    layer under both asks the one policy for the pause, waits the Retry-After on the session's clock, and
    tells the same attempts (1: 429, 2: 200) to a watcher: no second loop with rules of its own."""
    answered: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        answered[request.url.path] = answered.get(request.url.path, 0) + 1
        if answered[request.url.path] == 1:
            return httpx.Response(429, headers={"retry-after": "3"}, text="ThrottlerException: Too Many Requests")
        if request.url.path.startswith("/rest/v1/"):
            return httpx.Response(200, json=[], headers={"content-range": "*/0"})
        return httpx.Response(200, json={"id": "mockprojectref0001", "status": "ACTIVE_HEALTHY"})

    clock, policy = FakeClock(), CountingPolicy()
    opened = Opened(
        opener="mock",
        label="mock",
        description="mock transport",
        credentials=Credentials("legacy-token-0000000000000000", SB_SECRET, "sbp_" + "a" * 40, "mockprojectref0001"),
        clock=clock,
        supabase_url="https://mockprojectref0001.supabase.co",
        transport=httpx.MockTransport(handler),
    )
    seen: list[Attempt] = []
    with build_session(config.parse_target("live"), opened, retry=policy) as s:
        s.watch(seen.append)
        s.supabase.mgmt.get_json("/v1/projects/mockprojectref0001")
        assert s.supabase.select_all("machines").rows == []
    tries = {p: [(a.outcome, a.number) for a in seen if a.platform == p] for p in ("supabase-mgmt", "supabase-rest")}
    assert tries["supabase-mgmt"] == tries["supabase-rest"] == [("429", 1), ("200", 2)]
    assert policy.asked == 2 and sum(clock.sleeps) >= 6.0  # each waited out its Retry-After, on the session's clock

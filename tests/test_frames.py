"""Fetchers against the sandbox: schemas, paging, faults and credentials."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import pytest

from vyxops.core.contract import SEED
from vyxops.core.errors import AuthError, RateLimitedError, TransportError
from vyxops.core.images import secret_digest
from vyxops.fetch import frames
from vyxops.fetch.http import RetryPolicy
from vyxops.fetch.session import open_session
from vyxops.testing.schemas import check_frame
from vyxops_sandbox.faults import FaultRule, Faults
from vyxops_sandbox.testing import world_of

SEED_MACHINE = "5683732efe3208"


@pytest.fixture
def seed(tmp_path: Path):
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as s:
        yield s


def test_every_frame_matches_its_declared_schema(seed) -> None:
    """Each fetcher returns exactly the columns and dtypes declared in SCHEMAS, times in UTC."""
    m, e = frames.fetch_machines(seed, "vyx-app")
    got = {
        "machines": m,
        "machine_events": e,
        "releases": frames.fetch_releases(seed, "vyx-app"),
        "manifests": frames.fetch_manifests(seed, ["registry.fly.io/vyx-app:stub"]),
        "fly_logs": frames.fetch_fly_logs(seed, "vyx-app", since=seed.now() - pd.Timedelta(hours=20)),
        "machine_rows": frames.fetch_machine_rows(seed, SEED),
        "secrets": frames.fetch_secrets(seed),
        "functions": frames.fetch_functions(seed),
        "function_logs": frames.fetch_function_logs(seed, seed.now() - pd.Timedelta(hours=3), seed.now()),
    }
    for name, df in got.items():
        check_frame(name, df)
        assert df.attrs["complete"] is True, name
        assert not df.empty, name


def test_destroyed_machine_is_found_with_include_deleted(seed) -> None:
    """The seed's machine is invisible to a plain list but present, destroyed, with include_deleted."""
    plain, _ = frames.fetch_machines(seed, "vyx-app", include_deleted=False)
    assert plain.empty
    m, e = frames.fetch_machines(seed, "vyx-app")
    row = m.set_index("machine_id").loc[SEED_MACHINE]
    assert row["state"] == "destroyed" and bool(row["auto_destroy"])
    exits = e[(e["machine_id"] == SEED_MACHINE) & (e["type"] == "exit")]
    assert exits["exit_code"].tolist() == [0]
    assert e[e["machine_id"] == SEED_MACHINE]["type"].tolist() == ["destroy", "exit", "start", "launch"]


def test_secret_digest_is_sha256_of_the_stub_reference(seed) -> None:
    """The Management API shows DOCKER_IMAGE as the SHA-256 of registry.fly.io/vyx-app:stub, never the value."""
    s = frames.fetch_secrets(seed).set_index("name")
    assert s.loc["DOCKER_IMAGE", "digest"] == secret_digest("registry.fly.io/vyx-app:stub")
    assert "registry.fly.io/vyx-app:stub" not in s["digest"].tolist()


def test_stub_tag_exists_in_the_registry(seed) -> None:
    """HEAD on the stub manifest is 200 with a digest; a tag never pushed is reported missing."""
    df = frames.fetch_manifests(seed, ["registry.fly.io/vyx-app:stub", "registry.fly.io/vyx-app:nope"]).set_index("ref")
    assert bool(df.loc["registry.fly.io/vyx-app:stub", "exists"]) and df.loc[
        "registry.fly.io/vyx-app:stub", "digest"
    ].startswith("sha256:")
    assert not bool(df.loc["registry.fly.io/vyx-app:nope", "exists"])


def test_releases_newest_first_with_the_current_one_marked(seed) -> None:
    """Releases come newest first; v2 is current and runs the deployment-01K6JV… image."""
    r = frames.fetch_releases(seed, "vyx-app")
    assert r["version"].tolist() == [2, 1]
    assert r["current"].tolist() == [True, False]
    assert r.iloc[0]["image"].endswith("deployment-01K6JV132H7B7Y5PP8Y5QSR23X")


def test_function_logs_name_the_machine_and_image(seed) -> None:
    """Function logs in the window show the invocation and the console line with the machine id and stub image."""
    logs = frames.fetch_function_logs(seed, pd.Timestamp("2025-10-02T16:00:00Z"), pd.Timestamp("2025-10-02T17:00:00Z"))
    console = logs[logs["source"] == "function_logs"]["message"].str.cat(sep="\n")
    assert SEED_MACHINE in console and "registry.fly.io/vyx-app:stub" in console
    inv = logs[logs["source"] == "function_edge_logs"]
    assert inv["status_code"].tolist() == [200]
    named = frames.fetch_function_logs(
        seed,
        pd.Timestamp("2025-10-02T16:00:00Z"),
        pd.Timestamp("2025-10-02T17:00:00Z"),
        functions=frames.fetch_functions(seed),
    )
    assert set(named["function"].dropna()) == {"provision-machine"}


def test_function_logs_over_two_days_are_read_in_24h_windows(seed) -> None:
    """A window longer than 24 h is split into queries the endpoint accepts, and nothing is lost."""
    wide = frames.fetch_function_logs(seed, seed.now() - pd.Timedelta(days=3), seed.now())
    narrow = frames.fetch_function_logs(
        seed, pd.Timestamp("2025-10-02T16:00:00Z"), pd.Timestamp("2025-10-02T17:00:00Z")
    )
    assert sorted(wide["log_id"]) == sorted(narrow["log_id"])


def _many_machines(tmp_path: Path, n: int):
    session = open_session("sandbox", scenario="healthy", sandbox_dir=tmp_path)
    world = world_of(session)
    for i in range(n):
        world.create_machine(
            "vyx-app", {"image": "registry.fly.io/vyx-app:latest", "auto_destroy": False}, machine_id=f"m{i:013d}"
        )
    world.advance_to(world.now_ms + 10_000)
    return session


def test_machine_list_pages_past_one_page(tmp_path: Path) -> None:
    """Listing follows fly-next-cursor until every machine is read."""
    session = _many_machines(tmp_path, 25)
    pages = list(session.fly.iter_machine_pages("vyx-app", page_size=10))
    assert len(pages) == 3
    m, _ = frames.fetch_machines(session, "vyx-app")
    assert len(m) == 26 and m["machine_id"].is_unique


def test_rows_are_paged_past_the_silent_1000_row_cap(tmp_path: Path) -> None:
    """2,500 rows come back whole, though PostgREST returns at most 1000 per request."""
    session = open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path)
    table = world_of(session).table("machines")
    for i in range(2499):
        table["rows"].append({**table["rows"][0], "id": f"row-{i:05d}", "fly_machine_id": f"x{i}"})
    raw = session.supabase.client.table("machines").select("id").execute()
    assert len(raw.data) == 1000  # the cap, silently
    rows = frames.fetch_machine_rows(session, SEED)
    assert len(rows) == 2500 and rows["id"].is_unique and rows.attrs["complete"]


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(kind="429", nth=1, retry_after=2),
        FaultRule(kind="429", nth=1),
        FaultRule(kind="5xx", nth=1, status=502),
        FaultRule(kind="timeout", nth=1),
        FaultRule(kind="latency", rate=1.0, latency_ms=1500),
    ],
    ids=["429-retry-after", "429-bare", "502", "timeout", "latency"],
)
def test_fetchers_ride_out_one_injected_fault(tmp_path: Path, rule: FaultRule) -> None:
    """A transient fault on a read is retried with backoff and the frame still comes back whole."""
    faults = Faults([FaultRule(**{**rule.__dict__, "path": r"/v1/apps/vyx-app/machines", "seen": 0, "fired": 0})])
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path, faults=faults) as s:
        before = s.now()
        m, _ = frames.fetch_machines(s, "vyx-app")
        assert SEED_MACHINE in set(m["machine_id"])
        assert faults.rules[0].fired >= 1
        if rule.kind == "429" and rule.retry_after:
            assert s.now() - before >= pd.Timedelta(seconds=2)  # waited as told, on the virtual clock


def test_rows_ride_out_a_503_through_supabase_py(tmp_path: Path) -> None:
    """PostgREST reads through supabase-py are retried by vyxops's transport on a 503."""
    faults = Faults([FaultRule(kind="5xx", nth=1, status=503, path=r"/rest/v1/")])
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path, faults=faults) as s:
        rows = frames.fetch_machine_rows(s, SEED)
        assert rows["machine_id"].tolist() == [SEED_MACHINE]
        assert faults.rules[0].fired == 1


def test_persistent_429_becomes_a_rate_limited_error(tmp_path: Path) -> None:
    """A platform that keeps answering 429 yields RateLimitedError naming the platform, after the retries."""
    faults = Faults([FaultRule(kind="429", rate=1.0, path=r"/graphql")])
    with open_session(
        "sandbox",
        scenario="stub-image",
        sandbox_dir=tmp_path,
        faults=faults,
        retry=RetryPolicy(max_attempts=2, max_rate_limited=5, base_delay=0.1),
    ) as s:
        with pytest.raises(RateLimitedError) as err:
            frames.fetch_releases(s, "vyx-app")
    assert err.value.platform == "fly-api" and err.value.status == 429
    assert faults.rules[0].fired == 5  # 429s have their own allowance, not max_attempts


def test_malformed_body_is_a_transport_error(tmp_path: Path) -> None:
    """A body that is not JSON is reported as a malformed answer, not a crash."""
    faults = Faults([FaultRule(kind="malformed", rate=1.0, path=r"/secrets")])
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path, faults=faults) as s:
        with pytest.raises(TransportError, match="malformed"):
            frames.fetch_secrets(s)


def test_create_is_not_retried_after_a_timeout(tmp_path: Path) -> None:
    """A machine create whose answer timed out is not sent again: it may have been made."""
    faults = Faults([FaultRule(kind="timeout", nth=1, method="POST", path=r"/machines$", when="after")])
    with open_session("sandbox", scenario="healthy", sandbox_dir=tmp_path, faults=faults) as s:
        before = len(world_of(s).app("vyx-app")["machines"])
        with pytest.raises(TransportError):
            s.fly.create_machine("vyx-app", {"image": "registry.fly.io/vyx-app:latest"})
        assert len(world_of(s).app("vyx-app")["machines"]) == before + 1  # made once, not twice


def test_wrong_credentials_get_auth_errors_without_the_token(tmp_path: Path) -> None:
    """Every platform refuses a wrong token with AuthError, and the error text never holds the token."""
    from vyxops.fetch.clients.fly import FlyClient
    from vyxops.fetch.http import Api, bearer, fly, make_client, registry_basic
    from vyxops_sandbox.router import SandboxApp, SandboxTransport

    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as s:
        transport = SandboxTransport(SandboxApp(world_of(s)))
        bad = "fm2_" + "wrongtoken" * 3  # a canary: token-shaped, never real
        client = FlyClient(
            Api(make_client("fly-machines", "https://api.machines.dev", fly(bad), transport=transport), "fly-machines"),
            Api(make_client("fly-api", "https://api.fly.io", fly(bad), transport=transport), "fly-api"),
            Api(
                make_client("fly-registry", "https://registry.fly.io", registry_basic(bad), transport=transport),
                "fly-registry",
            ),
        )
        with pytest.raises(AuthError) as err:
            client.list_machines("vyx-app")
        assert bad not in str(err.value) and bad not in repr(err.value.args)
        # The registry's 401 is "could not check" (a repository the token may not see), not an error.
        answer = client.head_manifest("registry.fly.io/vyx-app:stub")
        assert answer["exists"] is None and answer["check"] == "401 denied" and bad not in str(answer)
        mgmt = Api(
            make_client(
                "supabase-mgmt",
                "https://api.supabase.com",
                bearer("sbp_wrong00000000000000000000000000"),
                transport=transport,
            ),
            "supabase-mgmt",
        )
        with pytest.raises(AuthError):
            mgmt.get_json(f"/v1/projects/{s.project_ref}/secrets")
        rest = httpx.Client(transport=transport)
        answer = rest.get(
            f"https://{s.project_ref}.supabase.co/rest/v1/machines",
            headers={"apikey": "nope", "authorization": "Bearer nope"},
        )
        assert answer.status_code == 401 and answer.json()["message"] == "Invalid API key"


def add_console_log(session: object, log_id: str, at_us: int) -> None:
    """Append one console-output row to the sandbox's Supabase logs."""
    world_of(session).state["supabase"]["logs"].append(  # type: ignore[attr-defined]
        {
            "id": log_id,
            "timestamp_us": at_us,
            "source": "function_logs",
            "event_message": f"{log_id}\n",
            "severity_text": "INFO",
            "log_attributes": {"level": "info", "event_type": "Log", "function_id": "f", "execution_id": "e"},
        }
    )


def test_function_logs_page_by_time_past_the_query_limit(tmp_path: Path) -> None:
    """2,500 function log rows in one window are all read though each query returns at most 1,000."""
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as s:
        start_us = (world_of(s).now_ms - 1_800_000) * 1000
        for i in range(2500):
            add_console_log(s, f"bulk-{i:05d}", start_us + i * 500_000)
        df = frames.fetch_function_logs(s, s.now() - pd.Timedelta(hours=1), s.now(), sources=("function_logs",))
        bulk = df[df["log_id"].str.startswith("bulk-")]
        assert len(bulk) == 2500 and bulk["log_id"].is_unique
        assert df.attrs["complete"]


def test_function_logs_sharing_one_microsecond_past_the_query_limit_are_all_read(tmp_path: Path) -> None:
    """2,300 rows stamped with the same microsecond (and some around them) are read once each, and the frame says
    complete."""
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as s:
        same_us = (world_of(s).now_ms - 600_000) * 1000
        for i, at in enumerate([same_us] * 2300 + [same_us - 1, same_us + 1] * 5):
            add_console_log(s, f"tie-{i:05d}", at)
        df = frames.fetch_function_logs(s, s.now() - pd.Timedelta(hours=1), s.now(), sources=("function_logs",))
    ties = df[df["log_id"].str.startswith("tie-")]
    assert len(ties) == 2310 and ties["log_id"].is_unique
    assert df.attrs["complete"]


def test_function_logs_past_a_full_page_are_read_in_slices_side_by_side_in_the_order_one_by_one_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past a full first page, the rest of the window is read in time slices at once (two round trips
    for 2,500 rows, not three), and the rows, ties included, come in the order pages read one after
    another give them."""
    from vyxops.fetch import logreads
    from vyxops.testing.overlap import Overlap

    def read(slices: int) -> tuple[list[str], int, int]:
        monkeypatch.setattr(logreads, "LOG_SLICES", slices)
        overlap, calls = Overlap(), []
        query = session.supabase.query_logs

        def watched(sql: str, start: str, end: str) -> list[dict[str, object]]:
            calls.append(sql)
            with overlap.call(lasting=0.05):
                return query(sql, start, end)

        monkeypatch.setattr(session.supabase, "query_logs", watched)
        df = frames.fetch_function_logs(session, session.now() - pd.Timedelta(hours=1), session.now(),
                                        sources=("function_logs",))  # fmt: skip
        assert df.attrs["complete"]
        return df["log_id"].tolist(), len(calls), overlap.most

    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as session:
        start_us = (world_of(session).now_ms - 1_800_000) * 1000
        for i in range(2500):
            add_console_log(session, f"bulk-{i:05d}", start_us + i * 500_000)
        for i in range(300):  # ties on one microsecond, in the part past the first page
            add_console_log(session, f"tie-{i:03d}", start_us + 600 * 500_000)
        most = logreads.LOG_SLICES
        sliced, queries, together = read(most)
        one_by_one, pages, alone = read(1)
    assert len(sliced) == len(set(sliced)) == 2800 + len([x for x in sliced if not x.startswith(("bulk", "tie"))])
    assert sliced == one_by_one
    assert alone == 1 and pages == 3  # one slice: three pages in a row
    # the rest at once: as many slices as the first page's density guesses, at most LOG_SLICES
    assert together >= 2 and queries <= 1 + most + 1  # (a slice may still page once)


def test_function_logs_on_a_window_edge_are_read_once(tmp_path: Path) -> None:
    """A row exactly on the boundary between two 24 h windows is read once."""
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as s:
        until = s.now()
        add_console_log(s, "on-the-edge", int((until - pd.Timedelta(hours=24)).value // 1000))
        df = frames.fetch_function_logs(s, until - pd.Timedelta(hours=30), until, sources=("function_logs",))
    assert (df["log_id"] == "on-the-edge").sum() == 1


def test_apps_have_their_schema(seed) -> None:
    """fetch_apps lists the org's apps (a machine's events, exit code unpacked: the include_deleted test)."""
    apps = frames.fetch_apps(seed)
    check_frame("apps", apps)
    assert apps["app"].tolist() == ["vyx-app"]

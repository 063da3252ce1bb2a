"""The sandbox the CLI serves to its notebook kernel behaves as the in-process one.

Same answers, same virtual clock, same faults, and what a notebook changes is
saved. Sessions find it through ``$VYXOPS_SANDBOX_URL``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from vyxops.analysis.investigate import investigate
from vyxops.core.errors import ConfigError, VyxopsError
from vyxops.fetch.session import open_session
from vyxops_sandbox.faults import FaultRule, Faults
from vyxops_sandbox.hosted import ENV, HostedSandbox
from vyxops_sandbox.server import make_server
from vyxops_sandbox.testing import world_of
from vyxops_sandbox.world import World

APP = "vyx-app"


@pytest.fixture
def hosted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HostedSandbox]:
    """The seed world served on the virtual clock, named in the environment as the CLI names it for its kernel."""
    h = serve_scenario("stub-image", tmp_path / "served", monkeypatch)
    yield h
    h.stop()


def serve_scenario(name: str, directory: Path, monkeypatch: pytest.MonkeyPatch) -> HostedSandbox:
    """Serve scenario ``name`` from ``directory`` and name it in the environment."""
    h = HostedSandbox.reserve()
    h.start(World.load(name, directory), loaded_as=name)
    monkeypatch.setenv(ENV, h.url)
    return h


@pytest.mark.parametrize("scenario", ["stub-image", "image-pull-fails", "machine-never-reports", "healthy"])
def test_served_investigation_is_the_in_process_one(
    scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Findings, summary and timeline from the served sandbox equal the in-process ones, byte for byte."""
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "local") as local:
        assert local.opened_by == "sandbox"  # sandbox_dir given: in-process, whatever the environment says
        app = next(iter(world_of(local).state["fly"]["apps"]))
        expected = investigate(local, app)
    h = serve_scenario(scenario, tmp_path / "served", monkeypatch)
    try:
        with open_session("sandbox", scenario=scenario) as served:
            assert served.opened_by == "sandbox-served" and served.label == f"sandbox:{scenario}"
            got = investigate(served, app)
    finally:
        h.stop()
    assert json.dumps(got.document, sort_keys=True) == json.dumps(expected.document, sort_keys=True)
    pd.testing.assert_frame_equal(got.timeline, expected.timeline)


def test_a_wait_moves_the_served_virtual_clock_and_nothing_else_does(hosted: HostedSandbox) -> None:
    """Reading does not move the served clock; a session's sleep moves it by exactly that much."""
    assert hosted.world is not None
    start = hosted.world.now_ms
    with open_session("sandbox") as session:
        session.fly.releases(APP)
        assert session.now() == pd.Timestamp(start, unit="ms", tz="UTC")
        session.clock.sleep(90)
        assert session.now() == pd.Timestamp(start + 90_000, unit="ms", tz="UTC")
    assert hosted.world.now_ms == start + 90_000


def test_an_injected_timeout_reaches_the_client_as_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A timeout fault on GraphQL gives the same vyxops error, served or in-process."""
    errors = []
    for where in ("local", "served"):
        directory = tmp_path / where
        World.load("stub-image", directory)
        Faults([FaultRule(kind="timeout", path="/graphql")]).save(directory)
        h = serve_scenario("stub-image", directory, monkeypatch) if where == "served" else None
        try:
            with (
                open_session("sandbox", sandbox_dir=None if h else directory) as session,
                pytest.raises(VyxopsError) as caught,
            ):
                session.fly.releases(APP)
            errors.append((type(caught.value), str(caught.value)))
        finally:
            if h:
                h.stop()
                monkeypatch.delenv(ENV)
    assert errors[0] == errors[1]
    assert "timed out" in errors[0][1] or "timeout" in errors[0][1].lower()


def test_what_a_notebook_changes_is_saved_when_serving_stops(hosted: HostedSandbox, tmp_path: Path) -> None:
    """A row updated over HTTP is in the sandbox's state.json once the CLI stops serving."""
    with open_session("sandbox") as session:
        changed = session.supabase.update_rows("machines", {"status": "failed"}, [("status", "eq", "starting")])
    assert len(changed) == 1
    hosted.stop()
    hosted.stop()  # twice is harmless
    saved = World.open(tmp_path / "served")
    assert saved is not None
    rows = saved.state["supabase"]["tables"][saved.state["supabase"]["machines_table"]]["rows"]
    assert [r["status"] for r in rows if r["id"] == changed[0]["id"]] == ["failed"]


def test_a_session_refuses_a_served_sandbox_that_holds_another_scenario(hosted: HostedSandbox) -> None:
    """Asking for one scenario from a sandbox serving another is a ConfigError naming both, not a silent mix-up."""
    with pytest.raises(ConfigError) as caught:
        open_session("sandbox", scenario="healthy")
    assert "stub-image" in str(caught.value) and "healthy" in str(caught.value)
    with open_session("sandbox", scenario="stub-image") as session:  # the one it holds is fine
        assert session.label == "sandbox:stub-image"


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1:8787", "http://example.com:8787", "127.0.0.1:8787", "http://127.0.0.1"]
)
def test_a_sandbox_url_that_is_not_a_local_server_is_refused_by_name(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """VYXOPS_SANDBOX_URL must be http://127.0.0.1:PORT; the error names the variable and the valid form."""
    monkeypatch.setenv(ENV, url)
    with pytest.raises(ConfigError) as caught:
        open_session("sandbox")
    assert "VYXOPS_SANDBOX_URL" in str(caught.value) and "http://127.0.0.1:PORT" in (caught.value.hint or "")


def test_no_server_at_the_sandbox_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening at VYXOPS_SANDBOX_URL gives a ConfigError saying so and how to start one."""
    h = HostedSandbox.reserve()
    url = h.url
    h.stop()  # the port is free again: nothing answers there
    monkeypatch.setenv(ENV, url)
    with pytest.raises(ConfigError) as caught:
        open_session("sandbox")
    assert url in str(caught.value) and "sandbox serve" in (caught.value.hint or "")


def test_a_session_can_use_vyxops_sandbox_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against `vyxops sandbox serve` (real time), a session finds the seed's root cause through the same variable."""
    world = World.load("stub-image", tmp_path / "serve")
    server = make_server(world, port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host, port = server.server_address[:2]
        monkeypatch.setenv(ENV, f"http://{host}:{port}")
        with open_session("sandbox") as session:
            assert session.opened_by == "sandbox-served"
            inv = investigate(session, APP)
        assert inv.root is not None and inv.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
    finally:
        server.shutdown()
        server.server_close()


def test_the_cli_names_the_served_sandbox_to_the_kernel_only(sandbox_env: Path, tmp_path: Path) -> None:
    """`vyxops investigate` serves the sandbox to its kernel, leaving no VYXOPS_SANDBOX_URL in its own environment."""
    from vyxops.shell.cli import main

    assert ENV not in os.environ
    assert main(["investigate", "--scenario", "stub-image", "--app", APP, "--out", str(tmp_path / "out")]) == 0
    assert ENV not in os.environ
    doc = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert doc["root_cause"]["code"] == "SECRET_IMAGE_NOT_CURRENT_RELEASE"


def test_a_served_client_keeps_one_pool_per_api_and_the_registry_is_one_api_whatever_the_repository() -> None:
    """Live, the registry is one host for every app's repository: a pool (and its TLS context) per
    repository made a 50-app audit open fifty of them."""
    from vyxops_sandbox.client import lane_of

    registry = {lane_of(f"/v2/app-{i}/manifests/latest") for i in range(50)} | {lane_of("/v2/a/b/manifests/x")}
    assert registry == {"/v2"}
    apis = ["/v1/apps/a/machines", "/api/v1/apps/a/logs", "/rest/v1/machines", "/graphql", "/v1/projects/p/secrets"]
    assert len({lane_of(p) for p in apis} | registry) == len(apis) + 1
    assert lane_of("/v1/apps/a/machines") == lane_of("/v1/apps/b/machines/m1/events")

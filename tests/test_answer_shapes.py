"""Every platform answer is checked against its read's shape before it is read (vyxops.core.answers).

Issue 19's harness answered reads with other shapes: GraphQL ``{}`` read as "no releases" and made the
seed's root MACHINE_EXITED_AUTO_DESTROYED; a secrets list answered ``{}`` read as "DOCKER_IMAGE unset"
(LATEST_TAG_MISSING); an object where a list belongs crashed untyped; a wrong-shaped Fly logs or logs
endpoint answer dropped its evidence without a gap. Here a wrong shape is a typed error
(UnexpectedAnswer, exit 3) on a deciding source, a gap on an optional one, and never "empty".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from vyxops.analysis.investigate import investigate
from vyxops.core import answers, config
from vyxops.core.errors import ApiError, TransportError, UnexpectedAnswer, exit_code_for
from vyxops.fetch.http import RetryPolicy
from vyxops.fetch.session import Session, build_session, open_session
from vyxops.fetch.targets import Credentials, Opened
from vyxops.shell.cli import main
from vyxops_sandbox.router import SandboxApp

APP = "vyx-app"
SEED_ROOT = "SECRET_IMAGE_NOT_CURRENT_RELEASE"
NOW = pd.Timestamp("2026-03-12T00:00:00Z")
FAST = RetryPolicy(max_attempts=1)


class _Clock:
    def now(self) -> float:
        return NOW.timestamp()

    def sleep(self, seconds: float) -> None:
        return None


# --------------------------------------------------------------------------- every read, every wrong shape

#: How each read is made through its client method (the method under test, not the Api below it).
CALLS: dict[str, Callable[[Session], object]] = {
    "fly.list_apps": lambda s: s.fly.list_apps("personal"),
    "fly.get_app": lambda s: s.fly.get_app(APP),
    "fly.list_machines": lambda s: s.fly.list_machines(APP),
    "fly.get_machine": lambda s: s.fly.get_machine(APP, "m1"),
    "fly.create_machine": lambda s: s.fly.create_machine(APP, {"image": "registry.fly.io/vyx-app:x"}),
    "fly.wait_machine": lambda s: s.fly.wait_machine(APP, "m1", "started"),
    "fly.stop_machine": lambda s: s.fly.stop_machine(APP, "m1"),
    "fly.destroy_machine": lambda s: s.fly.destroy_machine(APP, "m1"),
    "fly.release_history": lambda s: s.fly.release_history(APP),
    "fly.releases": lambda s: s.fly.release_history(APP),  # the fallback query, after a 404 (see _fake)
    "fly.logs_page": lambda s: s.fly.logs_page(APP),
    "supabase.list_secrets": lambda s: s.supabase.list_secrets(),
    "supabase.list_functions": lambda s: s.supabase.list_functions(),
    # organization_plan() reads both and gives None on any failure (the plan only sets log retention):
    # the client's own request, checked by the same shape, is what is under test here.
    "supabase.get_project": lambda s: s.supabase.mgmt.get_shaped("supabase.get_project", "/v1/projects/ref0"),
    "supabase.get_organization": lambda s: s.supabase.mgmt.get_shaped("supabase.get_organization",
                                                                       "/v1/organizations/org0"),
    "supabase.query_logs": lambda s: s.supabase.query_logs(
        "select id, timestamp from logs", "2026-03-11T00:00:00Z", "2026-03-11T01:00:00Z"
    ),
    "supabase.rows": lambda s: s.supabase.select_all("machines"),
    "supabase.openapi": lambda s: s.supabase.openapi(),
}  # fmt: skip

CASES = [(read, name) for read in answers.READS for name in answers.wrong_answers(read)]


def _fake(read: str, body: object) -> Callable[[httpx.Request], httpx.Response]:
    """Every request answered 200 with ``body``; for the fallback releases read, the combined query gets a 404
    first (as a bundle captured before it was asked answers), so that the fallback is what reads ``body``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if read == "fly.releases" and b"currentRelease" in request.content:
            return httpx.Response(404, json={"message": "not in the evidence bundle"})
        return httpx.Response(200, content=json.dumps(body).encode(), headers={"content-type": "application/json"})

    return handler


def fake_session(handler: Callable[[httpx.Request], httpx.Response]) -> Session:
    opened = Opened(
        opener="mock",
        label="mock",
        description="mock transport",
        credentials=Credentials("legacy-token-0000000000000000", "sb_secret_" + "k" * 32, "sbp_" + "a" * 40, "ref0"),
        clock=_Clock(),
        supabase_url="https://ref0.supabase.co",
        transport=httpx.MockTransport(handler),
    )
    return build_session(config.parse_target("live"), opened, retry=FAST)


def test_every_read_has_a_case_in_the_table() -> None:
    """A read added to vyxops.core.answers without a way to call it here would go untested."""
    assert set(CALLS) == set(answers.READS)
    assert all(answers.wrong_answers(read) for read in answers.READS)


@pytest.mark.parametrize(("read", "wrong"), CASES, ids=[f"{r}-{w}" for r, w in CASES])
def test_a_wrong_shape_is_a_typed_error_never_empty(read: str, wrong: str) -> None:
    """Each read answered with each shape it must not have raises UnexpectedAnswer (exit 3) naming the
    platform, the request and what was expected; nothing is returned, so nothing reads as empty."""
    body = answers.wrong_answers(read)[wrong]
    s = fake_session(_fake(read, body))
    if (read, wrong) == ("supabase.rows", "string"):
        # supabase-py hands back a JSON string and a body that is not JSON alike, as text: that is
        # "malformed response body", a TransportError (exit 3) as before (test_postgrest_errors.py).
        with pytest.raises(TransportError, match="malformed response body"):
            CALLS[read](s)
        return
    with pytest.raises(UnexpectedAnswer) as caught:
        got = CALLS[read](s)
        pytest.fail(f"read as {got!r}")  # pragma: no cover - what happened before: {} became [] or crashed
    exc = caught.value
    assert exit_code_for(exc) == 3 and isinstance(exc, ApiError)
    assert exc.platform == answers.READS[read].platform
    assert "unexpected answer" in str(exc) and "was expected, got" in str(exc) and exc.hint
    assert re.search(answers.READS[read].path, exc.path.split("?")[0]), exc.path
    assert '"ok"' not in str(exc) and "items" not in str(exc)  # kinds only, never the body's text


def test_a_null_list_is_still_empty_and_app_not_found_still_not_found() -> None:
    """Go's null for an empty slice reads as empty (Fly); the Management API's lists are never null, so a null
    secrets list is a wrong shape, not "no secrets"; GraphQL's app: null with errors[] is app-not-found."""
    s = fake_session(_fake("supabase.list_secrets", None))
    assert s.fly.list_machines(APP) == []
    with pytest.raises(UnexpectedAnswer):
        s.supabase.list_secrets()
    not_found = {"data": None, "errors": [{"message": "Could not find App", "path": ["app"]}]}
    s = fake_session(_fake("fly.release_history", not_found))
    with pytest.raises(ApiError) as caught:
        s.fly.release_history(APP)
    assert type(caught.value).__name__ == "NotFoundError"


def test_the_organization_plan_under_a_wrong_shape_is_unknown_not_a_crash() -> None:
    """A project or organization answered in another shape leaves the plan unread (the shortest retention
    is assumed and said), as any failure of that read does."""
    assert fake_session(_fake("supabase.get_project", ["x"])).supabase.organization_plan() is None


# --------------------------------------------------------------------------- investigations on the sandbox


@pytest.fixture
def answer_with(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, object], None]]:
    """Rewrite the sandbox's successful answers to one read into ``body`` (in-process and served alike:
    both go through SandboxApp.handle, the CLI's served sandbox included)."""
    original = SandboxApp.handle

    def rewrite(read: str, body: object) -> None:
        r = answers.READS[read]

        def handle(self: SandboxApp, request: httpx.Request) -> httpx.Response:
            response = original(self, request)
            if request.method == r.method and re.search(r.path, request.url.path) and response.status_code < 300:
                return httpx.Response(response.status_code, content=json.dumps(body).encode(),
                                      headers={"content-type": "application/json"})  # fmt: skip
            return response

        monkeypatch.setattr(SandboxApp, "handle", handle)

    yield rewrite


def _investigate(tmp_path: Path, scenario: str = "stub-image") -> Any:
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path, retry=FAST) as s:
        return investigate(s, APP)


GRAPHQL_WRONG = ["{}", '{"data": null}', '{"data": {"app": null}}']


@pytest.mark.parametrize("wrong", GRAPHQL_WRONG)
def test_the_seed_under_a_graphql_answer_without_its_app_stops_typed(
    tmp_path: Path, answer_with: Callable[[str, object], None], wrong: str
) -> None:
    """GraphQL answering {}, data: null or app: null without errors is exit 3, not 'no releases' (which made
    the seed's root MACHINE_EXITED_AUTO_DESTROYED, complete)."""
    answer_with("fly.release_history", answers.wrong_answers("fly.release_history")[wrong])
    with pytest.raises(UnexpectedAnswer) as caught:
        inv = _investigate(tmp_path)
        pytest.fail(f"read as {inv.root_line} ({inv.verdict})")  # pragma: no cover
    assert exit_code_for(caught.value) == 3 and "/graphql" in str(caught.value)


@pytest.mark.parametrize(
    ("read", "wrong"),
    [("supabase.list_secrets", "{}"), ("supabase.list_secrets", "object for a list"),
     ("fly.list_machines", "object for a list"), ("supabase.list_functions", "object for a list"),
     ("supabase.rows", "{}"), ("fly.list_apps", "{}"), ("fly.release_history", "object for a list")],
)  # fmt: skip
def test_a_deciding_source_of_the_wrong_shape_stops_the_investigation_typed(
    tmp_path: Path, answer_with: Callable[[str, object], None], read: str, wrong: str
) -> None:
    """Secrets {} no longer reads as 'DOCKER_IMAGE unset' (LATEST_TAG_MISSING); an object where the machines,
    secrets or functions list belongs no longer crashes untyped: each is UnexpectedAnswer, exit 3."""
    answer_with(read, answers.wrong_answers(read)[wrong])
    with pytest.raises(UnexpectedAnswer) as caught:
        inv = _investigate(tmp_path)
        pytest.fail(f"read as {inv.root_line} ({inv.verdict})")  # pragma: no cover
    assert exit_code_for(caught.value) == 3


@pytest.mark.parametrize("wrong", ['{"data": {}}', "object for a list", "string"])
def test_fly_logs_of_the_wrong_shape_are_a_gap_that_does_not_decide(
    tmp_path: Path, answer_with: Callable[[str, object], None], wrong: str
) -> None:
    """Fly logs corroborate only (SPEC.md): a wrong-shaped page is a fly.logs gap listed with decides: false,
    and the seed's own root is still found."""
    answer_with("fly.logs_page", answers.wrong_answers("fly.logs_page")[wrong])
    inv = _investigate(tmp_path)
    gaps = [g for g in inv.gaps if g.source == "fly.logs"]
    assert gaps and "unexpected answer" in gaps[0].why, inv.gaps
    assert gaps[0].as_json()["decides"] is False
    assert inv.root is not None and inv.root.code == SEED_ROOT


@pytest.mark.parametrize("wrong", ["{}", '{"result": {}}', "object for a list"])
def test_the_logs_endpoint_of_the_wrong_shape_is_a_deciding_gap_never_healthy(
    tmp_path: Path, answer_with: Callable[[str, object], None], wrong: str
) -> None:
    """Function logs decide health: on a healthy app, a wrong-shaped logs endpoint answer is a
    supabase.function_logs gap and the verdict is inconclusive, not healthy."""
    answer_with("supabase.query_logs", answers.wrong_answers("supabase.query_logs")[wrong])
    inv = _investigate(tmp_path, "healthy")
    gaps = [g for g in inv.gaps if g.source == "supabase.function_logs"]
    assert gaps and gaps[0].decides and "unexpected answer" in gaps[0].why, inv.gaps
    assert inv.verdict == "inconclusive" and inv.root is None


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(("read", "wrong"), [("fly.release_history", "{}"), ("supabase.list_secrets", "{}")])
def test_the_cli_exits_3_with_one_vyxops_line_on_a_wrong_shape(
    sandbox_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    answer_with: Callable[[str, object], None],
    read: str,
    wrong: str,
) -> None:
    """`vyxops investigate` on the seed, with GraphQL or the secrets list answering {}: exit 3 and a
    `vyxops:` line naming the unexpected answer, no traceback and no findings with a wrong root."""
    answer_with(read, answers.wrong_answers(read)[wrong])
    out = tmp_path / "o"
    assert main(["investigate", "--scenario", "stub-image", "--app", APP, "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "vyxops:" in err and "unexpected answer" in err, err[-2000:]
    assert "Traceback" not in err and 'File "' not in err
    assert not (out / "findings.json").exists()

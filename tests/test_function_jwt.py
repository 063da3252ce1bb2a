"""VERIFY_PROVISIONING and --probe against a verify_jwt function: one rule, and VYXOPS_FUNCTION_JWT.

An ``sb_secret_…`` key is not a JWT, so a function with ``verify_jwt`` on refuses it before
it runs (PLATFORM.md; Supabase docs, "Authorization headers"). Without a JWT to send,
VERIFY is not planned (the plan says why and what to do) and ``--probe`` is refused; with
``VYXOPS_FUNCTION_JWT`` (a user's access token) both run, and the token is in no artefact.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from vyxops.act.fixes import plan_fixes
from vyxops.act.probe import probe_and_investigate
from vyxops.analysis.investigate import investigate
from vyxops.core.config import function_jwt
from vyxops.core.errors import ConfigError, redact
from vyxops.core.function_auth import verify_jwt_refusal
from vyxops.fetch.session import open_session
from vyxops.shell.cli import main
from vyxops.testing.credentials import artefact_text, leaked_credentials
from vyxops_sandbox.router import SandboxApp, SandboxTransport
from vyxops_sandbox.testing import world_of
from vyxops_sandbox.world import World

SCENARIO = "stub-image-sb-secret-key"
APP = "vyx-app"
CODE = "VERIFY_PROVISIONING"
VAR = "VYXOPS_FUNCTION_JWT"


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh sandbox directory and audit log in the environment, no VYXOPS_FUNCTION_JWT; the cwd is tmp_path."""
    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(tmp_path / "sandbox"))
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sandbox_function_jwt(capsys: pytest.CaptureFixture[str]) -> str:
    """The user token `vyxops sandbox status --json` offers, as an operator would copy it into the variable."""
    assert main(["sandbox", "status", "--scenario", SCENARIO, "--json"]) == 0
    token = json.loads(capsys.readouterr().out)["supabase_function_jwt"]
    assert isinstance(token, str)
    return token


def remediate(out: Path, *apply: str) -> int:
    return main(["remediate", "--scenario", SCENARIO, "--app", APP, "--out", str(out), *apply])


def actions(out: Path, name: str) -> dict[str, dict[str, Any]]:
    doc = json.loads((out / name).read_text())
    return {a["code"]: a for a in doc["actions"]}


def notes(out: Path, name: str) -> list[str]:
    return list(json.loads((out / name).read_text())["notes"])


def audit_lines(root: Path) -> list[dict[str, Any]]:
    path = root / "audit.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# ------------------------------------------------------------------------------------------ without a JWT


def test_the_dry_run_does_not_plan_verify_and_says_why_and_what_to_do(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sb_secret key + verify_jwt: VERIFY is not planned; the plan and the terminal say why and name the variable."""
    assert remediate(sandbox / "o") == 0
    printed = capsys.readouterr().out
    assert CODE not in actions(sandbox / "o", "plan.json")
    why = [n for n in notes(sandbox / "o", "plan.json") if n.startswith(f"{CODE}: not planned")]
    assert len(why) == 1 and "verify_jwt" in why[0] and VAR in why[0] and "access token" in why[0]
    assert f"{CODE}      not planned" in printed and VAR in printed


def test_an_apply_without_a_jwt_applies_the_other_fixes_and_exits_0(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The apply no longer fails 401 after the other fixes and exits 3: they apply, VERIFY is not attempted."""
    assert remediate(sandbox / "o", "--apply", "--confirm", APP) == 0
    done = actions(sandbox / "o", "result.json")
    assert {c: a["status"] for c, a in done.items()} == {
        "PIN_SECRET_TO_RELEASE": "applied",
        "RECONCILE_STUCK_ROWS": "applied",
    }
    printed = capsys.readouterr().out
    assert "failed 0" in printed and "answered 401" not in printed
    assert not any(x.get("action") == CODE for x in audit_lines(sandbox))  # the function was never invoked


# ------------------------------------------------------------------------------------------ with VYXOPS_FUNCTION_JWT


def test_with_a_function_jwt_verify_is_planned_applied_and_the_token_is_in_no_artefact(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """VYXOPS_FUNCTION_JWT from `sandbox status --json`: VERIFY is planned, provisions a canary that starts, and
    the token appears in no report, notebook, plan, result or audit line, however encoded."""
    token = sandbox_function_jwt(capsys)
    monkeypatch.setenv(VAR, token)
    assert remediate(sandbox / "dry") == 0
    planned = actions(sandbox / "dry", "plan.json")
    assert CODE in planned and VAR in planned[CODE]["reason"]
    assert remediate(sandbox / "o", "--apply", "--confirm", APP) == 0
    done = actions(sandbox / "o", "result.json")
    assert done[CODE]["status"] == "applied" and "provisioning works" in done[CODE]["reason"]
    assert all(a["status"] == "applied" for a in done.values())
    printed = capsys.readouterr()
    artefacts = [p for p in sandbox.rglob("*") if p.is_file() and "sandbox" not in p.parts]
    assert artefacts
    leaks = [str(p) for p in artefacts if leaked_credentials(artefact_text(p), [token.encode()])]
    assert leaks == []
    assert token not in printed.out + printed.err


@pytest.mark.parametrize(
    "value",
    [
        "sb_secret_abcdefabcdef0123456789abcdef",  # an API key, not a JWT
        "not-a-jwt-at-all",
        "aaaa.bbbb.cccc",  # three parts, but no JSON header naming alg
        "Bearer sb_publishable_abcdef0123456789",
    ],
)
def test_a_malformed_function_jwt_is_exit_2_before_anything_and_not_echoed(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """A value that is not JWT-shaped: exit 2 naming the variable, without its value, before --out is made."""
    monkeypatch.setenv(VAR, value)
    assert remediate(sandbox / "o", "--apply", "--confirm", APP) == 2
    err = capsys.readouterr().err
    assert VAR in err and value not in err and value.removeprefix("Bearer ") not in err
    assert not (sandbox / "o").exists() and audit_lines(sandbox) == []
    with pytest.raises(ConfigError, match=VAR):
        open_session("sandbox", scenario=SCENARIO, sandbox_dir=sandbox / "sb2")  # the session checks it too


def test_the_function_jwt_is_registered_for_redaction_as_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read from the environment, the token is masked in any text vyxops writes (errors, logs)."""
    token = _jwt({"alg": "HS256"}, {"role": "authenticated", "sub": "redact-me", "exp": 2015000000}, b"k")
    assert function_jwt({VAR: token}) == token
    assert token not in redact(f"the function said {token} and Bearer {token}")


# ------------------------------------------------------------------------------------------ --probe, the same rule


def test_the_probe_is_refused_without_the_jwt_and_runs_with_it(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--probe follows the rule the plan does: refused (naming the variable) without a JWT; run with one, its canary
    provisioned through the function and cleaned up."""
    with open_session("sandbox", scenario=SCENARIO, sandbox_dir=sandbox / "sb1") as s:
        with pytest.raises(ConfigError, match=VAR) as refused:
            probe_and_investigate(s, APP)
        plan = plan_fixes(investigate(s, APP), fixes=[CODE], audit_log=sandbox / "none.jsonl")
    assert "verify_jwt" in str(refused.value)
    assert not plan.actions and any(n.startswith(f"{CODE}: not planned") and VAR in n for n in plan.notes)
    monkeypatch.setenv(VAR, sandbox_function_jwt(capsys))
    with open_session("sandbox", scenario=SCENARIO, sandbox_dir=sandbox / "sb2") as s:
        probed = probe_and_investigate(s, APP)
        machines = world_of(s).app(APP)["machines"].values()  # type: ignore[index]
    assert probed.result is not None and not probed.skipped
    verify = next(a for a in probed.result.actions if a.code == CODE)
    # The function ran (no 401): the canary it made runs the stub image still pinned, which exits, as the seed's did.
    assert "401" not in verify.reason and "reached started" in verify.reason, verify.reason
    assert "PROVISIONING_PROBE_FAILED" in {f.code for f in probed.investigation.findings}
    canaries = [m for m in machines if str(m["config"]["metadata"].get("user_id", "")).startswith("vyxops-verify-")]
    assert canaries and all(m["state"] == "destroyed" for m in canaries)


@pytest.mark.parametrize(
    ("verify_jwt", "bearer", "refused"),
    [
        (True, "none", True),
        (True, "function_jwt", False),
        (True, "service_jwt", False),
        (False, "none", False),
        (None, "none", False),  # not reported: not known to refuse
        (True, None, False),  # bearer unknown (evidence made by hand)
    ],
)
def test_the_one_rule(verify_jwt: bool | None, bearer: Any, refused: bool) -> None:
    assert (verify_jwt_refusal("provision-machine", verify_jwt, bearer) is not None) is refused


# ------------------------------------------------------------------------------------------ the sandbox's check


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jwt(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    head = _b64url(json.dumps(header).encode())
    body = _b64url(json.dumps(claims).encode())
    sig = _b64url(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def _invoke(world: World, bearer: str) -> httpx.Response:
    key = world.credentials["supabase_service_role_key"]
    with httpx.Client(transport=SandboxTransport(SandboxApp(world)), base_url="https://sandbox.test") as c:
        return c.post(
            "/functions/v1/provision-machine",
            json={"user_id": "u-jwt", "region": "sjc"},
            headers={"apikey": key, "authorization": f"Bearer {bearer}"},
        )


def test_the_sandbox_passes_a_users_jwt_the_project_signed_and_nothing_the_platform_would_refuse(
    sandbox: Path,
) -> None:
    """verify_jwt in the sandbox: the user token passes; a JWT signed with another secret, an expired one, or the
    sb_secret key is 401 Invalid JWT, before the function runs, as on the platform."""
    world = World.load(SCENARIO, sandbox / "sb")
    user = world.credentials["supabase_function_jwt"]
    claims = json.loads(base64.urlsafe_b64decode(user.split(".")[1] + "=="))
    secret = b"vyxops-sandbox-jwt:" + SCENARIO.encode()
    forged = _jwt({"alg": "HS256", "typ": "JWT"}, claims, b"another project's secret")
    expired = _jwt({"alg": "HS256", "typ": "JWT"}, {**claims, "exp": world.now_ms // 1000 - 60}, secret)
    for bad in (forged, expired, world.credentials["supabase_service_role_key"]):
        r = _invoke(world, bad)
        assert (r.status_code, r.json()) == (401, {"code": 401, "message": "Invalid JWT"})
    assert claims["role"] == "authenticated"
    assert _invoke(world, user).status_code == 200


def test_a_bundle_replays_verify_as_its_capture_planned_it(sandbox: Path, tmp_path: Path) -> None:
    """A capture records the bearer it sent (not its value), so a replay of an sb_secret capture drops VERIFY as the
    capture did; a bundle that did not record it plans VERIFY as if it were unknown, never refused for a dummy key."""
    assert main(["capture", "--scenario", SCENARIO, "--app", APP, "--out", str(tmp_path / "b")]) == 0
    meta = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert meta["function_bearer"] == "none"
    with open_session("sandbox", scenario=SCENARIO, sandbox_dir=sandbox / "fresh") as s:
        captured = investigate(s, APP).document
    with open_session(f"bundle:{tmp_path / 'b'}") as replay:
        replayed = investigate(replay, APP).document
    asked = [c for f in replayed["findings"] for c in f["fixes"]]
    assert "VERIFY_PROVISIONING" not in asked
    assert asked == [c for f in captured["findings"] for c in f["fixes"]]
    meta.pop("function_bearer")
    (tmp_path / "b" / "bundle.json").write_text(json.dumps(meta))
    with open_session(f"bundle:{tmp_path / 'b'}") as old:
        assert old.supabase.function_bearer == "unknown"
        assert "VERIFY_PROVISIONING" in [c for f in investigate(old, APP).document["findings"] for c in f["fixes"]]

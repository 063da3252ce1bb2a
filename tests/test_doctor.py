"""``vyxops doctor``: credentials, APIs, permissions and the contract, checked before an incident.

The sandbox answers every check; a scenario's ``platform.supabase.token_permissions`` makes its access token a
scoped one. Live is only ever given credentials of bad shapes: the doctor must refuse them before any call.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_discover import AMBIGUOUS  # two secrets hold the release's image

from vyxops.core.shapes import fly_token_problem
from vyxops.shell.cli import main
from vyxops_sandbox.platform import credentials_for
from vyxops_sandbox.scenario import load_scenario

HEALTHY = Path(__file__).resolve().parents[1] / "vyxops" / "scenarios" / "healthy.yaml"
ALL_BUT_SECRETS = "[project_admin_read, organization_admin_read, edge_functions_read, analytics_logs_read]"
LIVE_VARIABLES = ("FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY",
                  "SUPABASE_ACCESS_TOKEN", "SUPABASE_PROJECT_REF")  # fmt: skip


@pytest.fixture(autouse=True)
def _no_project_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where no vyxops.toml is declared, so the contract comes from discovery (or --contract)."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


def scenario_with(tmp_path: Path, name: str, platform: str) -> Path:
    """healthy.yaml under another name, with a ``platform:`` block."""
    text = HEALTHY.read_text().replace("name: healthy\n", f"name: {name}\n", 1)
    text = text.replace("\nsteps:\n", f"\nplatform: {platform}\nsteps:\n", 1)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(["doctor", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.out + captured.err


def assert_no_credential(text: str, scenario: str) -> None:
    for value in credentials_for(scenario).values():
        assert value not in text


def test_a_good_sandbox_passes_every_check_and_exits_0(sandbox_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each group is checked, every check is ok, and the last line says so; no credential is printed."""
    code, lines, text = run(["--scenario", "healthy", "--app", "vyx-app"], capsys)
    assert code == 0, text
    checks = lines[:-1]
    assert checks and all(line.startswith("ok ") for line in checks), text
    for group in ("credentials:", "APIs:", "permissions:", "contract:"):
        assert any(group in line for line in checks), group
    for api in ("Machines API", "GraphQL", "registry", "Fly logs", "Management API", "PostgREST", "logs endpoint"):
        assert any(f"APIs: {api}:" in line for line in checks), api
    assert lines[-1].startswith("all well")
    assert "discovered: function provision-machine, image secret DOCKER_IMAGE" in text
    assert_no_credential(text, "healthy")


def test_a_token_without_secrets_read_is_named_with_the_permission_and_the_fix(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scoped access token lacking secrets read/write: one problem line each, naming it and how to fix it."""
    scenario = scenario_with(tmp_path, "scoped", f"{{supabase: {{token_permissions: {ALL_BUT_SECRETS}}}}}")
    code, lines, text = run(["--scenario", str(scenario), "--app", "vyx-app"], capsys)
    assert code == 1
    problems = [line for line in lines if line.startswith("problem")]
    read = next(line for line in problems if "permissions: secrets read:" in line)
    assert "edge_functions_secrets_read" in read and "403" in read
    assert "fix: grant the token secrets read" in read and "SUPABASE_ACCESS_TOKEN" in read
    assert any("permissions: secrets write:" in line and "fix:" in line for line in problems)
    assert any(line.startswith("ok ") and "functions read" in line for line in lines)  # what it holds is fine
    assert lines[-1] == f"{len(problems)} problem(s)"
    assert_no_credential(text, "scoped")


def test_the_sandbox_answers_403_for_an_endpoint_the_token_may_not_use_before_reading_the_body(
    sandbox_env: Path, tmp_path: Path
) -> None:
    """The permission is checked before the body (a NestJS guard before a pipe): a refused write is 403, not 400."""
    from vyxops.fetch.session import open_session

    scenario = scenario_with(tmp_path, "scoped", f"{{supabase: {{token_permissions: {ALL_BUT_SECRETS}}}}}")
    with open_session("sandbox", scenario=scenario) as s:
        ref = s.project_ref
        refused = s.supabase.mgmt.request("POST", f"/v1/projects/{ref}/secrets", json=[{}], ok=(400, 403))
        listed = s.supabase.mgmt.request("GET", f"/v1/projects/{ref}/functions")
    assert refused.status_code == 403
    assert refused.json() == {"message": "Your account does not have the necessary privileges to access this endpoint."}
    assert listed.status_code == 200


def test_the_write_check_writes_nothing(sandbox_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """secrets write is shown by a write the API refuses: the secrets are the same after the doctor ran."""
    from vyxops.fetch.session import open_session

    with open_session("sandbox", scenario="healthy") as s:
        before = s.supabase.list_secrets()
    assert run(["--scenario", "healthy"], capsys)[0] == 0
    with open_session("sandbox") as s:
        assert s.supabase.list_secrets() == before


def test_an_ambiguous_contract_is_a_problem_naming_the_key_to_declare(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two secrets hold the release's image: the contract line names pipeline.image_secret, both, and the fix."""
    scenario = tmp_path / "twins.yaml"
    scenario.write_text(AMBIGUOUS)
    code, lines, text = run(["--scenario", str(scenario), "--app", "twin-app"], capsys)
    assert code == 1
    [problem] = [line for line in lines if line.startswith("problem")]
    assert "contract: pipeline.image_secret:" in problem and "TWIN_IMAGE" in problem and "BACKUP_IMAGE" in problem
    assert "fix: declare `image_secret` under [pipeline] in vyxops.toml" in problem
    declared = tmp_path / "vyxops.toml"
    declared.write_text('[pipeline]\nfunction = "launch-twin"\nimage_secret = "TWIN_IMAGE"\n')
    assert run(["--scenario", str(scenario), "--app", "twin-app", "--contract", str(declared)], capsys)[0] == 0


# --------------------------------------------------------------------------- live: shapes, before any call

GOOD_REF = "abcdefghijklmnopqrst"


def live_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **values: str) -> None:
    """Only ``values`` set among the live variables; no flyctl config; opening live fails the test."""
    for name in LIVE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.fly/config.yml
    for name, value in values.items():
        monkeypatch.setenv(name, value)

    def no_call(*_: object) -> None:
        raise AssertionError("the live target was opened: a call would have been made")

    monkeypatch.setattr("vyxops.fetch.targets.open_live", no_call)


def test_live_missing_and_ill_formed_credentials_are_named_without_any_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad credential gets its own line (variable, what is wrong, the fix); the APIs are not asked; no value
    appears in the output."""
    fly = "FlyV1 fm2_lJPECAAAAAAAAcdef1234567890,,"  # a stray comma
    access = "sbp_sandbox" + "0123456789abcdef" * 2 + "01234567"  # not sbp_ + 40 hex
    anon = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiIsImlzcyI6InN1cGFiYXNlIn0"
        ".c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl"
    )  # the anon key, not service_role
    live_env(monkeypatch, tmp_path, FLY_API_TOKEN=fly, SUPABASE_URL=f"https://{GOOD_REF}.supabase.co",
             SUPABASE_ACCESS_TOKEN=access, SUPABASE_SERVICE_ROLE_KEY=anon)  # fmt: skip
    code, lines, text = run(["--target", "live"], capsys)
    assert code == 1
    problems = {line.split(": ")[1]: line for line in lines if line.startswith("problem")}
    assert set(problems) == {"FLY_API_TOKEN", "SUPABASE_ACCESS_TOKEN", "SUPABASE_SERVICE_ROLE_KEY"}, text
    assert "empty (a stray comma?)" in problems["FLY_API_TOKEN"] and "fix: " in problems["FLY_API_TOKEN"]
    assert problems["FLY_API_TOKEN"].endswith("export it as FLY_API_TOKEN")  # where it was read: that one wins
    assert "sbp_ + 40 hex" in problems["SUPABASE_ACCESS_TOKEN"]
    assert "account/tokens" in problems["SUPABASE_ACCESS_TOKEN"]
    assert "role anon, not service_role" in problems["SUPABASE_SERVICE_ROLE_KEY"]
    assert any(line.startswith("ok ") and f"SUPABASE_PROJECT_REF: {GOOD_REF}" in line for line in lines)
    assert all(line.startswith("skipped") for line in lines if "APIs:" in line or "permissions:" in line)
    for value in (fly, access, anon, "fm2_lJPE", "sbp_sandbox", "eyJhbGci"):
        assert value not in text


def test_live_unset_credentials_are_each_named_with_where_vyxops_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing set: one line per missing credential (the Fly token's names its three places), exit 1, not 2."""
    live_env(monkeypatch, tmp_path)
    code, lines, _ = run(["--target", "live"], capsys)
    assert code == 1
    missing = [line for line in lines if line.startswith("problem") and "not set" in line]
    assert len(missing) == 5
    assert any("FLY_ACCESS_TOKEN" in line and "config.yml" in line for line in missing)


def test_live_json_lists_every_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live_env(monkeypatch, tmp_path, SUPABASE_URL=f"https://{GOOD_REF}.supabase.co")
    code, lines, text = run(["--target", "live", "--json"], capsys)
    doc = json.loads(text)
    assert code == 1 and doc["ok"] is False
    assert {c["status"] for c in doc["checks"]} == {"ok", "problem", "skipped"}
    assert all(c["fix"] for c in doc["checks"] if c["status"] == "problem")


@pytest.mark.parametrize(
    "token",
    [
        "FlyV1 fm2_lJPECAAAAAAAAcdef1234567890,fm2_lJPEdischarge0123456789abcdef",  # fly tokens create
        "fm1r_lJPECAAAAAAAAcdef1234567890+/=,fm1a_lJPEAAAAAAAA1234567890,fo1_abcdefghijklmnopqrstuv",  # config.yml
        "Bearer fo1_abcdefghijklmnopqrstuvwxyz012345",  # a pasted header
        "x5xZq1lpNk3bY8c0Q2mRr7tU9vWw4eKs6aDf1gHh2jJ",  # an old personal token: no prefix
    ],
)
def test_fly_token_shapes_fly_go_reads_are_well_formed(token: str) -> None:
    assert fly_token_problem(token) is None


@pytest.mark.parametrize(
    ("token", "said"),
    [
        ("fm3_lJPECAAAAAAAAcdef1234567890", "unknown Fly prefix fm3_"),
        ("sbp_0123456789abcdef0123456789abcdef01234567", "Supabase access token"),
        ("fm2_lJPECAAAAAAAAcdef1234567890,,fo1_abcdefghijklmnopqrstuv", "part 2 of 3 is empty"),
        ('"fo1_abcdefghijklmnopqrstuvwxyz"', "quotes"),
    ],
)
def test_ill_formed_fly_tokens_are_named_without_their_text(token: str, said: str) -> None:
    problem = fly_token_problem(token)
    assert problem is not None and said in problem and token.strip('"') not in problem


def test_bad_input_exits_2_before_any_check(sandbox_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--target", "bundle:somewhere"]) == 2
    assert main(["doctor", "--app", "No Such App!"]) == 2
    assert main(["doctor", "--scenario", "healthy", "--app", "not-in-the-scenario"]) == 2
    assert "problem" not in capsys.readouterr().out


def test_the_scenario_refuses_an_unknown_permission(tmp_path: Path) -> None:
    from vyxops.core.errors import ScenarioError

    scenario = scenario_with(tmp_path, "typo", "{supabase: {token_permissions: [secrets_read]}}")
    with pytest.raises(ScenarioError, match="token_permissions"):
        load_scenario(scenario)


def test_an_ill_formed_fly_access_token_is_named_where_it_was_read_though_fly_api_token_is_good(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """FLY_ACCESS_TOKEN wins over FLY_API_TOKEN (flyctl's order): the fix replaces the one that is read."""
    live_env(monkeypatch, tmp_path, FLY_ACCESS_TOKEN='"fo1_abcdefghijklmnopqrstuvwxyz"',
             FLY_API_TOKEN="fo1_abcdefghijklmnopqrstuvwxyz012345")  # fmt: skip
    code, lines, _ = run(["--target", "live"], capsys)
    [fly] = [line for line in lines if line.startswith("problem  credentials: FLY_API_TOKEN")]
    assert code == 1 and "(from FLY_ACCESS_TOKEN)" in fly and fly.endswith("export it as FLY_ACCESS_TOKEN")


def test_live_pointed_by_the_base_url_variables_at_a_served_sandbox_is_all_well(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The live doctor end to end, over HTTP: credentials of the real shapes from the environment, every API
    asked at the bases FLY_API_BASE_URL, FLY_FLAPS_BASE_URL, FLY_REGISTRY_HOST and SUPABASE_API_URL name."""
    from test_live_path import served

    with served("healthy", tmp_path) as (world, base):
        creds = world.credentials
        values = {name: base for name in ("FLY_API_BASE_URL", "FLY_FLAPS_BASE_URL", "FLY_REGISTRY_HOST",
                                          "SUPABASE_API_URL", "SUPABASE_URL")}  # fmt: skip
        for name in LIVE_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        for name, value in {**values, "FLY_API_TOKEN": creds["fly_api_token"],
                            "SUPABASE_SERVICE_ROLE_KEY": creds["supabase_service_role_key"],
                            "SUPABASE_ACCESS_TOKEN": creds["supabase_access_token"],
                            "SUPABASE_PROJECT_REF": creds["project_ref"]}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        code, lines, text = run(["--target", "live", "--app", "vyx-app"], capsys)
    assert code == 0, text
    assert not [line for line in lines if line.startswith(("problem", "skipped"))], text
    assert any(line.startswith("ok       APIs: registry") for line in lines)
    assert not any(value in text for value in creds.values() if len(value) > 20)


def test_a_key_verify_jwt_refuses_is_a_problem_until_a_function_jwt_is_given(
    sandbox_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an sb_secret_ key and verify_jwt on, VERIFY and --probe cannot run: doctor says so before an incident,
    with what to set; the sandbox's user JWT in VYXOPS_FUNCTION_JWT makes it ok; a malformed one is named, unshown."""
    scenario = "stub-image-sb-secret-key"
    monkeypatch.delenv("VYXOPS_FUNCTION_JWT", raising=False)
    code, lines, text = run(["--scenario", scenario, "--app", "vyx-app"], capsys)
    auth = [line for line in lines if "contract: function auth:" in line]
    assert code == 1 and auth and auth[0].startswith("problem ") and "VYXOPS_FUNCTION_JWT" in auth[0], text
    assert main(["sandbox", "status", "--scenario", scenario, "--json"]) == 0
    token = json.loads(capsys.readouterr().out)["supabase_function_jwt"]
    monkeypatch.setenv("VYXOPS_FUNCTION_JWT", token)
    code, lines, text = run(["--scenario", scenario, "--app", "vyx-app"], capsys)
    assert code == 0 and any(line.startswith("ok ") and "function auth" in line for line in lines), text
    assert token not in text
    monkeypatch.setenv("VYXOPS_FUNCTION_JWT", "sb_publishable_not-a-jwt")
    code, lines, text = run(["--scenario", scenario, "--app", "vyx-app"], capsys)
    assert code == 1 and any("credentials: VYXOPS_FUNCTION_JWT: " in line for line in lines), text
    assert "sb_publishable_not-a-jwt" not in text
    assert_no_credential(text, scenario)

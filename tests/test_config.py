"""Tests for vyxops.core.config: targets, live credentials from the environment, local paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from vyxops.core import errors
from vyxops.core.config import (
    LIVE_URLS,
    LiveCredentials,
    Target,
    audit_log_path,
    live_base_url,
    live_credentials,
    live_urls,
    parse_target,
    project_dir,
    sandbox_dir,
)

FLY_TOKEN = "unshaped-fly-token-env-0001"
SERVICE_KEY = "unshaped-service-role-key-0002"
ACCESS_TOKEN = "unshaped-access-token-0003"
REF = "abcdefghijklmnopqrst"

FULL_ENV = {
    "FLY_API_TOKEN": FLY_TOKEN,
    "SUPABASE_URL": f"https://{REF}.supabase.co",
    "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY,
    "SUPABASE_ACCESS_TOKEN": ACCESS_TOKEN,
    "SUPABASE_PROJECT_REF": REF,
}


@pytest.fixture
def no_flyctl(tmp_path: Path) -> Path:
    """A flyctl config path that does not exist, so the real ~/.fly is never read."""
    return tmp_path / "absent" / "config.yml"


# --------------------------------------------------------------------------- targets


@pytest.mark.parametrize("text", [None, "", "  ", "sandbox"])
def test_missing_or_sandbox_target_is_the_sandbox(text: str | None) -> None:
    """No --target (None or blank) and `sandbox` both mean the sandbox."""
    assert parse_target(text) == Target("sandbox")


def test_live_target() -> None:
    """`live` parses to the live target with no path."""
    assert parse_target("live") == Target("live", None)


def test_bundle_target_keeps_its_path() -> None:
    """`bundle:PATH` keeps everything after the first colon as the path, colons included."""
    assert parse_target("bundle:/tmp/ev:2026") == Target("bundle", "/tmp/ev:2026")


@pytest.mark.parametrize("text", ["sandbox", "live", "bundle:out/capture"])
def test_target_str_round_trips(text: str) -> None:
    """str(Target) is the --target spelling that parses back to the same target."""
    assert str(parse_target(text)) == text
    assert parse_target(str(parse_target(text))) == parse_target(text)


@pytest.mark.parametrize("text", ["prod", "live:x", "sandbox:foo", "bundle", "bundle:", "bundle:  "])
def test_bad_target_raises_input_error_naming_the_flag_and_allowed_values(text: str) -> None:
    """Anything but sandbox/live/bundle:PATH raises InputError naming --target and the allowed values."""
    with pytest.raises(errors.InputError) as info:
        parse_target(text)
    assert info.value.name == "--target"
    assert info.value.allowed == "sandbox, live, bundle:PATH"
    assert "--target" in str(info.value) and "bundle:PATH" in str(info.value)


# --------------------------------------------------------------------------- credentials


def test_live_credentials_from_the_full_environment(no_flyctl: Path) -> None:
    """With every variable set, live_credentials returns them as given."""
    creds = live_credentials(FULL_ENV, flyctl_config=no_flyctl)
    assert creds == LiveCredentials(FLY_TOKEN, f"https://{REF}.supabase.co", SERVICE_KEY, ACCESS_TOKEN, REF)
    assert creds.fly_token_source == "FLY_API_TOKEN"


def test_fly_access_token_wins_over_fly_api_token_as_in_flyctl(no_flyctl: Path) -> None:
    """FLY_ACCESS_TOKEN is preferred when FLY_API_TOKEN is also set, as flyctl's env.First reads them."""
    env = {**FULL_ENV, "FLY_ACCESS_TOKEN": "unshaped-other-token-0009"}
    creds = live_credentials(env, flyctl_config=no_flyctl)
    assert creds.fly_token == "unshaped-other-token-0009"
    assert creds.fly_token_source == "FLY_ACCESS_TOKEN"


def test_fly_api_token_is_the_first_fallback(no_flyctl: Path) -> None:
    """Without FLY_ACCESS_TOKEN (or with it blank), FLY_API_TOKEN is used."""
    env = {**FULL_ENV, "FLY_ACCESS_TOKEN": ""}
    creds = live_credentials(env, flyctl_config=no_flyctl)
    assert creds.fly_token == FLY_TOKEN
    assert creds.fly_token_source == "FLY_API_TOKEN"


def test_either_variable_wins_over_flyctls_config(tmp_path: Path) -> None:
    """flyctl's config.yml is read only when neither variable is set."""
    config = tmp_path / "config.yml"
    config.write_text("access_token: unshaped-flyctl-token-0010\n")
    env = {k: v for k, v in FULL_ENV.items() if k != "FLY_API_TOKEN"}
    assert live_credentials({**env, "FLY_ACCESS_TOKEN": "unshaped-access-0011"}, flyctl_config=config).fly_token == (
        "unshaped-access-0011"
    )


def test_flyctl_config_is_the_last_fallback(tmp_path: Path) -> None:
    """Without either variable, access_token from flyctl's config.yml is used."""
    config = tmp_path / "config.yml"
    config.write_text("access_token: unshaped-flyctl-token-0005\nwire_guard_state: {}\n")
    env = {k: v for k, v in FULL_ENV.items() if k != "FLY_API_TOKEN"}
    creds = live_credentials(env, flyctl_config=config)
    assert creds.fly_token == "unshaped-flyctl-token-0005"
    assert creds.fly_token_source == str(config)
    assert "unshaped-flyctl-token-0005" not in errors.redact("x unshaped-flyctl-token-0005 x")


def test_invalid_flyctl_config_counts_as_missing_and_never_quotes_it(tmp_path: Path) -> None:
    """An unparsable config.yml is reported as a missing token without quoting the file's text."""
    config = tmp_path / "config.yml"
    config.write_text("access_token: [unshaped-broken-token-0006\n")
    env = {k: v for k, v in FULL_ENV.items() if k != "FLY_API_TOKEN"}
    with pytest.raises(errors.ConfigError) as info:
        live_credentials(env, flyctl_config=config)
    assert "FLY_API_TOKEN" in str(info.value)
    assert "unshaped-broken-token-0006" not in str(info.value)


def test_project_ref_is_derived_from_a_supabase_co_url(no_flyctl: Path) -> None:
    """Without SUPABASE_PROJECT_REF, the ref comes from https://<ref>.supabase.co."""
    env = {k: v for k, v in FULL_ENV.items() if k != "SUPABASE_PROJECT_REF"}
    env["SUPABASE_URL"] = f"https://{REF}.supabase.co/"
    creds = live_credentials(env, flyctl_config=no_flyctl)
    assert creds.project_ref == REF
    assert creds.supabase_url == f"https://{REF}.supabase.co"


def test_project_ref_cannot_be_derived_from_a_custom_domain(no_flyctl: Path) -> None:
    """A custom-domain SUPABASE_URL without SUPABASE_PROJECT_REF reports SUPABASE_PROJECT_REF missing."""
    env = {k: v for k, v in FULL_ENV.items() if k != "SUPABASE_PROJECT_REF"}
    env["SUPABASE_URL"] = "https://db.example.com"
    with pytest.raises(errors.ConfigError, match="SUPABASE_PROJECT_REF"):
        live_credentials(env, flyctl_config=no_flyctl)


def test_missing_variables_are_all_named_and_no_value_is_shown(no_flyctl: Path) -> None:
    """ConfigError lists every missing variable at once, shows no present value, and has a hint."""
    env = {"SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY}
    with pytest.raises(errors.ConfigError) as info:
        live_credentials(env, flyctl_config=no_flyctl)
    text = str(info.value)
    for name in ("FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "SUPABASE_URL", "SUPABASE_ACCESS_TOKEN", "SUPABASE_PROJECT_REF"):
        assert name in text
    assert "SUPABASE_SERVICE_ROLE_KEY" not in info.value.message
    assert SERVICE_KEY not in text
    assert info.value.hint and "sandbox" in info.value.hint


def test_mismatched_project_ref_and_url_is_refused(no_flyctl: Path) -> None:
    """SUPABASE_PROJECT_REF naming another project than SUPABASE_URL raises ConfigError."""
    env = {**FULL_ENV, "SUPABASE_PROJECT_REF": "zzzzzzzzzzzzzzzzzzzz"}
    with pytest.raises(errors.ConfigError, match="same project"):
        live_credentials(env, flyctl_config=no_flyctl)


def test_non_http_supabase_url_is_refused(no_flyctl: Path) -> None:
    """A SUPABASE_URL that is not an http(s) URL raises ConfigError."""
    env = {**FULL_ENV, "SUPABASE_URL": "abcdefghijklmnopqrst.supabase.co"}
    with pytest.raises(errors.ConfigError, match="SUPABASE_URL"):
        live_credentials(env, flyctl_config=no_flyctl)


def test_every_token_read_is_registered_for_redaction(no_flyctl: Path) -> None:
    """After live_credentials, redact() masks the Fly token, service key and access token."""
    env = {
        **FULL_ENV,
        "FLY_API_TOKEN": "unshaped-reg-fly-0007",
        "SUPABASE_SERVICE_ROLE_KEY": "unshaped-reg-key-0008",
        "SUPABASE_ACCESS_TOKEN": "unshaped-reg-pat-0009",
    }
    live_credentials(env, flyctl_config=no_flyctl)
    text = errors.redact("unshaped-reg-fly-0007 unshaped-reg-key-0008 unshaped-reg-pat-0009")
    assert "unshaped-reg" not in text


def test_credentials_repr_masks_every_token(no_flyctl: Path) -> None:
    """repr() and str() of LiveCredentials show the URL and ref but no token."""
    creds = live_credentials(FULL_ENV, flyctl_config=no_flyctl)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert FLY_TOKEN not in text and SERVICE_KEY not in text and ACCESS_TOKEN not in text
        assert REF in text and "***" in text


# --------------------------------------------------------------------------- URLs and paths


def test_live_urls_are_the_real_hosts() -> None:
    """LIVE_URLS names the real Machines, Fly API, registry and Supabase Management hosts."""
    assert LIVE_URLS == {
        "fly_machines": "https://api.machines.dev",
        "fly_api": "https://api.fly.io",
        "fly_registry": "https://registry.fly.io",
        "supabase_mgmt": "https://api.supabase.com",
    }


def test_live_base_url_maps_each_platform(no_flyctl: Path) -> None:
    """live_base_url sends Supabase REST/functions to SUPABASE_URL and the rest to LIVE_URLS."""
    creds = live_credentials(FULL_ENV, flyctl_config=no_flyctl)
    assert live_base_url("fly-machines", creds) == "https://api.machines.dev"
    assert live_base_url("fly-graphql", creds) == "https://api.fly.io"
    assert live_base_url("fly-registry", creds) == "https://registry.fly.io"
    assert live_base_url("supabase-mgmt", creds) == "https://api.supabase.com"
    assert live_base_url("supabase-rest", creds) == f"https://{REF}.supabase.co"


def test_base_url_variables_move_each_api() -> None:
    """FLY_API_BASE_URL, FLY_FLAPS_BASE_URL, FLY_REGISTRY_HOST and SUPABASE_API_URL move their API; unset keeps it."""
    assert live_urls({}) == LIVE_URLS
    env = {
        "FLY_API_BASE_URL": "http://127.0.0.1:8080/",
        "FLY_FLAPS_BASE_URL": "http://_api.internal:4280",
        "FLY_REGISTRY_HOST": "registry.example.com:5000",
        "SUPABASE_API_URL": "https://mgmt.example.com/prefix",
    }
    assert live_urls(env) == {
        "fly_api": "http://127.0.0.1:8080",
        "fly_machines": "http://_api.internal:4280",
        "fly_registry": "https://registry.example.com:5000",
        "supabase_mgmt": "https://mgmt.example.com/prefix",
    }
    assert live_urls({"FLY_REGISTRY_HOST": "http://127.0.0.1:9000"})["fly_registry"] == "http://127.0.0.1:9000"
    assert live_urls({"FLY_FLAPS_BASE_URL": "  "}) == LIVE_URLS


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FLY_API_BASE_URL", "api.fly.io"),
        ("FLY_API_BASE_URL", "ftp://api.fly.io"),
        ("FLY_FLAPS_BASE_URL", "http://"),
        ("FLY_FLAPS_BASE_URL", "http://host:port"),
        ("SUPABASE_API_URL", "https://user:unshaped-pw-0012@api.supabase.com"),
        ("SUPABASE_API_URL", "https://api.supabase.com?x=1"),
        ("FLY_REGISTRY_HOST", "registry.fly.io/v2"),
        ("FLY_REGISTRY_HOST", "registry fly io"),
    ],
)
def test_a_bad_base_url_is_a_config_error_naming_its_variable(variable: str, value: str) -> None:
    """A value that is not an http(s) base (or, for the registry, a host) is refused, naming the variable."""
    with pytest.raises(errors.ConfigError) as info:
        live_urls({variable: value})
    assert variable in str(info.value) and "unshaped-pw" not in str(info.value)


def test_live_base_url_follows_the_environments_urls(no_flyctl: Path) -> None:
    """live_base_url reads the URLs live_urls found in the environment."""
    creds = live_credentials(FULL_ENV, flyctl_config=no_flyctl)
    urls = live_urls({"FLY_FLAPS_BASE_URL": "http://_api.internal:4280"})
    assert live_base_url("fly-machines", creds, urls) == "http://_api.internal:4280"
    assert live_base_url("fly-graphql", creds, urls) == "https://api.fly.io"


ROOT = Path(__file__).resolve().parent.parent


def test_environment_variables_win_over_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$VYXOPS_SANDBOX_DIR and $VYXOPS_AUDIT_LOG are used as given, even inside a project."""
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert sandbox_dir({"VYXOPS_SANDBOX_DIR": "/srv/sb"}) == Path("/srv/sb")
    assert audit_log_path({"VYXOPS_AUDIT_LOG": "/var/log/a.jsonl"}) == Path("/var/log/a.jsonl")


def test_lab_kernel_in_notebooks_opens_the_checkouts_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """From notebooks/ (where JupyterLab runs kernels), the default sandbox and audit log are the checkout's."""
    monkeypatch.chdir(ROOT / "notebooks")
    assert sandbox_dir({}) == ROOT / ".vyxops" / "sandbox"
    assert audit_log_path({}) == ROOT / ".vyxops" / "audit.jsonl"


def test_defaults_come_from_the_nearest_directory_with_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below a directory holding pyproject.toml, the defaults live in that directory's .vyxops/."""
    (tmp_path / "outer" / "inner" / "deep").mkdir(parents=True)
    (tmp_path / "outer" / "pyproject.toml").write_text("")
    (tmp_path / "outer" / "inner" / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path / "outer" / "inner" / "deep")
    assert project_dir() == tmp_path / "outer" / "inner"
    assert sandbox_dir({}) == tmp_path / "outer" / "inner" / ".vyxops" / "sandbox"
    assert audit_log_path({}) == tmp_path / "outer" / "inner" / ".vyxops" / "audit.jsonl"


def test_a_vyxops_directory_marks_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside a checkout, the .vyxops/ an earlier run left marks the project for runs in subdirectories."""
    (tmp_path / "incidents" / ".vyxops").mkdir(parents=True)
    (tmp_path / "incidents" / "2025-10-02").mkdir()
    monkeypatch.chdir(tmp_path / "incidents" / "2025-10-02")
    assert sandbox_dir({}) == tmp_path / "incidents" / ".vyxops" / "sandbox"


def test_without_a_project_the_defaults_are_under_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no pyproject.toml or .vyxops/ at or above the cwd, the defaults are under the cwd."""
    above = [d for d in tmp_path.parents if (d / "pyproject.toml").is_file() or (d / ".vyxops").is_dir()]
    assert not above, f"this test needs a temp dir outside any project, but {above[0]} is one"
    monkeypatch.chdir(tmp_path)
    assert project_dir() is None
    assert sandbox_dir({}) == tmp_path / ".vyxops" / "sandbox"
    assert audit_log_path({}) == tmp_path / ".vyxops" / "audit.jsonl"

"""`vyxops investigate` end to end: every shipped scenario through the CLI and the notebook."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from vyxops.shell.cli import main
from vyxops_sandbox.scenario import load_scenario, scenario_names

#: scenario -> (verdict, root cause, the other findings' codes): each file's header comment says why.
EXPECTED = {
    "stub-image": (
        "root_cause",
        "SECRET_IMAGE_NOT_CURRENT_RELEASE",
        {"MACHINE_EXITED_AUTO_DESTROYED", "DB_STATUS_STUCK"},
    ),
    "secret-tag-missing": ("root_cause", "IMAGE_TAG_MISSING", {"MACHINE_CREATE_REJECTED"}),
    "latest-never-tagged": ("root_cause", "LATEST_TAG_MISSING", {"MACHINE_CREATE_REJECTED"}),
    "latest-pruned": ("root_cause", "LATEST_TAG_MISSING", {"MACHINE_CREATE_REJECTED"}),
    "image-pull-fails": ("root_cause", "MACHINE_LAUNCH_FAILED", {"DB_STATUS_STUCK"}),
    "machine-never-reports": ("root_cause", "DB_FLY_STATE_DRIFT", {"DB_STATUS_STUCK"}),
    "release-image-crashes": ("root_cause", "MACHINE_EXITED_AUTO_DESTROYED", {"DB_STATUS_STUCK"}),
    "healthy": ("healthy", None, set()),
    # the wider world: healthy noise, and one story per platform key
    "healthy-noise": ("healthy", None, set()),
    "healthy-go-null-lists": ("healthy", None, set()),
    "rollback-after-a-crashing-release": ("healthy", None, {"MACHINE_EXITED_AUTO_DESTROYED", "DB_STATUS_STUCK"}),
    "destroyed-machine-without-destroy-event": (
        "root_cause",
        "SECRET_IMAGE_NOT_CURRENT_RELEASE",
        {"MACHINE_EXITED_AUTO_DESTROYED", "DB_STATUS_STUCK"},
    ),
    "stub-image-exit-code-not-reported": (
        "root_cause",
        "SECRET_IMAGE_NOT_CURRENT_RELEASE",
        {"MACHINE_EXITED_AUTO_DESTROYED", "DB_STATUS_STUCK"},
    ),
    "stub-image-free-plan-late": (
        "root_cause",
        "SECRET_IMAGE_NOT_CURRENT_RELEASE",
        {"MACHINE_EXITED_AUTO_DESTROYED", "DB_STATUS_STUCK"},
    ),
    "stub-image-in-repository-the-token-cannot-see": (
        "root_cause",
        "SECRET_IMAGE_NOT_CURRENT_RELEASE",
        {"MACHINE_EXITED_AUTO_DESTROYED", "DB_STATUS_STUCK"},
    ),
    "stub-image-macaroon-token": (
        "root_cause",
        "SECRET_IMAGE_NOT_CURRENT_RELEASE",
        {"MACHINE_EXITED_AUTO_DESTROYED", "DB_STATUS_STUCK"},
    ),
    "stub-image-sb-secret-key": (
        "root_cause",
        "SECRET_IMAGE_NOT_CURRENT_RELEASE",
        {"MACHINE_EXITED_AUTO_DESTROYED", "DB_STATUS_STUCK"},
    ),
    "stub-image-secrets-without-updated-at": (
        "root_cause",
        "SECRET_IMAGE_NOT_CURRENT_RELEASE",
        {"MACHINE_EXITED_AUTO_DESTROYED", "DB_STATUS_STUCK"},
    ),
    # other teams' pipelines (SPEC.md third round), their contracts discovered from the platforms
    "workspaces-fly-token-revoked": ("root_cause", "FLY_TOKEN_REJECTED", {"MACHINE_CREATE_REJECTED"}),
    "workspaces-image-secret-unset": ("root_cause", "IMAGE_SECRET_UNSET", {"PROVISIONING_REQUEST_FAILED"}),
    "gameservers-region-capacity": ("root_cause", "REGION_CAPACITY", {"MACHINE_CREATE_REJECTED"}),
    "gameservers-rate-limited-burst": ("root_cause", "PROVISIONING_RATE_LIMITED", {"MACHINE_CREATE_REJECTED"}),
    "sandboxes-silent-failures": ("root_cause", "PROVISIONING_REQUEST_FAILED", set()),
    "kernels-tag-missing-in-own-words": ("root_cause", "SECRET_DIGEST_UNMATCHED", {"MACHINE_CREATE_REJECTED"}),
    "sandboxes-healthy-busy-day": ("healthy", None, set()),
}
#: Run end to end through the CLI and its notebook; the rest are investigated in-process (same code, no kernel).
THROUGH_THE_CLI = (
    "stub-image",
    "secret-tag-missing",
    "healthy",
    "healthy-noise",
    "stub-image-in-repository-the-token-cannot-see",
    "workspaces-fly-token-revoked",
)


def test_every_shipped_scenario_has_an_expectation() -> None:
    """A scenario added to vyxops/scenarios must say here what its investigation finds."""
    assert set(scenario_names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_shipped_scenario_gets_its_diagnosis(name: str, tmp_path: Path) -> None:
    """Each shipped scenario's verdict, root cause and companions are as its header says; no critical without a root."""
    from vyxops.analysis.investigate import investigate
    from vyxops.fetch.session import open_session

    verdict, root, companions = EXPECTED[name]
    app = load_scenario(name).apps[0]
    with open_session("sandbox", scenario=name, sandbox_dir=tmp_path) as s:
        inv = investigate(s, app)
    assert inv.verdict == verdict and (inv.root.code if inv.root else None) == root
    assert {f.code for f in inv.findings} == ({root} if root else set()) | companions
    if root is None:
        assert not any(f.severity == "critical" for f in inv.findings)


@pytest.mark.parametrize("name", THROUGH_THE_CLI)
def test_investigate_names_the_root_cause_of_each_scenario(
    name: str, sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI names the scenario's root cause with its companions and nothing else, and writes every artefact."""
    _, root, companions = EXPECTED[name]
    app = load_scenario(name).apps[0]
    out = tmp_path / "out"
    assert main(["investigate", "--scenario", name, "--app", app, "--out", str(out)]) == 0
    doc = json.loads((out / "findings.json").read_text())
    assert doc["schema"] == "vyxops.findings/1" and doc["app"] == app and doc["target"] == f"sandbox:{name}"
    found = {f["code"] for f in doc["findings"]}
    if root is None:
        assert doc["root_cause"] is None and found == companions
        assert not any(f["severity"] == "critical" for f in doc["findings"])
    else:
        assert doc["root_cause"]["code"] == root
        assert found == {root} | companions
        assert doc["root_cause"]["summary"]
        for f in doc["findings"]:
            assert f["evidence"] and all({"source", "time", "detail"} <= set(x) for x in f["evidence"])
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith(f"root cause: {root}" if root else "root cause: none")
    assert str(out / "investigate.html") in printed
    tl = pd.read_parquet(out / "timeline.parquet")
    assert str(tl["time"].dtype) == "datetime64[ns, UTC]" and tl["time"].is_monotonic_increasing and len(tl) > 0
    html = (out / "investigate.html").read_text()
    assert "data:image/png;base64," in html  # the timeline plot is in the report
    import nbformat

    nb = nbformat.read(str(out / "investigate.ipynb"), as_version=4)
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert "open_session(" not in html  # code hidden
    if root:
        assert root in html


def test_seed_report_tells_the_chain(sandbox_env: Path, tmp_path: Path) -> None:
    """The seed's report says the stub exists, the machine exited 0 and was auto-destroyed, the row is stuck."""
    out = tmp_path / "seed"
    assert main(["investigate", "--scenario", "stub-image", "--app", "vyx-app", "--out", str(out)]) == 0
    summary = json.loads((out / "findings.json").read_text())["root_cause"]["summary"]
    for needle in (
        "registry.fly.io/vyx-app:stub",
        "exists in the registry",
        "5683732efe3208",
        "exited with code 0",
        "auto_destroy",
        "starting",
    ):
        assert needle in summary


def test_bad_input_exits_2_before_any_call(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unknown app, scenario, target or time: exit 2 with a message naming the input, and nothing written."""
    out = tmp_path / "never"
    cases = [
        (["--scenario", "stub-image", "--app", "no-such-app"], "--app"),
        (["--scenario", "no-such-scenario", "--app", "vyx-app"], "--scenario"),
        (["--target", "staging", "--app", "vyx-app"], "--target"),
        (["--scenario", "stub-image", "--app", "vyx-app", "--since", "yesterday"], "--since"),
        (["--scenario", "stub-image", "--app", "Bad_App"], "--app"),
    ]
    for args, name in cases:
        assert main(["investigate", *args, "--out", str(out)]) == 2, args
        assert name in capsys.readouterr().err
    assert not out.exists()


def test_live_target_without_credentials_names_the_missing_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--target live with no credentials exits 2 naming every missing variable, before any call."""
    for var in (
        "FLY_API_TOKEN",
        "FLY_ACCESS_TOKEN",
        "SUPABASE_URL",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_ACCESS_TOKEN",
        "SUPABASE_PROJECT_REF",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["investigate", "--target", "live", "--app", "vyx-app", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "FLY_API_TOKEN" in err and "SUPABASE_ACCESS_TOKEN" in err


def test_capture_then_replay_a_bundle_gives_the_same_findings(sandbox_env: Path, tmp_path: Path) -> None:
    """Evidence captured from the sandbox replays offline as bundle:PATH to the same root cause."""
    bundle = tmp_path / "bundle"
    assert main(["capture", "--scenario", "stub-image", "--app", "vyx-app", "--out", str(bundle)]) == 0
    out = tmp_path / "replayed"
    assert main(["investigate", "--target", f"bundle:{bundle}", "--app", "vyx-app", "--out", str(out)]) == 0
    doc = json.loads((out / "findings.json").read_text())
    assert doc["root_cause"]["code"] == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
    assert doc["target"] == f"bundle:{bundle}"


def test_platform_failure_inside_the_notebook_reaches_the_user_as_a_message(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A platform refusing every call (429 on GraphQL, via faults.json) exits 3 with the vyxops error, no traceback."""
    from vyxops_sandbox.faults import FaultRule, Faults
    from vyxops_sandbox.world import World

    World.load("stub-image", sandbox_env)
    Faults([FaultRule(kind="429", rate=1.0, path="/graphql")]).save(sandbox_env)
    assert main(["investigate", "--scenario", "stub-image", "--app", "vyx-app", "--out", str(tmp_path / "o")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("vyxops: fly-api POST /graphql -> 429") and "RateLimitedError" not in err  # one line
    assert "Traceback" not in err and 'File "' not in err

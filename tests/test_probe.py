"""--probe: a canary provisioned now shows what old evidence no longer can, and cleans up after itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vyxops.cli import main
from vyxops.errors import ConfigError
from vyxops.probe import probe_and_investigate
from vyxops.session import open_session
from vyxops_sandbox.testing import world_of

STORIES = Path(__file__).parent / "scenarios"


def test_a_probe_turns_an_inconclusive_outage_into_its_root_cause(tmp_path: Path, sandbox_env: Path) -> None:
    """Logs aged out, the secret unmatched: the probe's refused create names the missing tag, and the canary is gone."""
    scenario = STORIES / "outage-function-logs-aged-out-free-plan.yaml"
    app = "worker-app"
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "sb") as s:
        probed = probe_and_investigate(s, app)
        world = world_of(s)
        machines = world.app(app)["machines"].values()  # type: ignore[index]
        canaries = [
            m
            for m in machines
            if str((m["config"].get("metadata") or {}).get("user_id", "")).startswith("vyxops-verify-")
        ]
    inv = probed.investigation
    assert probed.result is not None
    assert inv.root is not None and inv.root.code == "IMAGE_TAG_MISSING"
    assert "MACHINE_CREATE_REJECTED" in {f.code for f in inv.findings}
    assert all(m["state"] == "destroyed" for m in canaries)  # a refused create made none; any made is cleaned up
    lines = [json.loads(x) for x in (sandbox_env.parent / "audit.jsonl").read_text().splitlines()]
    assert any(x["action"] == "VERIFY_PROVISIONING" and x["kind"] == "intent" for x in lines)


def test_a_probe_of_healthy_provisioning_finds_it_healthy_and_leaves_nothing(tmp_path: Path, sandbox_env: Path) -> None:
    """On a healthy app the canary starts, reports running, and is cleaned up; the verdict stays healthy."""
    with open_session("sandbox", scenario="healthy", sandbox_dir=tmp_path / "sb") as s:
        probed = probe_and_investigate(s, "vyx-app")
        rows = world_of(s).state["supabase"]["tables"]["machines"]["rows"]
    assert probed.investigation.verdict == "healthy"
    canary_rows = [r for r in rows if str(r["user_id"]).startswith("vyxops-verify-")]
    assert canary_rows and all(r["status"] not in ("starting", "running") for r in canary_rows)


def test_a_probe_the_function_would_refuse_is_refused_up_front(tmp_path: Path, sandbox_env: Path) -> None:
    """An sb_secret_ key against a verify_jwt function: ConfigError naming why, and no canary is made."""
    with open_session("sandbox", scenario="stub-image-sb-secret-key", sandbox_dir=tmp_path / "sb") as s:
        before = len(world_of(s).app("vyx-app")["machines"])  # type: ignore[index]
        with pytest.raises(ConfigError, match="verify_jwt"):
            probe_and_investigate(s, "vyx-app")
        assert len(world_of(s).app("vyx-app")["machines"]) == before  # type: ignore[index]
    assert not (sandbox_env.parent / "audit.jsonl").exists()


def test_investigate_probe_through_the_cli_exits_2_when_refused(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vyxops investigate --probe` on a key the function refuses exits 2 with the reason."""
    code = main(
        [
            "investigate",
            "--scenario",
            "stub-image-sb-secret-key",
            "--app",
            "vyx-app",
            "--probe",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "verify_jwt" in capsys.readouterr().err

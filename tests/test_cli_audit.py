"""`vyxops audit`: scheduled checks fail the run when findings reach --fail-on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vyxops.shell.cli import main


def test_audit_fails_on_a_critical_finding_and_names_the_root_cause(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Auditing every app of the seed exits 1 and audit.json names vyx-app's root cause."""
    out = tmp_path / "audit"
    assert main(["audit", "--scenario", "stub-image", "--all", "--out", str(out)]) == 1
    doc = json.loads((out / "audit.json").read_text())
    assert doc["schema"] == "vyxops.analysis.audit/1"
    assert [(a["app"], a["worst"], a["root_cause"]) for a in doc["apps"]] == [
        ("vyx-app", "critical", "SECRET_IMAGE_NOT_CURRENT_RELEASE")
    ]
    assert (out / "audit.html").is_file() and "vyx-app" in capsys.readouterr().out


def test_audit_of_a_healthy_app_passes_and_warnings_fail_only_when_asked(sandbox_env: Path, tmp_path: Path) -> None:
    """A healthy app exits 0; a stale :latest (a warning) exits 0 by default and 1 with --fail-on warning."""
    from pathlib import Path as P

    assert main(["audit", "--scenario", "healthy", "--app", "vyx-app", "--out", str(tmp_path / "h")]) == 0
    stale = str(P(__file__).parent / "scenarios" / "latest-stale.yaml")
    assert main(["audit", "--scenario", stale, "--app", "eps-app", "--out", str(tmp_path / "s1")]) == 0
    assert (
        main(["audit", "--scenario", stale, "--app", "eps-app", "--fail-on", "warning", "--out", str(tmp_path / "s2")])
        == 1
    )


def test_audit_needs_apps(sandbox_env: Path, tmp_path: Path) -> None:
    """Without --app or --all the audit refuses with exit 2, naming both options."""
    assert main(["audit", "--scenario", "stub-image", "--out", str(tmp_path / "x")]) == 2


def test_an_audit_reads_project_wide_sources_once_for_all_apps(tmp_path: Path) -> None:
    """Auditing two apps reads secrets, functions and function logs once; it finds what separate investigations find."""
    from vyxops.analysis.audit import run_audit
    from vyxops.analysis.investigate import investigate
    from vyxops.fetch.session import open_session

    story = Path(__file__).parent / "scenarios" / "two-apps-only-beta-broken.yaml"

    def management_calls(session: object) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ex in session.recorder.exchanges:  # type: ignore[attr-defined]
            path = json.loads(ex["key"])[1]
            if path.startswith("/v1/projects/"):
                name = path.rsplit("/", 1)[-1]
                counts[name] = counts.get(name, 0) + 1
        return counts

    with open_session("sandbox", scenario=story, sandbox_dir=tmp_path / "one", record=True) as s:
        alone = {app: investigate(s, app) for app in ("alpha-app", "beta-app")}
    with open_session("sandbox", scenario=story, sandbox_dir=tmp_path / "audit", record=True) as s:
        audit = run_audit(s, ["alpha-app", "beta-app"])
        calls = management_calls(s)
    assert calls["secrets"] == 1 and calls["functions"] == 1
    assert calls["logs"] == 2  # one query per log source, for both apps
    for app, inv in alone.items():
        got = audit.investigations[app]
        assert (got.root.code if got.root else None) == (inv.root.code if inv.root else None)
        assert sorted(f.code for f in got.findings) == sorted(f.code for f in inv.findings)


def test_one_apps_failure_is_its_own_error_row_and_the_others_are_reported(tmp_path: Path) -> None:
    """An app whose reads fail becomes an `error` row with its typed error; the other app's findings still come."""
    from vyxops.analysis.audit import run_audit
    from vyxops.core.errors import TransportError
    from vyxops.fetch.session import open_session

    scenario = Path(__file__).parent / "scenarios" / "two-apps-only-beta-broken.yaml"
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "sb") as s:
        real = s.fly.list_machines

        def flaky(app: str, **kw: object) -> list[dict[str, object]]:
            if app == "alpha-app":
                raise TransportError(
                    "timed out", platform="fly-machines", method="GET", path=f"/v1/apps/{app}/machines"
                )
            return real(app, **kw)  # type: ignore[arg-type]

        s.fly.list_machines = flaky  # type: ignore[method-assign]
        audit = run_audit(s, ["alpha-app", "beta-app"])
    doc = audit.document("critical")
    rows = {a["app"]: a for a in doc["apps"]}
    assert rows["alpha-app"]["worst"] == "error" and rows["alpha-app"]["error"]["type"] == "TransportError"
    assert rows["beta-app"]["root_cause"] == "LATEST_TAG_MISSING"
    assert doc["unreachable"] is True

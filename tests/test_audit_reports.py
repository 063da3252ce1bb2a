"""Scheduled audits always report: whatever ends the run, `--json` prints one summary and `--notify` one message.

Each notification goes to a webhook receiver on 127.0.0.1 (Apprise's ``json://``), started and stopped here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from vyxops.shell.cli import main

TWO_APPS = str(Path(__file__).parent / "scenarios" / "two-apps-only-beta-broken.yaml")
TWO_APPS_PROJECT, TWO_APPS_ORG = "teamxprojectrefaabzz", "team-x"


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        _Receiver.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """An Apprise ``json://`` URL on 127.0.0.1 and the messages it received (Apprise posts title, message, type)."""
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.received.clear()
    try:
        yield f"json://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _faults(sandbox_dir: Path, *rules: dict[str, object]) -> None:
    sandbox_dir.mkdir(parents=True, exist_ok=True)
    (sandbox_dir / "faults.json").write_text(json.dumps({"seed": 0, "rules": list(rules)}))


def _credentials(scenario: str, sandbox_dir: Path) -> list[str]:
    from vyxops_sandbox.world import World

    return [v for v in World.load(scenario, sandbox_dir).credentials.values() if len(v) > 20]


def test_an_unreachable_platform_still_prints_the_summary_and_sends_one_failure(
    sandbox_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hook: tuple[str, list[dict[str, object]]],
) -> None:
    """Every Machines API call answers 503: the org's apps cannot be listed. Exit 3; stdout is one JSON summary
    with the error; one message of Apprise's failure type names target, project, org and the absolute paths."""
    url, received = hook
    _faults(sandbox_env, {"kind": "5xx", "status": 503, "path": "^/v1/apps"})
    monkeypatch.chdir(tmp_path)  # --out is relative: the message must still give absolute paths
    code = main(["audit", "--scenario", TWO_APPS, "--all", "--json", "--notify", url, "--out", "a"])
    assert code == 3
    summary = json.loads(capsys.readouterr().out)
    assert summary["exit_code"] == 3 and summary["failed"] is True
    assert "503" in summary["error"] and "\n" not in summary["error"]
    target = "sandbox:two-apps-only-beta-broken"  # the target as reports name it, with its scenario
    assert (summary["target"], summary["project"], summary["org"]) == (target, TWO_APPS_PROJECT, TWO_APPS_ORG)
    audit_json = str((tmp_path / "a" / "audit.json").resolve())
    assert summary["audit"] == audit_json and Path(audit_json).is_file()
    assert json.loads(Path(audit_json).read_text())["error"]["exit_code"] == 3
    [message] = received
    assert message["type"] == "failure"
    text = f"{message['title']}\n{message['message']}"
    for named in (target, TWO_APPS_PROJECT, TWO_APPS_ORG, "503", audit_json):
        assert named in text, named
    assert not any(secret in text for secret in _credentials(TWO_APPS, sandbox_env))


def test_a_failing_apps_error_is_one_line_and_a_healthy_audit_sends_nothing(
    sandbox_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hook: tuple[str, list[dict[str, object]]],
) -> None:
    """alpha-app's machines cannot be read: its line is its error (never "error, error"), beta-app its root cause,
    the report's path absolute. Then a healthy audit: no message at all."""
    url, received = hook
    _faults(sandbox_env, {"kind": "5xx", "status": 503, "path": "^/v1/apps/alpha-app/machines"})
    monkeypatch.chdir(tmp_path)
    code = main(["audit", "--scenario", TWO_APPS, "--all", "--json", "--notify", url, "--out", "b"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and summary["exit_code"] == 1 and summary["error"] is None
    [message] = received
    assert message["type"] == "failure"
    body = str(message["message"])
    [alpha] = [line for line in body.splitlines() if "alpha-app" in line]
    assert "could not be investigated" in alpha and "503" in alpha and "error, error" not in body
    assert any("beta-app" in line and "LATEST_TAG_MISSING" in line for line in body.splitlines())
    assert str((tmp_path / "b" / "audit.html").resolve()) in body
    assert TWO_APPS_PROJECT in body and TWO_APPS_ORG in body

    (sandbox_env / "faults.json").unlink()
    assert main(["audit", "--scenario", "healthy", "--all", "--json", "--notify", url, "--out", "h"]) == 0
    assert json.loads(capsys.readouterr().out)["failed"] is False
    assert len(received) == 1  # a healthy run is silent


def test_an_unexpected_error_still_reports(
    sandbox_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hook: tuple[str, list[dict[str, object]]],
) -> None:
    """A notebook that stops on an error no vyxops class names (a bug): exit 1, the summary and one failure."""
    from vyxops.shell import cli
    from vyxops.shell.runner import NotebookFailed

    def broken(name: str, args: object, title: str, **params: object) -> tuple[Path, Path]:
        raise NotebookFailed(tmp_path / "c" / "audit.ipynb", "KeyError", "'verdict'", 2)

    monkeypatch.setattr(cli, "_run", broken)
    code = main(["audit", "--scenario", "healthy", "--app", "vyx-app", "--json", "--notify", url_of(hook),
                 "--out", str(tmp_path / "c")])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1 and err.startswith("vyxops: KeyError")
    summary = json.loads(out)
    assert summary["exit_code"] == 1 and "KeyError" in summary["error"]
    [message] = hook[1]
    assert message["type"] == "failure" and "KeyError" in str(message["message"])


def test_bad_input_prints_its_line_and_notifies_nobody(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], hook: tuple[str, list[dict[str, object]]]
) -> None:
    """A malformed app name is the operator's mistake at the terminal: exit 2 before any work, no message."""
    code = main(["audit", "--app", "Not An App!", "--json", "--notify", url_of(hook), "--out", str(tmp_path / "d")])
    assert code == 2 and capsys.readouterr().err.startswith("vyxops: ")
    assert hook[1] == []


def url_of(hook: tuple[str, list[dict[str, object]]]) -> str:
    return hook[0]


def test_a_message_never_holds_a_token() -> None:
    """A token inside an app's error or the run's error is masked in title and body (the outputs' redaction)."""
    from vyxops.shell.notify import failure_message

    token = "sbp_" + "0123456789abcdef" * 2 + "01234567"
    summary = {
        "target": "live", "project": "abcdefghijklmnopqrst", "org": "acme", "fail_on": "critical", "exit_code": 3,
        "error": f"ApiError: supabase-mgmt 403: token {token} refused", "report": None, "notebook": None,
        "audit": "/srv/audit.json",
        "apps": [{"app": "vyx-app", "worst": "error", "verdict": "error", "root_cause": None, "failing": True,
                  "error": {"type": "AuthError", "message": f"supabase-mgmt 403\nBearer {token}"}}],
    }  # fmt: skip
    title, body = failure_message(summary)
    assert token not in title + body and "[REDACTED]" in body
    assert "- vyx-app: could not be investigated: AuthError: supabase-mgmt 403" in body

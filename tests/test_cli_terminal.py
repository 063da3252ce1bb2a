"""What the terminal shows (issue 20, "The terminal"): the dry run's changes, the audit log's path, `vyxops log`,
one-line errors, a fast offline failure, wrapped lines, strict options and a default --out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vyxops.shell import runner
from vyxops.shell.cli import main

APP = "vyx-app"


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh sandbox and audit log in the environment, the working directory a temporary one."""
    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(tmp_path / "sandbox"))
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def no_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the notebook ran")

    monkeypatch.setattr(runner, "run_notebook", refuse)


# --------------------------------------------------------------------------- remediate: dry run and apply


def test_dry_run_prints_each_change_and_apply_prints_the_audit_log(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under each planned action: the secret's old → new image ref, the row's old → new status and the command or
    SQL that makes the change by hand. An apply then names the audit log it wrote to."""
    out = sandbox / "plan"
    assert main(["remediate", "--scenario", "stub-image", "--app", APP, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    plan = json.loads((out / "plan.json").read_text())
    pin, rows = plan["actions"][0], plan["actions"][1]
    assert f"ref: {pin['before']['secret_ref']} → {pin['after']['ref']}" in printed
    assert f"status: {rows['before']['status']} → {rows['after']['status']}" in printed
    assert f"$ {pin['native'][0]}" in printed
    assert f"sql: {rows['native'][0]}" in printed
    lines = printed.splitlines()
    head = next(i for i, line in enumerate(lines) if "RECONCILE_STUCK_ROWS" in line)
    assert lines[head + 1].startswith(" " * 10 + "status: ")  # indented under its action, not elsewhere

    assert main(["remediate", "--app", APP, "--out", str(out), "--apply", "--confirm", APP]) == 0
    printed = capsys.readouterr().out
    assert f"audit log: {sandbox / 'audit.jsonl'}" in printed.splitlines()


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "argv, named",
    [
        (["investigate", "--ap", APP, "--out", "x"], "--ap"),
        (["audit", "--ap", APP, "--out", "x"], "--ap"),
        (["remediate", "--app", APP, "--appl"], "--appl"),
        (["audit", "--all", "--app", APP], "--app"),
        (["audit", "--app", APP, "--all"], "--all"),
    ],
)
def test_abbreviations_and_all_with_app_are_refused(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    """``--ap`` is not ``--app`` (no abbreviations), and ``audit --all --app X`` is two answers: exit 2 naming it,
    before any work."""
    no_notebook(monkeypatch)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vyxops: {named}: "), err
    assert not (sandbox / "x").exists() and not (sandbox / "out").exists()


def test_out_defaults_to_a_folder_named_by_verb_app_and_time(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --out, a run writes into out/<verb>-<app>-<UTC time> under the working directory and says where."""
    assert main(["investigate", "--scenario", "healthy", "--app", APP]) == 0
    made = list((sandbox / "out").iterdir())
    assert len(made) == 1 and re.fullmatch(rf"investigate-{APP}-\d{{8}}T\d{{6}}Z", made[0].name), made
    assert (made[0] / "findings.json").is_file()
    assert f"report:     out/{made[0].name}/investigate.html" in capsys.readouterr().out


def test_default_out_names_several_apps_and_all() -> None:
    from vyxops.shell.cli import default_out

    at = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    assert default_out("audit", ["a-app", "b-app"], now=at) == Path("out/audit-a-app+b-app-20270115T080000Z")
    assert default_out("audit", [], all_apps=True, now=at) == Path("out/audit-all-20270115T080000Z")


# --------------------------------------------------------------------------- offline live


@pytest.fixture
def offline_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """--target live with dummy credentials, the Fly hosts on a closed local port and Supabase's unresolvable."""
    import socket

    with socket.socket() as s:  # a port nothing listens on: bound, then closed
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    for proxy in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    closed = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("FLY_API_TOKEN", "fo1_" + "d" * 40)
    monkeypatch.setenv("FLY_API_BASE_URL", closed)
    monkeypatch.setenv("FLY_FLAPS_BASE_URL", closed)
    monkeypatch.setenv("FLY_REGISTRY_HOST", closed)
    monkeypatch.setenv("SUPABASE_API_URL", "https://api.supabase.invalid")
    monkeypatch.setenv("SUPABASE_URL", "https://abcdefghijklmnopqrst.supabase.invalid")
    monkeypatch.setenv("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "sb_secret_" + "d" * 32)
    monkeypatch.setenv("SUPABASE_ACCESS_TOKEN", "sbp_" + "d" * 40)
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.chdir(tmp_path)
    return port


def test_offline_live_fails_in_seconds_with_a_network_hint(
    offline_live: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No network: exit 3 in under 5 s, before any kernel, naming the hosts and hinting at the network and proxy."""
    import time

    no_notebook(monkeypatch)
    started = time.monotonic()
    assert main(["investigate", "--target", "live", "--app", APP, "--out", "o"]) == 3
    assert time.monotonic() - started < 5
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("vyxops: cannot reach the platforms: ")
    assert f"127.0.0.1:{offline_live}" in lines[0] and "api.supabase.invalid does not resolve" in lines[0]
    assert lines[1].startswith("hint: check the network") and "proxy" in lines[1]
    assert "Error" not in lines[0]


def test_a_name_that_does_not_resolve_is_not_retried() -> None:
    """A host name that does not exist fails at its first attempt: backoff cannot make it exist."""
    import random

    import httpx

    from vyxops.core.errors import TransportError
    from vyxops.fetch.http import Api, RetryPolicy

    class NoSleep:
        sleeps: list[float] = []

        def now(self) -> float:
            return 0.0

        def sleep(self, seconds: float) -> None:
            self.sleeps.append(seconds)

    clock = NoSleep()
    client = httpx.Client(base_url="http://vyxops-test.invalid", timeout=2)
    api = Api(client, platform="fly-machines", clock=clock, retry=RetryPolicy(max_attempts=4), rng=random.Random(0))
    with pytest.raises(TransportError):
        api.request("GET", "/v1/apps")
    assert clock.sleeps == []


# --------------------------------------------------------------------------- errors raised in the kernel


@pytest.mark.parametrize(
    "ename, code",
    [("ConfigError", 2), ("TransportError", 3), ("AuthError", 3), ("AmbiguousContract", 2), ("LockHeld", 2)],
)
def test_an_error_raised_in_the_kernel_is_one_line_without_its_class(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ename: str, code: int
) -> None:
    """The kernel's vyxops error reads as if raised here: ``vyxops: <message>``, its hint, where the notebook is;
    no Python class name, and the exit status its class has (SPEC: 2 input/config, 3 platform)."""
    import vyxops.act.fixes.lock  # noqa: F401 - LockHeld
    import vyxops.core.contract  # noqa: F401 - AmbiguousContract, as the kernel would have it

    def fails(name: str, params: object, out: Path, **k: object) -> None:
        raise runner.NotebookFailed(out / f"{name}.ipynb", ename, "FLY_ORG is not set\nhint: set FLY_ORG", 3)

    monkeypatch.setattr(runner, "run_notebook", fails)
    assert main(["investigate", "--scenario", "healthy", "--app", APP, "--out", "o"]) == code
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "vyxops: FLY_ORG is not set",
        "hint: set FLY_ORG",
        "hint: the executed notebook is at o/investigate.ipynb (cell 3)",
    ]
    assert ename not in "\n".join(lines)


def test_an_unexpected_error_in_the_kernel_keeps_its_class() -> None:
    """A bug (not a vyxops error) keeps its class name, what a bug report needs, and exits 1."""
    failed = runner.NotebookFailed(Path("n.ipynb"), "KeyError", "'machines'", None)
    assert failed.exit_code == 1 and str(failed).startswith("KeyError: 'machines'")


# --------------------------------------------------------------------------- vyxops log


def write_log(path: Path) -> None:
    """Two runs' writes as the fixes log them: one applied on the sandbox, one left open on live a day later."""
    import pandas as pd

    from vyxops.act.fixes.audit_log import AuditLog

    for target, app, at in (
        ("sandbox:stub-image", APP, "2025-10-02T17:25:00Z"),
        ("live", "api-app", "2025-10-03T09:00:00Z"),
    ):
        log = AuditLog(path, target=target, app=app, who="oncall", now=lambda at=at: pd.Timestamp(at))
        log.open()
        change = {"before": {"ref": f"registry.fly.io/{app}:stub"}, "after": {"ref": f"registry.fly.io/{app}:v2"}}
        txn = log.intent("PIN_SECRET_TO_RELEASE", "set_secret", "secret:DOCKER_IMAGE", **change)
        if target != "live":
            log.outcome(txn, "applied", "pinned", **change)


def test_log_shows_the_audit_log_as_a_table(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One row per write: time, target, app, action, step, result (open when never settled), before → after;
    filtered by --app, --target and --since; --json gives the same rows."""
    write_log(sandbox / "audit.jsonl")
    assert main(["log"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TIME", "TARGET", "APP", "ACTION", "STEP", "RESULT", "ENTITY", "CHANGE"]
    assert lines[1].split()[:6] == ["2025-10-02T17:25:00Z", "sandbox:stub-image", APP, "PIN_SECRET_TO_RELEASE",
                                    "set_secret", "applied"]  # fmt: skip
    assert lines[1].endswith(f"ref: registry.fly.io/{APP}:stub → registry.fly.io/{APP}:v2")
    assert lines[2].split()[:6] == ["2025-10-03T09:00:00Z", "live", "api-app", "PIN_SECRET_TO_RELEASE",
                                    "set_secret", "open"]  # fmt: skip
    assert lines[-1] == f"audit log: {sandbox / 'audit.jsonl'} (2 write(s) shown)"

    for argv, apps in ((["--app", APP], [APP]), (["--target", "sandbox"], [APP]), (["--target", "live"], ["api-app"])):
        assert main(["log", *argv, "--json"]) == 0
        assert [r["app"] for r in json.loads(capsys.readouterr().out)] == apps, argv
    assert main(["log", "--since", "2025-10-03T00:00:00Z", "--json"]) == 0
    assert [r["result"] for r in json.loads(capsys.readouterr().out)] == ["open"]


def test_log_refuses_a_bad_since(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(sandbox / "audit.jsonl")
    assert main(["log", "--since", "yesterday"]) == 2
    assert capsys.readouterr().err.startswith("vyxops: --since: ")


# --------------------------------------------------------------------------- long lines


@pytest.mark.parametrize("argv", [["scenarios"], ["doctor"]])
def test_long_lines_are_wrapped_to_the_terminal_and_json_is_not(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """On an 80-column terminal no line is wider than 80, and every word is still there; --json is untouched."""
    monkeypatch.setenv("COLUMNS", "200000")  # as wide as any line: what is printed unwrapped
    assert main(argv) in (0, 1)
    whole = capsys.readouterr().out
    monkeypatch.setenv("COLUMNS", "80")
    assert main(argv) in (0, 1)
    narrow = capsys.readouterr().out
    assert max(len(line) for line in whole.splitlines()) > 80  # there is something to wrap
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert narrow.split() == whole.split()
    assert main([*argv, "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)

"""The CLI as a new user meets it: errors before work, one prefix, --version, help, pipes, scenarios, quiet audits."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from vyxops.shell import cli
from vyxops.shell.cli import build_parser, main

APP = "vyx-app"


def run_cli(args: list[str], env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "vyxops.shell.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["--since", "2025-10-02T17:00:00Z", "--until", "2025-10-02T16:00:00Z"], "--since/--until"),
        (["--since", "nan"], "--since"),
        (["--until", "9999-01-01T00:00:00Z"], "--until"),
        (["--machine", "nosuchmachine"], "--machine"),
        (["--machine", "../../v1/apps"], "--machine"),
        (["--tz", "Mars/Olympus"], "--tz"),
    ],
)
def test_bad_input_exits_2_before_a_kernel_starts(
    args: list[str], name: str, sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_kernel: None
) -> None:
    """Times out of order/range, an unknown or path-like machine, a bad zone: exit 2 naming it, no kernel, no --out."""
    out = tmp_path / "out"
    assert main(["investigate", "--scenario", "stub-image", "--app", APP, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vyxops: {name}") and "vyxops: vyxops:" not in err
    assert not out.exists()


def test_an_unwritable_out_is_a_clear_error(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out under a file, or a directory where findings.json goes: exit 2 naming --out, no traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["investigate", "--scenario", "stub-image", "--app", APP, "--out", str(blocker / "sub")]) == 2
    assert capsys.readouterr().err.startswith("vyxops: --out")
    out = tmp_path / "out"
    (out / "findings.json").mkdir(parents=True)
    assert main(["investigate", "--scenario", "stub-image", "--app", APP, "--out", str(out)]) == 2
    assert "findings.json is a directory" in capsys.readouterr().err


def test_a_bundle_for_another_app_or_window_is_refused_before_any_work(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaying a bundle for an app or a time it does not hold exits 2 from its metadata, not with late 404s."""
    bundle = tmp_path / "bundle"
    assert main(["capture", "--scenario", "stub-image", "--app", APP, "--out", str(bundle)]) == 0
    capsys.readouterr()
    target = f"bundle:{bundle}"
    assert main(["investigate", "--target", target, "--app", "other-app", "--out", str(tmp_path / "o")]) == 2
    assert "holds app 'vyx-app'" in capsys.readouterr().err
    late = ["--since", "2030-01-01T00:00:00Z", "--until", "2030-01-02T00:00:00Z"]
    assert main(["investigate", "--target", target, "--app", APP, *late, "--out", str(tmp_path / "o")]) == 2
    assert "outside the bundle's window" in capsys.readouterr().err


def test_a_busy_port_is_a_clear_error(sandbox_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sandbox serve` on a port in use, or no port at all, exits 2 naming --port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["sandbox", "serve", "--port", str(port)]) == 2
        assert capsys.readouterr().err.startswith(f"vyxops: --port: 127.0.0.1:{port} is not free")
    assert main(["sandbox", "serve", "--port", "99999"]) == 2
    assert "is not a TCP port" in capsys.readouterr().err


def test_usage_errors_have_one_prefix_and_name_the_argument(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's complaints come out once prefixed, naming the argument, with exit 2."""
    assert main(["audit", "--fail-on", "never", "--app", APP, "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vyxops: --fail-on") and "vyxops: vyxops" not in err
    assert main(["investigate"]) == 2
    assert capsys.readouterr().err.startswith("vyxops: usage: the following arguments are required")


def test_version_and_help_on_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the version; every option of every verb has a help text."""
    from vyxops import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"vyxops {__version__}"
    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    for verb, sub in verbs.choices.items():
        for action in sub._actions:  # noqa: SLF001
            if not isinstance(action, argparse._HelpAction):  # noqa: SLF001
                assert action.help, f"vyxops {verb} {action.option_strings or action.dest} has no help"


def test_a_closed_pipe_is_quiet(sandbox_env: Path) -> None:
    """`vyxops scenarios | head -1` prints one line and no BrokenPipe traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from vyxops.shell.cli import run; import sys; sys.argv=['vyxops','scenarios']; run()"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert first and "Traceback" not in err and "BrokenPipe" not in err


def test_scenarios_lists_each_shipped_scenario_with_its_apps_and_story(capsys: pytest.CaptureFixture[str]) -> None:
    """`vyxops scenarios --json` names every shipped scenario, its apps and a one-line story."""
    from vyxops_sandbox.scenario import scenario_names

    assert main(["scenarios", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in listed] == scenario_names()
    seed = next(s for s in listed if s["name"] == "stub-image")
    assert seed["apps"] == [APP] and "seed incident" in seed["story"]


def test_a_sandbox_holding_another_scenario_says_which_and_how_to_switch(tmp_path: Path) -> None:
    """Investigating an app the sandbox's scenario lacks names the scenario held and the reset command."""
    from vyxops.analysis.investigate import investigate
    from vyxops.core.errors import NotFoundError
    from vyxops.fetch.session import open_session

    with open_session("sandbox", scenario="latest-pruned", sandbox_dir=tmp_path) as s:
        with pytest.raises(NotFoundError) as caught:
            investigate(s, APP)
    text = str(caught.value)
    assert "latest-pruned" in text and "vyxops sandbox reset --scenario" in text


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_failing_audit_notifies_once_and_a_passing_one_is_silent(sandbox_env: Path, tmp_path: Path) -> None:
    """With --notify json://…, a failing audit posts one message (app, verdict, report; no token); success is silent."""
    from vyxops_sandbox.world import credentials_for

    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    url = f"json://127.0.0.1:{server.server_address[1]}/hook"
    env = {"VYXOPS_SANDBOX_DIR": str(sandbox_env)}
    try:
        failing = run_cli(
            ["audit", "--scenario", "stub-image", "--app", APP, "--out", str(tmp_path / "a"), "--notify", url], env
        )
        assert failing.returncode == 1 and failing.stderr == ""
        assert len(_Hook.received) == 1
        message = json.dumps(_Hook.received[0])
        assert APP in message and "root_cause" in message and "SECRET_IMAGE_NOT_CURRENT_RELEASE" in message
        assert "audit.html" in message
        assert not any(v in message for v in credentials_for("stub-image").values())
        healthy = run_cli(["audit", "--scenario", "healthy", "--app", APP, "--out", str(tmp_path / "h"), "--json"],
                          {**env, "VYXOPS_NOTIFY": url})  # fmt: skip
        assert healthy.returncode == 0 and healthy.stderr == ""
        assert json.loads(healthy.stdout)["failed"] is False
        assert len(_Hook.received) == 1  # nothing sent for a pass
    finally:
        server.shutdown()
        server.server_close()


def test_a_notification_url_apprise_cannot_use_is_bad_input(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown scheme in --notify exits 2 before the audit runs."""
    assert main(["audit", "--app", APP, "--out", str(tmp_path / "a"), "--notify", "carrier-pigeon://coop"]) == 2
    assert capsys.readouterr().err.startswith("vyxops: --notify")


def test_progress_goes_to_a_terminal_only(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Progress lines are written when stderr is a terminal and never otherwise (scheduled runs stay quiet)."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    cli.progress("fetching machines")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    cli.progress("fetching machines")
    assert "fetching machines" in capsys.readouterr().err


def test_a_progress_bar_is_drawn_in_a_kernel_a_person_watches_and_a_script_never_imports_ipython(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Evidence shows a bar only in a Jupyter kernel (whose IPython is already imported); a script's
    run neither draws one nor imports IPython to find out (30 ms in the run's hot path)."""
    import subprocess
    import types

    from vyxops.core import progress

    probe = "import sys, vyxops.core.progress as p; print(p._interactive(), 'IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]

    class ZMQInteractiveShell:  # the kernel's shell, by the name _interactive checks
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.delenv("PAPERMILL_EXECUTION", raising=False)
    monkeypatch.delenv("VYXOPS_PROGRESS", raising=False)
    assert progress._interactive()
    monkeypatch.setenv("PAPERMILL_EXECUTION", "1")
    assert not progress._interactive()


def test_platform_text_reaches_the_terminal_shown_never_obeyed(capsys: pytest.CaptureFixture[str]) -> None:
    """A title carrying an ANSI escape or a carriage return from a log line (a function's own text) is printed as
    its escape, so it cannot clear the screen or overwrite the root-cause line; newlines, tabs and — stay."""
    from vyxops.shell.cli import say

    say("root cause: X: \x1b[2Jgone\rfaked — ok", "two\tcolumns")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    assert out == "root cause: X: \\x1b[2Jgone\\rfaked — ok\ntwo\tcolumns\n"


# The lab's dependencies that a run would import if they were installed beside it (pyproject.toml's test extra
# says how): rfc3987_syntax builds a parser at import, which every run would pay for; lark is its parser library.
LAB_ONLY = ("rfc3987_syntax", "lark", "jupyter_server", "jupyter_events", "jupyterlab")
# Imported by the CLI's process (papermill) and by its kernel's (ipykernel), so the log shows both were watched.
WATCHED = ("papermill", "ipykernel")
IMPORT_WATCH = """
import importlib.machinery, os, sys

class _Watch:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in {names!r} and importlib.machinery.PathFinder.find_spec(name, path) is not None:
            with open({log!r}, "a") as log:
                log.write(f"{{os.getpid()}} {{name}}\\n")
        return None

sys.meta_path.insert(0, _Watch)
"""


def test_a_run_imports_none_of_the_labs_dependencies(sandbox_env: Path, tmp_path: Path) -> None:
    """investigate's processes, the CLI and its kernel, never import what only JupyterLab needs: the venv the CLI
    runs from does not hold it. Watched by a sitecustomize on PYTHONPATH, which the kernel inherits, logging each
    watched module a process finds installed and imports."""
    import os

    hook = tmp_path / "hook"
    hook.mkdir()
    log = tmp_path / "imports.log"
    (hook / "sitecustomize.py").write_text(IMPORT_WATCH.format(names=LAB_ONLY + WATCHED, log=str(log)))
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    args = ["investigate", "--scenario", "stub-image", "--app", APP, "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vyxops.shell.cli", *args],
        env={**os.environ, "PYTHONPATH": path},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "root cause:" in out
    imported = [line.split() for line in log.read_text().splitlines()]
    pids = {name: {int(pid) for pid, n in imported if n == name} for name in WATCHED}
    assert proc.pid in pids["papermill"], imported
    assert pids["ipykernel"] - {proc.pid}, f"the kernel's imports were not watched: {imported}"
    lab = sorted({name for _, name in imported if name in LAB_ONLY})
    assert not lab, (
        f"a run imported {lab}, which only JupyterLab needs: this venv holds the lab "
        "(make setup-lab puts it in .tools/lab; rebuild this venv with `make clean && make test`)"
    )

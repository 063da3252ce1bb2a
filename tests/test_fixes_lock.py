"""One writer at a time: remediate --apply holds a lock per app and target, refuses a second at once, takes over a
stale one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_fixes import APP

from vyxops.act.fixes import LockHeld, apply_plan, plan_fixes
from vyxops.act.fixes.lock import acquire, lock_path, read_holder
from vyxops.analysis.investigate import investigate
from vyxops.shell import runner
from vyxops.shell.cli import main
from vyxops.testing.runs import sandbox_session as seed

HOLDER = textwrap.dedent(
    """
    import sys, time
    from vyxops.act.fixes.lock import acquire
    lock = acquire("sandbox", "vyx-app", who="alice")
    print("held", flush=True)
    sys.stdin.readline()  # until the test lets go
    lock.release()
    """
)


@pytest.fixture
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(path))
    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(tmp_path / "sandbox"))
    return path


@pytest.fixture
def other_apply(audit: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock for vyx-app on the sandbox, as a running apply would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    proc.wait(timeout=10)


def test_a_second_concurrent_cli_apply_refuses_at_once_naming_the_holder(
    tmp_path: Path,
    audit: Path,
    other_apply: subprocess.Popen[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """While another process applies, --apply exits 2 naming who (user, pid, host) before any notebook or platform
    call."""
    with seed(tmp_path):
        pass
    state = tmp_path / "sandbox" / "state.json"
    before = state.read_bytes()

    def no_notebook(*a: object, **k: object) -> None:
        raise AssertionError("the notebook ran")

    monkeypatch.setattr(runner, "run_notebook", no_notebook)
    args = [
        "remediate",
        "--scenario",
        "stub-image",
        "--app",
        APP,
        "--apply",
        "--confirm",
        APP,
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "another apply is running" in err and f"pid {other_apply.pid}" in err and "alice" in err
    assert socket.gethostname() in err
    assert state.read_bytes() == before and not audit.exists() and not (tmp_path / "o").exists()


def test_apply_plan_refuses_while_another_process_holds_the_lock(
    tmp_path: Path, audit: Path, other_apply: subprocess.Popen[str]
) -> None:
    """The package refuses too (LockHeld, an InputError), so a notebook run by hand cannot race the CLI."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP))
        with pytest.raises(LockHeld) as held:
            apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
    assert held.value.holder["pid"] == other_apply.pid and held.value.name == "--apply"
    assert not audit.exists()


def test_two_threads_racing_for_the_lock_get_one_winner(tmp_path: Path, audit: Path) -> None:
    """Of two writers taking the lock at the same moment, exactly one gets it and the other is told who has it."""
    got: list[object] = []
    barrier = threading.Barrier(2)

    def take() -> None:
        barrier.wait()
        try:
            got.append(acquire("sandbox", APP, who=threading.current_thread().name))
        except LockHeld as exc:
            got.append(exc)

    threads = [threading.Thread(target=take, name=f"writer-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [x for x in got if not isinstance(x, LockHeld)]
    losers = [x for x in got if isinstance(x, LockHeld)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].holder["who"] == winners[0].holder["who"]  # type: ignore[attr-defined]
    winners[0].release()  # type: ignore[attr-defined]


def test_a_stale_lock_is_taken_over_and_said(tmp_path: Path, audit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A lock file left by a process that is gone (killed mid-apply) does not block: it is taken over, and the run says
    whose it was."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = lock_path("sandbox", APP)
    path.parent.mkdir(parents=True)
    stale = {"who": "bob", "pid": dead.pid, "host": socket.gethostname(), "started_at": "2025-10-02T17:00:00Z"}
    path.write_text(json.dumps({**stale, "token": "x", "target": "sandbox", "app": APP}))
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP), fixes=["PIN_SECRET_TO_RELEASE"])
        result = apply_plan(s, plan, dry_run=False, confirm=APP, app=APP)
    assert result.actions[0].status == "applied"
    assert any(n.startswith(f"lock: took over a stale lock left by bob (pid {dead.pid}") for n in result.notes)
    assert read_holder(path) is None  # released: emptied, so nobody takes it for stale later


def test_the_cli_takes_over_a_stale_lock_and_says_so(
    tmp_path: Path, audit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI says it took over a stale lock before it applies, and the apply goes through under its own lock."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = lock_path("sandbox", APP)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"who": "bob", "pid": dead.pid, "host": socket.gethostname(), "token": "x"}))
    with seed(tmp_path):
        pass
    out = tmp_path / "o"
    args = ["remediate", "--scenario", "stub-image", "--app", APP, "--fix", "PIN_SECRET_TO_RELEASE", "--apply"]
    assert main([*args, "--confirm", APP, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"lock:     took over a stale lock left by bob (pid {dead.pid}" in printed
    assert json.loads((out / "result.json").read_text())["actions"][0]["status"] == "applied"
    assert read_holder(path) is None

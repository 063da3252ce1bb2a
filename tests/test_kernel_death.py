"""A dying kernel, or Ctrl-C, ends the CLI at once with one line saying what happened and what to run next.

The CLI runs as a subprocess on the sandbox; its kernel is killed with a real SIGKILL at a
chosen point (vyxops_sandbox.kernel_death), as the OOM killer would. The failure mode was a
hang, so every run has a generous timeout, and the bound on a prompt exit is checked apart.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vyxops.act.fixes.audit_log import read_history, read_lines
from vyxops_sandbox.kernel_death import kernel_death_env

APP = "vyx-app"
HANG_S = 60  # the failure was a CLI that never returned
PROMPT_S = 15  # a run here takes a few seconds; a kill must not make it longer
APPLY = ["remediate", "--scenario", "stub-image", "--app", APP, "--apply", "--confirm", APP]
FIRST_INTENT = "vyxops.act.fixes.audit_log:AuditLog.intent"


def vyxops(tmp_path: Path, *args: str, **extra_env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``vyxops *args`` as a subprocess on the test's sandbox; its result and how long it took."""
    env = {
        **os.environ,
        "VYXOPS_SANDBOX_DIR": str(tmp_path / "sandbox"),
        "VYXOPS_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
        **extra_env,
    }
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "from vyxops.shell.cli import run; run()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
        cwd=tmp_path,
        # A child inherits an ignored SIGINT, and Python then keeps ignoring it: a kernel started in this
        # process earlier in the session (ipykernel's init_signal sets SIG_IGN) leaves it ignored. A terminal's
        # CLI does not inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return proc, time.monotonic() - start


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single ``vyxops:`` line on stderr (and that nothing else is there: no traceback)."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vyxops: "), proc.stderr[-3000:]
    return lines[0]


def open_intents(tmp_path: Path) -> int:
    targets = {str(x.get("target")) for x in read_lines(tmp_path / "audit.jsonl")}
    return sum(len(read_history(tmp_path / "audit.jsonl", target=t, app=APP).open_intents) for t in targets)


def test_a_killed_kernel_ends_an_investigation_at_once_saying_rerun_it(tmp_path: Path) -> None:
    kill = kernel_death_env(tmp_path / "hook", "vyxops.analysis.collect:collect_evidence", before=1)
    proc, took = vyxops(tmp_path, "investigate", "--scenario", "stub-image", "--app", APP, "--out", "out", **kill)
    line = one_line(proc)
    assert proc.returncode == 3, proc.stderr
    assert took < PROMPT_S
    assert "the notebook's kernel died (killed by signal 9 (SIGKILL), perhaps out of memory)" in line
    assert line.endswith("before investigate finished; rerun it")
    again, _ = vyxops(tmp_path, "investigate", "--scenario", "stub-image", "--app", APP, "--out", "out")
    assert again.returncode == 0, again.stderr[-2000:]


def test_a_killed_kernel_ends_an_apply_frees_the_lock_and_the_rerun_settles_its_intents(tmp_path: Path) -> None:
    kill = kernel_death_env(tmp_path / "hook", FIRST_INTENT, after=1)  # an intent logged, its write never sent
    proc, took = vyxops(tmp_path, *APPLY, "--out", "out", **kill)
    line = one_line(proc)
    assert proc.returncode == 3, proc.stderr
    assert took < PROMPT_S
    assert "the notebook's kernel died (killed by signal 9 (SIGKILL), perhaps out of memory) before the apply" in line
    assert line.endswith("rerun the same command to settle 1 open intent(s)")
    assert open_intents(tmp_path) == 1
    again, _ = vyxops(tmp_path, *APPLY, "--out", "out")  # not refused: the lock is free
    assert again.returncode == 0, again.stderr[-2000:]
    assert "took over a stale lock" not in again.stdout  # released, not merely abandoned
    assert open_intents(tmp_path) == 0


def test_ctrl_c_during_an_apply_stops_the_kernel_without_a_traceback(tmp_path: Path) -> None:
    ctrl_c = kernel_death_env(tmp_path / "hook", FIRST_INTENT, after=1, interrupt_cli=True)
    proc, took = vyxops(tmp_path, *APPLY, "--out", "out", **ctrl_c)
    line = one_line(proc)
    assert proc.returncode == 130, proc.stderr
    assert took < PROMPT_S
    said = re.fullmatch(
        r"vyxops: interrupted \(Ctrl-C\) before the apply finished; the kernel was stopped; "
        r"rerun the same command to settle (\d+) open intent\(s\)",
        line,
    )
    assert said, line
    assert int(said.group(1)) == open_intents(tmp_path)  # the kernel may have closed the intent before it stopped
    assert not _kernels_of_tmp(tmp_path)
    again, _ = vyxops(tmp_path, *APPLY, "--out", "out")
    assert again.returncode == 0, again.stderr[-2000:]
    assert open_intents(tmp_path) == 0


def test_ctrl_c_during_an_investigation_exits_130_with_one_line(tmp_path: Path) -> None:
    ctrl_c = kernel_death_env(
        tmp_path / "hook", "vyxops.analysis.collect:collect_evidence", before=1, interrupt_cli=True
    )
    proc, _ = vyxops(tmp_path, "investigate", "--scenario", "stub-image", "--app", APP, "--out", "out", **ctrl_c)
    assert proc.returncode == 130, proc.stderr
    assert one_line(proc) == (
        "vyxops: interrupted (Ctrl-C) before investigate finished; the kernel was stopped; rerun it"
    )


def _kernels_of_tmp(tmp_path: Path) -> list[int]:
    """Kernel processes still running with this test's hook on their path (none may outlive the CLI)."""
    time.sleep(0.2)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if str(tmp_path / "hook").encode() in environ and b"ipykernel" in (entry / "cmdline").read_bytes():
            if not stat.split(") ", 1)[1].startswith("Z"):
                found.append(int(entry.name))
    return found


def test_a_kill_point_that_does_not_exist_is_refused_up_front(tmp_path: Path) -> None:
    """A moved function would leave the kernel alive (sitecustomize's error is printed, start-up goes on):
    the hook refuses a target that is not there before any run."""
    with pytest.raises(ValueError, match="does not exist"):
        kernel_death_env(tmp_path / "hook", "vyxops.analysis.evidence:collect_evidence", before=1)

"""``vyxops sandbox serve`` in a child process, as a person runs it, for the tests and benchmarks that need the
command itself (its printed address, its own clock, its save when stopped) rather than a server in their process.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

#: The command that runs vyxops: this interpreter's, so a test serves the tree it imports.
VYXOPS = (sys.executable, "-m", "vyxops.shell.cli")
#: What the server prints once it listens (vyxops_sandbox.server.serve): its base URL.
ADDRESS = re.compile(r"http://127\.0\.0\.1:\d+")


@contextmanager
def served_sandbox(
    env: Mapping[str, str], *, scenario: str | Path | None = None, command: Sequence[str] = VYXOPS
) -> Iterator[str]:
    """``sandbox serve --port 0`` (on ``scenario`` when given) with ``env``, for the block; yields its base URL.

    The sandbox directory is ``env``'s ``VYXOPS_SANDBOX_DIR``. On leaving, the server is stopped as Ctrl-C stops
    it (SIGINT), so it saves its world there before it exits, as a person's would.
    """
    argv = [*command, "sandbox", "serve", "--port", "0", *(["--scenario", str(scenario)] if scenario else [])]
    proc = subprocess.Popen(argv, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout is not None else ""
        match = ADDRESS.search(line)
        if match is None:
            raise RuntimeError(f"`vyxops sandbox serve` did not start: it printed {line!r}")
        yield match.group(0)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        if proc.stdout is not None:
            proc.stdout.close()

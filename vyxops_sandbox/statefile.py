"""The sandbox's state file, shared by every process that opens the sandbox: one writer at a time, never old over new.

``state.json`` carries a ``revision`` that every save increments. A save takes an
exclusive lock on ``state.lock`` and writes only when the file still holds the
revision this process read; a process that finds a newer revision on disk adopts
it when it has changed nothing but the clock since, and refuses (saying which
process is newer and what to do) when it has changed something itself. So a
served copy (`vyxops sandbox serve`, the CLI's own) picks up fixes another
process applied, and nothing writes an older state over them.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vyxops.errors import ConfigError

STATE = "state.json"
LOCK = "state.lock"


class StaleState(ConfigError):
    """This process changed the sandbox, and another process saved a newer state meanwhile."""


@dataclass(frozen=True)
class Stamp:
    """What the state file looked like when last read or written (cheap to compare: one stat)."""

    mtime_ns: int
    size: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> Stamp | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return cls(st.st_mtime_ns, st.st_size, st.st_ino)


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the sandbox's write lock (other processes wait; it is held only while a state is written)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_state(path: Path) -> dict[str, Any]:
    """The parsed state (ValueError/UnicodeDecodeError when it is not JSON; the caller names the file)."""
    data: dict[str, Any] = json.loads(path.read_bytes().decode("utf-8"))
    return data


def write_state(directory: Path, text: str) -> Stamp | None:
    """Write ``text`` as the state atomically (temp file, fsync, rename) and return the new stamp."""
    tmp = directory / f"{STATE}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, directory / STATE)
    return Stamp.of(directory / STATE)


def revision_of(state: dict[str, Any]) -> int:
    value = state.get("revision", 0)
    return value if isinstance(value, int) else 0


def stale_error(directory: Path, mine: int, theirs: int) -> StaleState:
    return StaleState(
        f"the sandbox in {directory} was changed by another process (revision {theirs}) after this one read it "
        f"(revision {mine}); this process's own changes were not saved over it",
        hint="run the command again: it will start from the newer state",
    )

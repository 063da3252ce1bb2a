"""One writer at a time: an exclusive lock per app and target for applying fixes.

The lock is a file under the audit log's directory (``locks/<target>--<app>.lock``)
held with ``fcntl.flock`` and holding who took it (who, pid, host, started_at, a
token). A second apply refuses at once, naming the holder (InputError: exit 2); it
never queues. The kernel releases a flock when its process dies, so a lock file
whose recorded holder is gone is simply taken over, and :attr:`AppLock.took_over`
says whose it was. ``vyxops remediate --apply`` takes the lock before its notebook
kernel starts and hands the kernel the token, so the apply inside recognises its
own parent's lock instead of refusing it.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import hashlib
import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vyxops.core import config
from vyxops.core.errors import InputError
from vyxops.core.timeutil import iso


class LockHeld(InputError):
    """Another apply holds the lock for this app and target."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            "--apply",
            f"another apply is running on {holder.get('target')} for {holder.get('app')}: {describe_holder(holder)}",
            hint=f"wait for it to finish (lock: {path}); nothing was changed by this run",
        )


@dataclass
class AppLock:
    """A held lock (or the parent's lock recognised by its token)."""

    path: Path
    holder: dict[str, Any]
    took_over: dict[str, Any] | None = None  # the stale holder this lock replaced
    fd: int | None = None  # None when the lock belongs to the process that handed us its token

    @property
    def token(self) -> str:
        return str(self.holder["token"])

    def release(self) -> None:
        """Let go: the file is emptied first, so nobody reads this holder as stale later."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def describe_holder(holder: dict[str, Any]) -> str:
    """``alice (pid 123 on host-a) since 2025-10-02T17:25:00Z``."""
    return f"{holder.get('who')} (pid {holder.get('pid')} on {holder.get('host')}) since {holder.get('started_at')}"


def lock_path(target: config.Target | str, app: str, audit_log: Path | None = None) -> Path:
    """Where the lock for ``app`` on ``target`` lives: beside the audit log every apply writes."""
    parsed = target if isinstance(target, config.Target) else config.parse_target(target)
    t = str(parsed)
    key = re.sub(r"[^a-z0-9]+", "-", t.lower()).strip("-")
    if parsed.kind == "bundle":
        key = "bundle-" + hashlib.sha256(t.encode()).hexdigest()[:12]
    log = Path(audit_log) if audit_log is not None else config.audit_log_path()
    return log.parent / "locks" / f"{key}--{app}.lock"


def acquire(target: config.Target | str, app: str, *, audit_log: Path | None = None, who: str | None = None) -> AppLock:
    """Take the lock now or raise :class:`LockHeld` naming who has it."""
    path = lock_path(target, app, audit_log)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        raise LockHeld(path, _holder_soon(path) or {"target": str(target), "app": app}) from None
    previous = read_holder(path)
    holder = {
        "who": who or os.environ.get("VYXOPS_OPERATOR") or _user(),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": iso(pd.Timestamp.now(tz="UTC")),
        "token": uuid.uuid4().hex,
        "target": str(target),
        "app": app,
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder, sort_keys=True) + "\n").encode(), 0)
    os.fsync(fd)
    return AppLock(path, holder, took_over=previous or None, fd=fd)


@contextmanager
def hold(
    target: config.Target | str,
    app: str,
    *,
    token: str | None = None,
    audit_log: Path | None = None,
    who: str | None = None,
) -> Iterator[AppLock]:
    """Hold the lock for the block; with ``token``, accept the lock the process that started us holds."""
    if token:
        holder = read_holder(lock_path(target, app, audit_log))
        if holder and holder.get("token") == token and _alive(holder):
            yield AppLock(lock_path(target, app, audit_log), holder)
            return
    lock = acquire(target, app, audit_log=audit_log, who=who)
    try:
        yield lock
    finally:
        lock.release()


def _holder_soon(path: Path, tries: int = 25) -> dict[str, Any] | None:
    """The holder, waiting briefly for one that took the lock a moment ago to write its name."""
    import time

    for _ in range(tries):
        holder = read_holder(path)
        if holder:
            return holder
        time.sleep(0.02)
    return None


def read_holder(path: Path) -> dict[str, Any] | None:
    """Who the lock file names (None when empty or unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # cannot tell from here: trust the token
    try:
        os.kill(int(holder.get("pid") or 0), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"

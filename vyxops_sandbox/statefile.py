"""The sandbox's state file, shared by every process that opens the sandbox: one writer at a time, never old over new.

``state.json`` carries a ``revision`` that every save increments. A save takes an
exclusive lock on ``state.lock`` and writes only when the file still holds the
revision this process read; a process that finds a newer revision on disk adopts
it when it has changed nothing but the clock since, and refuses (saying which
process is newer and what to do) when it has changed something itself. A state of
another ``incarnation`` (``vyxops sandbox reset``, another scenario loaded) is a new
world: adopted whole, never written over, whatever its revision. So a
served copy (`vyxops sandbox serve`, the CLI's own) picks up fixes another
process applied, and nothing writes an older state over them.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vyxops.core.errors import ConfigError

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
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise unwritable(directory, exc) from None
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


#: The containers every part of the sandbox indexes without looking: a mapping spec is "an object with these keys",
#: ``"*"`` stands for every key, ``[spec]`` for a list of such items. A state of another shape (hand-edited, or
#: written by something else) is refused when opened, before a request meets it (issue 19: ``fly.apps`` as a list
#: used to end in hundreds of lines of server tracebacks).
_Spec = type | dict[str, Any] | list[Any]
SHAPE: dict[str, _Spec] = {
    "scenario": {"name": str, "sha256": str, "now": str},
    "platform": {"supabase": dict, "fly": dict},
    "now_ms": int,
    "seq": int,
    "fly": {
        "org": str,
        "apps": {"*": {"name": str, "machines": {"*": dict}, "releases": [dict], "logs": [dict]}},
        "refusals": dict,
    },  # fmt: skip
    "registry": {"*": dict},
    "supabase": {
        "project_ref": str,
        "machines_table": str,
        "pipeline": dict,
        "enums": dict,
        "tables": {"*": {"columns": [str], "types": dict, "rows": [dict]}},
        "secrets": {"*": dict},
        "functions": list,
        "logs": [dict],
    },
    "pending": [dict],
}


def shape_problem(value: Any, spec: _Spec = SHAPE, where: str = "") -> str | None:
    """Where ``value`` departs from ``spec`` (e.g. ``fly.apps is a list, not an object``), or None when it fits."""
    if isinstance(spec, type):
        fits = isinstance(value, spec) and not (spec is int and isinstance(value, bool))
        return None if fits else f"{where or 'the state'} is {_kind(value)}, not {_kind(spec)}"
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{where} is {_kind(value)}, not a list"
        return next((p for i, v in enumerate(value) if (p := shape_problem(v, spec[0], f"{where}[{i}]"))), None)
    if not isinstance(value, dict):
        return f"{where or 'the state'} is {_kind(value)}, not an object"
    for key, sub in spec.items():
        if key == "*":
            problem = next((p for k, v in value.items() if (p := shape_problem(v, sub, f"{where}.{k}"))), None)
        elif key not in value:
            problem = f"{where + '.' if where else ''}{key} is missing"
        else:
            problem = shape_problem(value[key], sub, f"{where + '.' if where else ''}{key}")
        if problem:
            return problem
    return None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", bool: "a boolean"}
    if isinstance(value, type):
        return names.get(value, value.__name__)
    return "null" if value is None else names.get(type(value), f"a {type(value).__name__}")


def write_state(directory: Path, text: str) -> Stamp | None:
    """Write ``text`` as the state atomically (temp file, fsync, rename) and return the new stamp."""
    tmp = directory / f"{STATE}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / STATE)
    except OSError as exc:
        with suppress(OSError):
            tmp.unlink()
        raise unwritable(directory, exc) from None
    return Stamp.of(directory / STATE)


def unwritable(directory: Path, exc: OSError) -> ConfigError:
    """The sandbox directory cannot hold the state: name it and the variable that moves it (exit 2)."""
    return ConfigError(
        f"the sandbox directory {directory} cannot be written ({exc.strerror or type(exc).__name__})",
        hint="set VYXOPS_SANDBOX_DIR to a writable directory (or unset it for .vyxops/sandbox in the project)",
    )


def revision_of(state: dict[str, Any]) -> int:
    value = state.get("revision", 0)
    return value if isinstance(value, int) else 0


def incarnation_of(state: dict[str, Any]) -> str:
    """Which world a state is ("" for one saved before incarnations existed)."""
    value = state.get("incarnation")
    return value if isinstance(value, str) else ""


def stale_error(directory: Path, mine: int, theirs: int) -> StaleState:
    return StaleState(
        f"the sandbox in {directory} was changed by another process (revision {theirs}) after this one read it "
        f"(revision {mine}); this process's own changes were not saved over it",
        hint="run the command again: it will start from the newer state",
    )


def reset_error(directory: Path, mine: str, theirs: str) -> StaleState:
    """This process changed a world that another process has since replaced (``vyxops sandbox reset``)."""
    return StaleState(
        f"the sandbox in {directory} was reset by another process (incarnation {theirs or 'unknown'} replaced "
        f"{mine or 'unknown'}) after this one changed it; the change was not saved over the new world",
        hint="run the command again: it will start from the reset world",
    )

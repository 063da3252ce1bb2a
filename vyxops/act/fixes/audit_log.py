"""The audit log: an intent line before every platform write, an outcome line after it (JSONL).

Each line is appended, flushed and fsynced before the write it announces is sent,
so a run killed at any moment leaves either nothing or an open intent behind, and
the next run knows what may have happened. Lines carry no credential (redacted as
a last guard). :func:`read_history` reads what earlier runs left for one app on one
target: intents never closed, canaries never cleaned up, and changes applied since
the last verification that passed.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vyxops.act.fixes.values import jsonable
from vyxops.core.errors import redact
from vyxops.core.timeutil import iso

AUDIT_SCHEMA = "vyxops.analysis.audit/2"
VERIFY = "VERIFY_PROVISIONING"
CLEANUP = "CLEANUP_VERIFY_CANARY"
#: Actions that check or tidy rather than fix: they never need a verification of their own.
NOT_FIXES = frozenset({VERIFY, CLEANUP})
#: Outcome results that may have changed the world.
MAY_HAVE_CHANGED = frozenset({"applied", "unknown", "interrupted"})


class AuditLog:
    """One run's writer: intents and outcomes for one app on one target."""

    def __init__(
        self,
        path: Path,
        *,
        target: str,
        app: str,
        who: str,
        now: Callable[[], pd.Timestamp],
        incarnation: str = "",
    ) -> None:
        self.path = Path(path)
        self.target = target
        self.incarnation = incarnation  # which world of the target the writes went to (Session.incarnation)
        self.app = app
        self.who = who
        self.now = now
        self.run = uuid.uuid4().hex[:12]
        self.lines: list[dict[str, Any]] = []  # what this run appended
        self._intents: dict[str, dict[str, Any]] = {}
        self._seq = 0

    def open(self) -> None:
        """Create the log (and its directory) before the first write: a change that cannot be logged is not made."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as fh:
            if fh.tell() > 0:  # a kill mid-line leaves no newline: start ours on a line of its own
                with self.path.open("rb") as rd:
                    rd.seek(-1, os.SEEK_END)
                    if rd.read(1) != b"\n":
                        fh.write(b"\n")

    def intent(self, action: str, step: str, entity: str, **fields: Any) -> str:
        """Append the intent to make one write; returns its transaction id for :meth:`outcome`."""
        self._seq += 1
        txn = f"{self.run}-{self._seq}"
        line = self._append({"kind": "intent", "txn": txn, "action": action, "step": step, "entity": entity, **fields})
        self._intents[txn] = line
        return txn

    def outcome(self, txn: str, result: str, reason: str, **fields: Any) -> dict[str, Any]:
        """Append what became of intent ``txn``: applied | failed | skipped | unknown | interrupted."""
        intent = self._intents.get(txn, {})
        head = {k: intent.get(k) for k in ("action", "step", "entity")}
        return self._append({"kind": "outcome", "txn": txn, **head, "result": result, "reason": reason, **fields})

    def close_foreign(self, intent: dict[str, Any], reason: str) -> dict[str, Any]:
        """Close an intent an earlier (killed) run left open: ``interrupted``, with what this run does about it."""
        head = {k: intent.get(k) for k in ("action", "step", "entity")}
        fields = {"closes_run": intent.get("run")}
        if intent.get("canary"):
            fields["canary"] = intent["canary"]
        line = {"kind": "outcome", "txn": intent.get("txn"), **head, "result": "interrupted", "reason": reason}
        return self._append({**line, **fields})

    def _append(self, fields: dict[str, Any]) -> dict[str, Any]:
        line = {
            "schema": AUDIT_SCHEMA,
            "time": iso(self.now()),
            "target": self.target,
            **({"incarnation": self.incarnation} if self.incarnation else {}),
            "app": self.app,
            "who": self.who,
            "run": self.run,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            **jsonable(fields),
        }
        text = redact(json.dumps(line, sort_keys=True, ensure_ascii=False))
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        saved: dict[str, Any] = json.loads(text)
        self.lines.append(saved)
        return saved


@dataclass
class CanaryDuty:
    """A verification canary an earlier run made and did not clean up: destroy its machine, close its row."""

    user_id: str
    machine_id: str | None
    since: str
    run: str | None
    app: str | None = None  # the app its machine is in (the function's, not always the one investigated)


@dataclass
class History:
    """What earlier runs left in the audit log for one app on one target."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    open_intents: list[dict[str, Any]] = field(default_factory=list)
    canaries: list[CanaryDuty] = field(default_factory=list)
    unverified: list[dict[str, Any]] = field(default_factory=list)  # changes since the last verification that passed

    def unverified_text(self) -> str:
        """``PIN_SECRET_TO_RELEASE applied at …, RECONCILE_STUCK_ROWS interrupted at …``."""
        return ", ".join(
            f"{x.get('action')} {x.get('result') or 'left open'} at {x.get('time')}" for x in self.unverified
        )


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every parseable line of the log (a line torn by a kill is skipped, not fatal)."""
    if not Path(path).is_file():
        return []
    lines = []
    for raw in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


def read_history(path: Path, *, target: str, app: str, incarnation: str = "") -> History:
    """The history of ``app`` on ``target`` in the audit log at ``path`` (empty when there is none).

    With ``incarnation``, only that world's lines: what was done to a sandbox before its reset (or to
    another world under the same label) is not this one's history. A line written before lines named
    their incarnation cannot be told apart, and is kept.
    """
    mine = [
        x
        for x in read_lines(path)
        if x.get("target") == target and x.get("app") == app and of_incarnation(x, incarnation)
    ]
    h = History(lines=mine)
    intents: dict[str, tuple[int, dict[str, Any]]] = {}
    closed: set[str] = set()
    duties: dict[str, CanaryDuty] = {}
    last_verified = -1
    for i, line in enumerate(mine):
        kind = line.get("kind", "outcome")  # lines before intents existed were outcomes
        txn = line.get("txn")
        if kind == "intent" and isinstance(txn, str):
            intents[txn] = (i, line)
        elif isinstance(txn, str):
            closed.add(txn)
        _follow_canary(duties, line)
        if kind != "outcome":
            continue
        if line.get("action") == VERIFY and line.get("step", "verify") == "verify" and line.get("result") == "applied":
            last_verified, h.unverified = i, []
        elif line.get("action") not in NOT_FIXES and line.get("result") in MAY_HAVE_CHANGED:
            h.unverified.append(line)
    h.open_intents = [line for t, (_, line) in intents.items() if t not in closed]
    h.unverified += [
        line
        for t, (i, line) in intents.items()
        if t not in closed and i > last_verified and line.get("action") not in NOT_FIXES
    ]
    h.canaries = list(duties.values())
    return h


def of_incarnation(line: dict[str, Any], incarnation: str) -> bool:
    """Whether an audit line belongs to ``incarnation`` ("" asks for every world; a line naming none is kept)."""
    said = line.get("incarnation")
    return not incarnation or not said or said == incarnation


def _follow_canary(duties: dict[str, CanaryDuty], line: dict[str, Any]) -> None:
    """Open a canary duty where a line names one, record its machine id, and close it once it is cleaned up."""
    cleaned = line.get("canary_cleaned")
    if isinstance(cleaned, dict) and cleaned.get("user_id"):
        duties.pop(str(cleaned["user_id"]), None)
        return
    canary = line.get("canary")
    if not isinstance(canary, dict) or not canary.get("user_id"):
        return
    user_id = str(canary["user_id"])
    duty = duties.get(user_id) or CanaryDuty(user_id, None, str(line.get("time") or ""), line.get("run"))
    duty.machine_id = canary.get("machine_id") or duty.machine_id
    duty.app = canary.get("app") or duty.app
    duties[user_id] = duty

"""``vyxops log``: the fixes' audit log (:mod:`vyxops.act.fixes.audit_log`) as a table a person reads.

One row per write: its intent and its outcome (the same ``txn``) joined, so a write that was
announced and never settled shows as ``open``. Lines are read by the audit log's own reader
(a line torn by a kill is skipped there); nothing here parses the file again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vyxops.core.checks import check_time
from vyxops.core.errors import redact
from vyxops.core.text import one_line
from vyxops.core.timeutil import parse_rfc3339_ms

COLUMNS = ("time", "target", "app", "action", "step", "result", "entity", "change")
#: An intent whose outcome the log does not hold: the write may or may not have happened.
OPEN = "open"


@dataclass(frozen=True)
class Row:
    """One write the fixes made or announced."""

    time: str
    target: str
    app: str
    action: str
    step: str
    result: str  # the outcome's result (applied, skipped, failed, unknown, interrupted) or "open"
    entity: str
    change: str  # ``key: before → after`` per changed value
    reason: str
    txn: str

    def as_json(self) -> dict[str, str]:
        return asdict(self)


def rows(lines: list[dict[str, Any]]) -> list[Row]:
    """The log's lines as one row per transaction, in the order their intents were written."""
    from vyxops.act.fixes.values import describe_change

    intents: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, dict[str, Any]] = {}
    for line in lines:
        txn = str(line.get("txn") or id(line))
        (outcomes if line.get("kind") == "outcome" else intents).setdefault(txn, line)
    made = []
    for txn in dict.fromkeys([*intents, *outcomes]):
        intent, outcome = intents.get(txn, {}), outcomes.get(txn, {})
        first = intent or outcome
        before = outcome.get("before", intent.get("before"))
        after = _after(intent.get("after"), outcome.get("after"))
        made.append(
            Row(
                time=str(first.get("time") or ""),
                target=str(first.get("target") or ""),
                app=str(first.get("app") or ""),
                action=str(first.get("action") or ""),
                step=str(first.get("step") or ""),
                result=str(outcome.get("result") or OPEN),
                entity=str(first.get("entity") or ""),
                change=describe_change(before, after) if before is not None or after is not None else "",
                reason=str(outcome.get("reason") or ""),
                txn=txn,
            )
        )
    return made


def _after(planned: Any, seen: Any) -> Any:
    """What a write made: the outcome's values for the keys the intent planned (a verification's outcome also
    carries everything it read, which is its report's, not this table's), else whichever the log holds."""
    if isinstance(planned, dict) and isinstance(seen, dict):
        return {key: seen.get(key, value) for key, value in planned.items()}
    return seen if seen is not None else planned


def select(
    found: list[Row], *, app: str | None = None, target: str | None = None, since: str | None = None
) -> list[Row]:
    """The rows of ``app``, on ``target`` (``sandbox`` matches every scenario's ``sandbox:…``), from ``since`` on.

    A bad ``since`` is an InputError (exit 2) naming ``--since``.
    """
    start = check_time(since, "--since")
    kept = []
    for row in found:
        if app and row.app != app:
            continue
        if target and row.target != target and not row.target.startswith(f"{target}:"):
            continue
        if start is not None and _ms(row.time) < start:
            continue
        kept.append(row)
    return kept


def _ms(text: str) -> int:
    try:
        return parse_rfc3339_ms(text)
    except (ValueError, TypeError, OverflowError):
        return 0  # a line without a readable time is older than any --since


def table(found: list[Row]) -> list[str]:
    """A header and one line per row; columns as wide as their widest cell (the change column last, unpadded)."""
    cells = [[one_line(redact(getattr(r, c))) for c in COLUMNS] for r in found]
    head = [c.upper() for c in COLUMNS]
    widths = [max(len(x[i]) for x in [head, *cells]) for i in range(len(COLUMNS) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)), line[-1]]).rstrip()
        for line in [head, *cells]
    ]


def read(path: Path) -> list[Row]:
    """The rows of the audit log at ``path`` (none when it does not exist)."""
    from vyxops.act.fixes.audit_log import read_lines

    return rows(read_lines(path))

"""The provisioning function's failed invocations, read from what every function shares.

Each invocation has a ``function_edge_logs`` row with the HTTP status the function
answered; a 4xx/5xx is a failed provisioning request whatever the function's console
says (SPEC.md). What Fly answered, when the console passes it on, is read by
:func:`vyxops.core.refusals.read_refusal` from statuses and bodies, never from one
sentence. A console line that carries a refusal in an execution whose edge row is
missing (logs read at a page limit) still counts: evidence is not dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from vyxops.core import facts
from vyxops.core.refusals import read_refusal


@dataclass(frozen=True)
class Failed:
    """One failed provisioning request: when, what the function answered, and what Fly said (if readable)."""

    time: pd.Timestamp  # the line that says what Fly answered, else the invocation's edge row
    execution_id: str | None
    message: str  # that line, or the edge row's
    image: str | None  # the image its execution's lines name
    status_code: int | None  # what the function answered (edge log)
    kind: str | None  # the refusal class (vyxops.core.refusals.CLASSES); None: nothing readable
    fly_status: int | None
    region: str | None  # a Fly region its lines name


def project_failures(function_logs: pd.DataFrame, as_of: pd.Timestamp) -> list[Failed]:
    """Every failed request in ``function_logs`` (one function's) up to ``as_of``, oldest first."""
    logs = function_logs[function_logs["time"] <= as_of]
    console = logs[logs["source"] == "function_logs"]
    edge = logs[logs["source"] == "function_edge_logs"]
    lines: dict[object, list[tuple[pd.Timestamp, str]]] = {}
    for execution, at, message in zip(console["execution_id"], console["time"], console["message"]):
        if isinstance(execution, str) and isinstance(message, str):
            lines.setdefault(execution, []).append((at, message))
    answered: dict[object, tuple[pd.Timestamp, int | None, str]] = {}
    for execution, at, code, message in zip(edge["execution_id"], edge["time"], edge["status_code"], edge["message"]):
        status = None if pd.isna(code) else int(code)
        if isinstance(execution, str):
            answered[execution] = (at, status, message if isinstance(message, str) else "")
    out = []
    for execution in dict.fromkeys([*answered, *lines]):
        failed = _failed(execution, lines.get(execution, []), answered.get(execution))
        if failed is not None:
            out.append(failed)
    return sorted(out, key=lambda f: f.time)


def _failed(
    execution: object, lines: list[tuple[pd.Timestamp, str]], edge: tuple[pd.Timestamp, int | None, str] | None
) -> Failed | None:
    """The failure one execution shows, or None when it did not fail (2xx, or no answer and no refusal)."""
    status = edge[1] if edge is not None else None
    readable = [(at, text, read_refusal(text)) for at, text in lines]
    said = next(((at, text, r) for at, text, r in readable if r.kind is not None), None)
    if said is None and (status is None or status < 400):
        return None  # succeeded, or an execution whose answer was not read and whose lines refuse nothing
    text = "\n".join(t for _, t in lines)
    images = facts.images_in(text)
    region = next((w for w in facts.REGION_WORD.findall(text) if w in facts.FLY_REGIONS), None)
    if said is not None:
        at, message, refusal = said
        return Failed(at, _id(execution), message, images[0] if images else None, status, refusal.kind,
                      refusal.status, region)  # fmt: skip
    assert edge is not None  # a failure without a readable line has an edge row
    return Failed(edge[0], _id(execution), edge[2], images[0] if images else None, status, None, None, region)


def _id(execution: object) -> str | None:
    return execution if isinstance(execution, str) else None


def answered_ok(function_logs: pd.DataFrame, as_of: pd.Timestamp) -> list[pd.Timestamp]:
    """When the function answered a request with 2xx (edge rows), oldest first."""
    edge = function_logs[(function_logs["source"] == "function_edge_logs") & (function_logs["time"] <= as_of)]
    return sorted(at for at, code in zip(edge["time"], edge["status_code"]) if pd.notna(code) and 200 <= code < 300)

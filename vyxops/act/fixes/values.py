"""Platform values as JSON and as short text a person reads: digests, before/after, excerpts."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from vyxops.core.errors import redact
from vyxops.core.timeutil import iso

HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def short(digest: object) -> str:
    """``sha256:0123456789ab…`` for a digest, ``none`` for nothing."""
    if not digest:
        return "none"
    d = str(digest)
    head, _, tail = d.partition(":")
    return f"{head}:{tail[:12]}…" if tail else f"{d[:12]}…"


def jsonable(value: Any) -> Any:
    """Plain JSON types only (pandas NA and timestamps become None/ISO strings)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, pd.Timestamp):
        return iso(value)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, (int, float)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def brief(value: Any, limit: int = 160) -> str:
    """One redacted line for a value: the string itself, else its JSON, cut at ``limit``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(jsonable(value), ensure_ascii=False, sort_keys=True)
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str) and (value.startswith("sha256:") or HEX_DIGEST.fullmatch(value)):
        return short(value)
    return brief(value, 80)


def describe_change(before: Any, after: Any) -> str:
    """A readable diff: ``status: starting → failed; error: — → machine … exited``, one clause per changed key.

    Keys equal on both sides are left out; non-dict values compare as a whole.
    """
    if isinstance(before, dict) or isinstance(after, dict):
        b = before if isinstance(before, dict) else {}
        a = after if isinstance(after, dict) else {}
        parts = []
        for key in dict.fromkeys([*b, *a]):
            old, new = jsonable(b.get(key)), jsonable(a.get(key))
            if old != new:
                parts.append(f"{key}: {_scalar(old)} → {_scalar(new)}")
        return "; ".join(parts)
    if jsonable(before) == jsonable(after):
        return ""
    return f"{_scalar(before)} → {_scalar(after)}"


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` to ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path

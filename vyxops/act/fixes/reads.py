"""Reading the world again right before acting: the secret, the current release, a row, a machine."""

from __future__ import annotations

from typing import Any

import pandas as pd

from vyxops.act.fixes.values import short
from vyxops.core.errors import NotFoundError, PreconditionError
from vyxops.core.facts import CANARY_USER_PREFIX, chosen_current_index
from vyxops.fetch.session import Session

__all__ = [
    "CANARY_USER_PREFIX",
    "check_release",
    "current_release",
    "machine_state",
    "read_row",
    "same_time",
    "secret_now",
]


def secret_now(session: Session, name: str) -> str | None:
    """Secret ``name``'s digest now (None when unset): the contract's image secret."""
    for s in session.supabase.list_secrets():
        if isinstance(s, dict) and s.get("name") == name:
            value = s.get("value")
            return None if value is None else str(value)
    return None


def current_release(session: Session, app: str) -> dict[str, Any] | None:
    """The current release, as the frames mark ``current``: the platform's, else the newest complete one."""
    history = session.fly.release_history(app, limit=10)
    nodes = [n for n in history.nodes if isinstance(n, dict)]
    said = None if history.current is None else history.current.get("version")
    at, _ = chosen_current_index([n.get("version") for n in nodes], [n.get("status") for n in nodes], said)
    return None if at is None else nodes[at]


def check_release(session: Session, app: str, read: dict[str, Any]) -> dict[str, Any]:
    """PreconditionError unless the planned release is still current and its image still resolves, unchanged."""
    rel = current_release(session, app)
    if rel is None or rel.get("version") != read["release_version"]:
        now = "no complete release" if rel is None else f"v{rel.get('version')} ({rel.get('imageRef')})"
        raise PreconditionError(
            f"release moved since planning: {now} is current now, the plan was made for "
            f"v{read['release_version']} ({read['release_image']}); re-plan"
        )
    if rel.get("imageRef") != read["release_image"]:
        raise PreconditionError(
            f"release v{read['release_version']} now names image {rel.get('imageRef')}, "
            f"planned {read['release_image']}; re-plan"
        )
    head = session.fly.head_manifest(read["release_image"])
    if not head["exists"]:
        raise PreconditionError(
            f"release v{read['release_version']}'s image {read['release_image']} no longer resolves in the "
            "registry; fixing to it would make every create fail"
        )
    if read.get("release_digest") and head["digest"] != read["release_digest"]:
        raise PreconditionError(
            f"{read['release_image']} now resolves to {short(head['digest'])}, planned "
            f"{short(read['release_digest'])} (the tag was re-pushed); re-plan"
        )
    return {"version": rel.get("version"), "image": rel.get("imageRef"), "digest": head["digest"]}


def read_row(session: Session, table: str, row_id: str, key: str = "id") -> dict[str, Any] | None:
    """The row whose ``key`` column is ``row_id`` now, or None; a malformed answer is an error, never a row."""
    rows = session.supabase.select_all(table, filters=[(key, "eq", row_id)], order=key).rows
    if not isinstance(rows, list) or any(not isinstance(r, dict) for r in rows):
        raise ValueError(f"PostgREST answered rows that are not objects: {str(rows)[:80]}")
    return rows[0] if rows else None


def machine_state(session: Session, app: str, machine_id: str) -> str | None:
    """The machine's state now; None when Fly does not know it (not found, even by id)."""
    try:
        m = session.fly.get_machine(app, machine_id)
    except NotFoundError:
        return None
    if not isinstance(m, dict):
        raise ValueError(f"the Machines API answered a machine that is not an object: {str(m)[:80]}")
    return str(m.get("state"))


def same_time(a: str | None, b: str | None) -> bool:
    """Whether two PostgREST timestamps name the same instant (formats differ in precision and offset)."""
    if a is None or b is None:
        return a == b
    try:
        return bool(pd.Timestamp(a) == pd.Timestamp(b))
    except ValueError:
        return a == b

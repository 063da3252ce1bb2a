"""The public hook tests use to reach the simulator behind a session."""

from __future__ import annotations

from vyxops.fetch.session import Session
from vyxops_sandbox.target import WORLD_HANDLE
from vyxops_sandbox.world import World


def world_of(session: Session) -> World:
    """The :class:`World` behind an in-process sandbox session (TypeError for any other)."""
    world = session.handles.get(WORLD_HANDLE)
    if not isinstance(world, World):
        raise TypeError(f"session {session.label} ({session.opened_by}) has no in-process sandbox world")
    return world

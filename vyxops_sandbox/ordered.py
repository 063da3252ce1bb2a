"""Collections of the state kept sorted once, so that a page bisects to its place instead of sorting them all.

An app's machines and its Fly log lines only ever grow: a machine is never removed from
``fly.apps[app].machines`` (a destroyed one stays, marked), a log line is only appended,
and the key each is ordered by (a machine's ``created_at`` and id, a line's ``ts_ns``) never
changes. So a sorted copy stays right while the collection holds as many items as when it
was sorted; it is made again when one was added, or when the state was replaced (another
process's save adopted, a reset): the copy is tied to the very object it was made from.

Without this, every page of a list sorted the whole collection: paging a fleet of n
machines 1,000 at a time cost n²/1,000, and the logs endpoint's 100-line pages n²/100.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["sorted_view", "SORTS"]

_HELD = 8  # collections kept sorted at once (a few apps' machines and logs, across a test's worlds)
_LOCK = threading.Lock()
# (the collection itself, what the key is, its length then, the keys in order, the items in order)
_CACHE: list[tuple[object, str, int, list[Any], list[Any]]] = []

#: How many times a collection was sorted (the tests count it: a page must not sort the fleet).
SORTS = [0]


def sorted_view(
    source: dict[str, Any] | list[Any], name: str, key: Callable[[Any], Hashable]
) -> tuple[list[Any], list[Any]]:
    """(keys, items) of ``source``'s items (a dict's values) in ``key`` order, ties in their order in ``source``.

    ``name`` says which key (one collection may be viewed in two orders). The caller must
    not change the lists it gets; they are shared by every page until ``source`` grows.
    """
    with _LOCK:
        for held, kind, length, keys, items in _CACHE:
            if held is source and kind == name and length == len(source):
                return keys, items
    values = list(source.values()) if isinstance(source, dict) else list(source)
    items = sorted(values, key=key)  # stable: ties keep their order in the source
    keys = [key(item) for item in items]
    with _LOCK:
        SORTS[0] += 1
        kept = [entry for entry in _CACHE if not (entry[0] is source and entry[1] == name)]
        _CACHE[:] = kept[-(_HELD - 1) :] + [(source, name, len(values), keys, items)]
    return keys, items

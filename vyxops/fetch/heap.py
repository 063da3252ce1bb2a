"""The cyclic garbage collector during a batch that keeps what it builds (an audit of many apps).

CPython (3.11) collects in three generations: the young ones every few hundred new
objects, the oldest, the whole heap, once ten collections of the middle one have
passed (and a quarter of the heap is new since the last full one). An audit builds
frames for fifty apps and keeps them all until its report: each full collection walks
pandas', pyarrow's and every app's objects alike, and a 50-app audit ran several of
them to free next to nothing, since what it built is still in use (bench/FIGURES.md).

:func:`batch` raises the oldest generation's threshold while a batch runs, and puts it
back after. Young cycles are still collected as they form (a frame's temporary copies,
an exception's traceback); only the whole-heap sweep waits until the batch is over,
when the next collection of the middle generation runs it. Public API only: ``gc``'s
``get_threshold``/``set_threshold`` (the thresholds' meaning: the ``gc`` module's
documentation, "set_threshold").
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The oldest generation's threshold during a batch: a count of middle-generation
#: collections no batch reaches (a 50-app audit makes about 50).
DEFERRED = 1_000_000

_lock = threading.Lock()
_holders = 0
_saved: int | None = None


@contextmanager
def batch() -> Iterator[None]:
    """No whole-heap collection while this block runs; young cycles are still collected.

    Re-entrant and thread-safe: batches that overlap (two audits in one process) keep the
    policy until the last one ends, which restores the threshold found before the first."""
    global _holders, _saved
    with _lock:
        if _holders == 0:
            young, middle, _saved = gc.get_threshold()
            gc.set_threshold(young, middle, max(_saved, DEFERRED))
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _saved is not None:
                young, middle, _ = gc.get_threshold()  # keeps a change made meanwhile to the young ones
                gc.set_threshold(young, middle, _saved)
                _saved = None

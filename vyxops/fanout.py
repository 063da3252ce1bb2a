"""Run independent fetches side by side, and hand back their results in a fixed order.

On the real platforms an investigation's time is round trips, not CPU, so reads that
need nothing from each other go out together. vyxops keeps httpx's *sync* client and
runs the calls in a bounded pool of threads, rather than moving to ``httpx.AsyncClient``:

- supabase-py's sync client is handed vyxops's own ``httpx.Client`` (its transport holds
  the retries and the rate budget); the async flavour would need a second client stack,
  and every fetcher, detector and notebook cell above would become a coroutine;
- an ``httpx.Client`` is thread-safe (one connection pool, shared), and the work between
  requests is small, so threads overlap the waits as well as an event loop would;
- notebooks already run an event loop (ipykernel), where ``asyncio.run`` is refused.

Results never depend on the order in which answers arrive: :func:`gather` returns a
dict in the order the calls were given, :func:`map_ordered` a list in input order, and
when several calls fail the first failure *in that order* is raised, after every call
has finished, so no request is left running behind an error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")

#: How many calls of one fan-out run at once. The platforms' limits are kept by
#: :mod:`vyxops.budget`, not by this width: it only bounds the threads.
DEFAULT_WIDTH = 8

_sequential = threading.Event()
_turn = threading.RLock()


@contextmanager
def sequential() -> Iterator[None]:
    """Within this block every fan-out runs its calls one after another, in order (for
    comparing with the concurrent run, and for reading a trace request by request)."""
    was = _sequential.is_set()
    _sequential.set()
    try:
        yield
    finally:
        if not was:
            _sequential.clear()


def gather(calls: Mapping[str, Callable[[], T]], width: int = DEFAULT_WIDTH) -> dict[str, T]:
    """Run every call at once (at most ``width`` together); their results, keyed and ordered as given."""
    if len(calls) <= 1 or width <= 1 or _sequential.is_set():
        return {name: call() for name, call in calls.items()}
    with ThreadPoolExecutor(max_workers=min(width, len(calls)), thread_name_prefix="vyxops") as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
    return {name: _result(future) for name, future in futures.items()}


def map_ordered(fn: Callable[[T], U], items: Iterable[T], width: int = DEFAULT_WIDTH) -> list[U]:
    """``[fn(item) for item in items]``, run side by side; results in input order."""
    todo = list(items)
    if len(todo) <= 1 or width <= 1 or _sequential.is_set():
        return [fn(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(width, len(todo)), thread_name_prefix="vyxops") as pool:
        futures = [pool.submit(fn, item) for item in todo]
    return [_result(future) for future in futures]


@contextmanager
def turn() -> Iterator[None]:
    """Hold the process's one turn at CPU-bound work (an app's analysis, its frames).

    With one interpreter lock, fifty apps' pandas work only switches between itself every
    few milliseconds, which costs a tenth more CPU and starves the one thread the others
    wait for (the project's function logs). Work that takes turns runs one piece at a
    time; what everyone waits for does not queue for a turn."""
    with _turn:
        yield


def ahead(call: Callable[[], object], name: str = "vyxops-ahead") -> Callable[[], None]:
    """Start ``call`` now, in the background, for a result others will ask for later (a cache it
    fills); the function returned waits for it to end. Its result and errors are its own: the
    call must not raise what nobody would see. Under :func:`sequential` nothing runs ahead."""
    if _sequential.is_set():
        return lambda: None
    thread = threading.Thread(target=call, name=name, daemon=True)
    thread.start()
    return thread.join


def _result(future: Future[T]) -> T:
    # The pool has been shut down (every call done) before the first result is read,
    # so raising here leaves nothing running; the order of reading fixes which error wins.
    return future.result()

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

The threads are kept between fan-outs (:class:`_Workers`): a new one starts only when
none is idle, and one idle for :data:`IDLE_S`, or done while :data:`KEEP_IDLE` are idle, ends.
A pool per fan-out had started some four hundred threads in a 50-app audit, each start a
handoff of the interpreter lock (bench/FIGURES.md). The pool never makes a call wait for a thread,
so fan-outs nested in fan-outs cannot deadlock; ``width`` bounds each fan-out's own calls.
"""

from __future__ import annotations

import collections
import functools
import itertools
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TypeVar, cast

T = TypeVar("T")
U = TypeVar("U")

#: How many calls of one fan-out run at once. The platforms' limits are kept by
#: :mod:`vyxops.fetch.budget`, not by this width: it only bounds the threads.
DEFAULT_WIDTH = 8
#: Seconds a kept thread waits for work before it ends.
IDLE_S = 30.0
#: Idle threads kept at most: a thread that finds this many idle already ends when its task does. A 50-app audit
#: had some four hundred threads at its peak, most of them waiting on another fan-out; each one kept holds its
#: stack and its allocators' caches (the memory an audit leaves behind grew with them, some 0.5 MiB a thread).
KEEP_IDLE = 64


class _Workers:
    """Threads kept for reuse: a task goes to an idle one, or to a new one when none is idle.

    ``_idle`` counts the threads waiting for work that no queued task is meant for: a task
    queued takes one of them (or starts a thread), so every queued task has a thread coming
    for it, and a thread whose wait times out ends only if one is still counted idle."""

    def __init__(self, idle_s: float = IDLE_S, keep_idle: int = KEEP_IDLE) -> None:
        self.idle_s = idle_s
        self.keep_idle = keep_idle
        self._tasks: queue.SimpleQueue[Callable[[], bool]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._names = itertools.count(1)

    @property
    def idle(self) -> int:
        """How many kept threads wait for work that no queued task is meant for."""
        with self._lock:
            return self._idle

    def run(self, task: Callable[[], None], done: Future[None]) -> None:
        """Run ``task`` (which must not raise) on a kept thread, then set ``done``: by then the thread
        counts itself idle, so a fan-out that follows the one waiting on ``done`` finds it there."""
        with self._lock:
            self._tasks.put(functools.partial(self._then, task, done))
            if self._idle:
                self._idle -= 1
                return
        threading.Thread(target=self._work, name=f"vyxops-{next(self._names)}", daemon=True).start()

    def _work(self) -> None:
        while True:
            try:
                task = self._tasks.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    if self._idle:
                        self._idle -= 1
                        return
                continue  # every idle thread is spoken for: a task is on its way to this one
            if not task():
                return

    def _then(self, task: Callable[[], None], done: Future[None]) -> bool:
        """Run ``task``, then count this thread idle, or end it (False) when enough are idle already."""
        task()
        with self._lock:
            keep = self._idle < self.keep_idle
            if keep:
                self._idle += 1
        done.set_result(None)  # after the count: else the waiter's next fan-out could start a thread
        return keep


_workers = _Workers()


def idle_threads() -> int:
    """How many kept threads wait for work now (for tests and benchmarks: threads are reused, not started)."""
    return _workers.idle


_sequential = threading.Event()


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
    return dict(zip(calls, _run_all(list(calls.values()), width)))


def map_ordered(fn: Callable[[T], U], items: Iterable[T], width: int = DEFAULT_WIDTH) -> list[U]:
    """``[fn(item) for item in items]``, run side by side; results in input order."""
    todo = list(items)
    if len(todo) <= 1 or width <= 1 or _sequential.is_set():
        return [fn(item) for item in todo]
    return _run_all([functools.partial(fn, item) for item in todo], width)


class _Batch:
    """One fan-out's calls and their outcomes, drained in order by the threads given to it."""

    def __init__(self, calls: list[Callable[[], object]]) -> None:
        self.calls = calls
        self.outcomes: list[tuple[bool, object]] = [(False, None)] * len(calls)
        self._order = iter(range(len(calls)))
        self._lock = threading.Lock()

    def drain(self) -> None:
        """Run the next call not yet taken, until none is left."""
        while (i := self._next()) is not None:
            try:
                self.outcomes[i] = (True, self.calls[i]())
            except BaseException as exc:  # re-raised by _run_all, in the caller's thread
                self.outcomes[i] = (False, exc)

    def _next(self) -> int | None:
        with self._lock:
            return next(self._order, None)


def _run_all(calls: list[Callable[[], T]], width: int) -> list[T]:
    """Every call on the kept threads, at most ``width`` at once: that many drain the calls in
    order. Results in order; after all have ended, the first failure in that order is raised."""
    batch = _Batch(list(calls))
    drained: list[Future[None]] = [Future() for _ in range(min(width, len(calls)))]
    for done in drained:
        _workers.run(batch.drain, done)
    for done in drained:
        done.result()
    for ok, value in batch.outcomes:
        if not ok:
            raise cast(BaseException, value)
    return [cast(T, value) for _, value in batch.outcomes]


class _Turn:
    """One re-entrant turn at CPU-bound work, handed on in the order it was asked for.

    A release hands the turn to the first waiter (its own gate, not a shared wake-up):
    with fifty apps queued, waking all of them to find the turn taken would itself be the
    contention for the interpreter lock that the turn is there to avoid."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiting: collections.deque[tuple[int, threading.Lock]] = collections.deque()  # (thread, gate)

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._lock:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None:
                self._owner, self._depth = me, 1
                return
            gate = threading.Lock()
            gate.acquire()
            self._waiting.append((me, gate))
        gate.acquire()  # opened by the release that made this thread the owner

    def release(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth:
                return
            if not self._waiting:
                self._owner = None
                return
            who, gate = self._waiting.popleft()
            self._owner, self._depth = who, 1
            gate.release()

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)


_turn = _Turn()


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's threads: its kept threads and its turn start afresh
    (else a task would be queued for an idle thread that is not there, and wait for ever)."""
    global _workers, _turn
    _workers, _turn = _Workers(), _Turn()


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def turn() -> Iterator[None]:
    """Hold the process's one turn at CPU-bound work (an app's frames, its analysis).

    With one interpreter lock, fifty apps' pandas work only switches between itself every
    few milliseconds, which costs CPU and starves the one thread the others wait for (the
    project's function logs). Work that takes turns runs one piece at a time, first come
    first served; what everyone waits for does not queue for a turn."""
    _turn.acquire()
    try:
        yield
    finally:
        _turn.release()


def waiting_for_turn() -> int:
    """How many threads wait for the turn now (for tests: a turn is queued for, not spun on)."""
    return _turn.waiting


def ahead(call: Callable[[], object], name: str = "vyxops-ahead") -> Callable[[], None]:
    """Start ``call`` now, in the background, for a result others will ask for later (a cache it
    fills); the function returned waits for it to end. Its result and errors are its own: the
    call must not raise what nobody would see. Under :func:`sequential` nothing runs ahead."""
    if _sequential.is_set():
        return lambda: None
    thread = threading.Thread(target=call, name=name, daemon=True)
    thread.start()
    return thread.join


class Skipped(Exception):
    """A read not made because a read it needs failed (that read's own failure is the one reported)."""

    def __init__(self, name: str, need: str) -> None:
        super().__init__(f"{name}: not read, {need} failed")
        self.need = need


#: One read of a graph: the names of the reads whose answers it takes, and the call given those answers.
Call = Callable[[Mapping[str, object]], object]
Node = tuple[tuple[str, ...], Call]


def run_graph(reads: Mapping[str, Node], width: int = DEFAULT_WIDTH) -> dict[str, object | BaseException]:
    """Run every read as soon as the reads it needs have answered, on the kept threads (at most ``width`` at once).

    Returns each read's answer, or the exception it raised (a read whose need failed gets :class:`Skipped`), keyed
    and ordered as given: the caller decides which failure to report, so no order of arrival decides it. Every
    read has ended when this returns. Under :func:`sequential` the reads run one by one, in the order given
    (each after its needs)."""
    unknown = {need for needs, _ in reads.values() for need in needs} - set(reads)
    if unknown:
        raise ValueError(f"reads needed but not given: {sorted(unknown)}")
    done: dict[str, object | BaseException] = {}
    lock = threading.Condition()
    started: set[str] = set()
    running = 0

    def outcome(name: str) -> object | BaseException:
        needs, call = reads[name]
        failed = next((n for n in needs if isinstance(done[n], BaseException)), None)
        if failed is not None:
            return Skipped(name, failed)
        try:
            return call({n: done[n] for n in needs})
        except Exception as exc:  # noqa: BLE001 - handed back: the caller reports the first in its order
            return exc

    def ready() -> list[str]:
        return [n for n, (needs, _) in reads.items() if n not in started and all(x in done for x in needs)]

    if _sequential.is_set() or width <= 1:
        while len(done) < len(reads):
            batch = ready()
            if not batch:
                raise ValueError(f"reads that need each other: {sorted(set(reads) - set(done))}")
            started.add(batch[0])
            done[batch[0]] = outcome(batch[0])
        return {name: done[name] for name in reads}

    def run(name: str) -> None:
        nonlocal running
        result = outcome(name)
        with lock:
            done[name] = result
            running -= 1
            start_ready()
            lock.notify_all()

    def start_ready() -> None:  # with the lock held
        nonlocal running
        for name in ready():
            if running >= width:
                return
            started.add(name)
            running += 1
            _workers.run(functools.partial(run, name), Future())

    with lock:
        start_ready()
        while len(done) < len(reads):
            if running == 0 and not ready():
                raise ValueError(f"reads that need each other: {sorted(set(reads) - set(done))}")
            lock.wait()
    return {name: done[name] for name in reads}

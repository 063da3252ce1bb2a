"""The collector's policy during an audit (vyxops.fetch.heap): no whole-heap sweep, young cycles still freed."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import pytest

from vyxops.analysis.audit import run_audit
from vyxops.fetch import heap
from vyxops.fetch.session import open_session


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_a_batch_runs_no_full_collection_but_still_frees_young_cycles() -> None:
    full: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    before = gc.get_threshold()
    gc.callbacks.append(seen)
    try:
        with heap.batch():
            assert gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] >= heap.DEFERRED
            gone = weakref.ref(_Node())  # garbage at once, but in a cycle
            for _ in range(200):  # enough young collections to reach the oldest generation's old threshold
                [_Node() for _ in range(before[0])]
            assert gone() is None, "a young cycle outlived the batch's young collections"
            assert full == [], "a whole-heap collection ran inside the batch"
    finally:
        gc.callbacks.remove(seen)
    assert gc.get_threshold() == before


def test_overlapping_batches_keep_the_policy_until_the_last_ends_then_restore_it() -> None:
    before = gc.get_threshold()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with heap.batch():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    with heap.batch():
        t.start()
        assert inside.wait(10)
    assert gc.get_threshold()[2] >= heap.DEFERRED, "the first batch to end restored it under the second"
    release.set()
    t.join(10)
    assert gc.get_threshold() == before


def test_a_batch_that_raises_restores_the_threshold() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), heap.batch():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before


def test_an_audit_runs_as_a_batch_and_leaves_the_collector_as_it_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_audit holds the policy while its apps are read and analysed (a tenth of a 50-app audit's CPU)."""
    import vyxops.analysis.audit

    held: list[int] = []
    analyse = vyxops.analysis.audit.analyse

    def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
        held.append(gc.get_threshold()[2])
        return analyse(*args, **kwargs)

    monkeypatch.setattr(vyxops.analysis.audit, "analyse", watched)
    before = gc.get_threshold()
    scenario = Path(__file__).parent / "scenarios" / "two-apps-only-beta-broken.yaml"
    with open_session("sandbox", scenario=scenario) as session:
        audit = run_audit(session)
    assert audit.errors == {} and len(held) == len(audit.investigations) == 2
    assert all(threshold >= heap.DEFERRED for threshold in held)
    assert gc.get_threshold() == before

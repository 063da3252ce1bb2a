"""The sources table: a source declared in it alone reaches the evidence, coverage and the timeline; and each read
starts as soon as the reads it needs have answered, not when a whole stage has."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from vyxops.analysis import sources
from vyxops.analysis import timeline as tl
from vyxops.analysis.collect import collect_evidence
from vyxops.analysis.investigate import analyse
from vyxops.analysis.sources import Answers, ReadContext, Source, build_timeline
from vyxops.core.contract import SEED
from vyxops.core.coverage import Gap
from vyxops.core.errors import ApiError, InputError
from vyxops.fetch import fanout, frames
from vyxops.fetch.http import Attempt
from vyxops.fetch.session import open_session

#: A test-only source: the machines table read straight from PostgreSQL (issue 21's example), one row per
#: machine the app's rows name. It only corroborates, and its read leaves a gap.
PG_SCHEMA = {"machine_id": frames.STR, "seen_at": frames.TIME}


def _pg_read(ctx: ReadContext, got: Answers) -> pd.DataFrame:
    rows = got.frame("machine_rows")
    records = [{"machine_id": m, "seen_at": t} for m, t in zip(rows["machine_id"], rows["created_at"], strict=True)]
    gap = Gap("postgres.machines", "the replica lags: rows after its last sync are not seen")
    return frames.make_frame("pg_machines", records, source="postgres machines", gaps=[gap])


def _pg_events(df: pd.DataFrame, _: object) -> list[pa.Table]:
    mid = pa.array(df["machine_id"], type=pa.large_string(), from_pandas=True)
    return [
        tl.block(
            len(df),
            time=pa.array(df["seen_at"], from_pandas=True),
            source="postgres.machines",
            entity_type="machine",
            entity=mid,
            kind="pg.machine.seen",
            message="machine seen in PostgreSQL",
            key="pg",
            machine_id=mid,
        )
    ]


PG = Source(
    "pg_machines", "supabase", _pg_read, ("machine_rows",), gap="postgres.machines", decides=False, events=_pg_events
)


@pytest.fixture
def with_pg(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table with one more entry, and its fetcher's schema: nothing else is touched."""
    monkeypatch.setitem(frames.SCHEMAS, "pg_machines", PG_SCHEMA)
    monkeypatch.setattr(sources, "SOURCES", (*sources.SOURCES, PG))


def test_a_source_declared_in_the_table_reaches_the_evidence_coverage_and_the_timeline(
    with_pg: None, tmp_path: Path
) -> None:
    """One entry (and its schema): its frame is in the evidence, its gap does not decide health (the entry says
    it only corroborates), and its events are on the timeline, in the findings' verdict untouched."""
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as session:
        evidence = collect_evidence(session, "vyx-app", contract=SEED)
    pg = evidence.frames()["pg_machines"]
    assert list(evidence.frames())[-1] == "pg_machines" and len(pg) == len(evidence.machine_rows) > 0
    [gap] = [g for g in evidence.gaps if g.source == "postgres.machines"]
    assert gap.decides is False
    timeline = build_timeline(**evidence.frames())
    seen = timeline[timeline["kind"] == "pg.machine.seen"]
    assert sorted(seen["machine_id"]) == sorted(pg["machine_id"])
    assert analyse(evidence).document["complete"] is True  # a gap that does not decide leaves the verdict whole


def test_a_source_whose_read_fails_leaves_its_gap_and_the_rest_of_the_evidence(
    with_pg: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry's ``gap``: its failure is that gap (not deciding, as declared), not the end of the investigation."""

    def refused(ctx: ReadContext, got: Answers) -> pd.DataFrame:
        raise ApiError("503 replica down", platform="postgres", method="SELECT", path="machines", status=503)

    monkeypatch.setattr(sources, "SOURCES", (*sources.SOURCES[:-1], dataclasses.replace(PG, read=refused)))
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as session:
        evidence = collect_evidence(session, "vyx-app", contract=SEED)
    assert evidence.frames()["pg_machines"].empty and not evidence.releases.empty
    [gap] = [g for g in evidence.gaps if g.source == "postgres.machines"]
    assert gap.why.startswith("postgres.machines could not be read (") and "503 replica down" in gap.why
    assert gap.decides is False


def test_every_source_has_a_schema_a_platform_and_reads_that_exist() -> None:
    """The table is whole: each source's frame is declared, and each read it needs is one of the table's."""
    names = {r.name for r in (*sources.SOURCES, *sources.ANSWERS)}
    for s in sources.SOURCES:
        assert s.schema and s.platform in ("fly", "supabase") and set(s.needs) <= names, s.name


def test_a_frame_no_source_names_is_refused_with_the_names_that_are() -> None:
    with pytest.raises(InputError) as err:
        build_timeline(pg_machines=frames.empty_frame("machines"))
    assert "machines" in str(err.value.allowed) and "pg_machines" in err.value.message


class Held:
    """An attempt hook that holds the thread of the first answer to ``path`` until ``until`` has been asked."""

    def __init__(self, holds: tuple[str, ...], until: str) -> None:
        self.holds, self.until = holds, until
        self.asked = threading.Event()
        self.seen: list[str] = []
        self.lock = threading.Lock()
        self.ran_out: list[str] = []

    def __call__(self, attempt: Attempt) -> None:
        path = attempt.where.split("?")[0]
        if path.endswith(self.until):
            self.asked.set()
        if path.endswith(self.holds) and not self.asked.wait(timeout=20):
            with self.lock:  # a read that waits for the held one never comes: the hold runs out
                self.ran_out.append(path)
        with self.lock:  # in the order the answers were let through
            self.seen.append(path)


def test_the_registry_is_asked_while_the_plan_is_still_being_read(tmp_path: Path) -> None:
    """The answer of the plan's second read (the organization: how long function logs are kept) is held until
    the registry is asked about an image. The registry's question needs the function logs' rows (the images
    they name), not their retention: with stages, or logs that waited for the plan, it would come only after
    the plan, and the hold would run out. Counted, not timed: no hold runs out."""
    hold = Held(("/v1/organizations/sandbox-org-08aecabf6d6e",), "/manifests/stub")
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as session:
        session.watch(hold)
        evidence = collect_evidence(session, "vyx-app", contract=SEED)
    assert hold.asked.is_set() and hold.ran_out == [] and not evidence.manifests.empty
    assert hold.seen.index("/v2/vyx-app/manifests/stub") < hold.seen.index("/v1/organizations/sandbox-org-08aecabf6d6e")


def test_run_graph_starts_a_read_when_its_needs_are_in_and_hands_back_failures_in_order() -> None:
    """``b`` needs ``a`` only: it runs while ``slow`` (needed by ``c``) is held; a failure skips what needs it."""
    release = threading.Event()
    order: list[str] = []

    def slow(_: object) -> str:
        release.wait(timeout=20)
        order.append("slow")
        return "s"

    def b(got: object) -> str:
        order.append("b")
        release.set()
        return "b"

    def boom(_: object) -> str:
        raise ValueError("boom")

    done = fanout.run_graph(
        {
            "slow": ((), slow),
            "a": ((), lambda _: "a"),
            "b": (("a",), b),
            "c": (("slow", "b"), lambda got: f"{got['slow']}{got['b']}"),
            "x": ((), boom),
            "y": (("x",), lambda _: "never"),
        }
    )
    assert order == ["b", "slow"] and done["c"] == "sb"
    assert isinstance(done["x"], ValueError) and isinstance(done["y"], fanout.Skipped) and done["y"].need == "x"
    with fanout.sequential():
        assert fanout.run_graph({"b": (("a",), lambda got: got["a"]), "a": ((), lambda _: 1)}) == {"b": 1, "a": 1}

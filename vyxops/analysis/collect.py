"""Collect one app's evidence: every read of the sources table, each started as soon as what it needs is in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from vyxops.analysis import sources as table
from vyxops.analysis.evidence import Evidence, ProjectReads, check_machine_in_window, parse_window
from vyxops.analysis.sources import (
    UNREAD,
    Answer,
    Answers,
    ReadContext,
    Source,
    answers_for,
    failure_gap,
    marked,
    shared_reads,
)
from vyxops.core.checks import check_app, check_machine_id
from vyxops.core.contract import Contract
from vyxops.core.errors import ApiError, TransportError
from vyxops.core.progress import stages
from vyxops.fetch import fanout, frames
from vyxops.fetch.session import Session


def collect_evidence(
    session: Session,
    app: str,
    *,
    contract: Contract,
    since: Any = None,
    until: Any = None,
    machine_id: str | None = None,
    project: ProjectReads | None = None,
    sources: tuple[Source, ...] | None = None,
) -> Evidence:
    """Read both platforms for ``app`` over the window; each source is read once.

    Every read of ``sources`` (by default the table, :mod:`vyxops.analysis.sources`) and of the answers they
    take starts as soon as the reads it needs have answered (:func:`vyxops.fetch.fanout.run_graph`); the frames
    do not depend on the order in which answers arrive, and when reads fail, the first in the table's order is
    raised (a source with a ``gap`` leaves that gap instead). ``project`` shares the project-wide reads between
    the apps of one audit. ``contract`` names the team's function, secret and table
    (:func:`vyxops.analysis.discover.resolve_contract` finds it).
    """
    check_app(app)
    check_machine_id(machine_id)
    project = project or ProjectReads(session)
    now = session.now()
    start, end = parse_window(now, since, until)
    ctx = ReadContext(session, project, contract, app, start, end, machine_id)
    sources = table.SOURCES if sources is None else sources
    failed: dict[str, ApiError | TransportError] = {}  # sources that failed into their gap
    with stages(1, f"evidence for {app}") as say:
        say.step("Fly releases, machines, logs, images; Supabase rows, functions, secrets, logs")
        answers = answers_for(ctx)
        reads: tuple[Source | Answer, ...] = (*sources, *answers)
        done = fanout.run_graph({r.name: (r.needs, _call(ctx, r, failed)) for r in reads})
    _raise_first((*sources, *answers), done)
    got = {s.name: marked(s, _frame(done[s.name])) for s in sources}
    gaps = [failure_gap(s, failed[s.name], start, end) for s in sources if s.name in failed]
    check_machine_in_window(machine_id, app, got["machines"], start, end, got["machine_rows"])
    org_apps = done["org_apps"]
    return Evidence(
        target=session.label, app=app, now=now, since=start, until=end, machine_id=machine_id, by_source=got,
        contract=contract, project_ref=session.project_ref, notes=_notes(sources, got),
        org_apps=org_apps if isinstance(org_apps, list) else None, extra_gaps=gaps, project=project,
        incarnation=session.incarnation, shared=shared_reads(ctx, got["secrets"], got["function_logs"]),
        function_bearer=session.supabase.function_bearer,
    )  # fmt: skip


def _call(ctx: ReadContext, read: Source | Answer, failed: dict[str, ApiError | TransportError]) -> fanout.Call:
    """``read`` as a node of the graph; a source with a ``gap`` that fails gives an empty frame (marked
    unread: no copy of a project-wide read), and its failure is kept in ``failed``."""

    def call(answers: Mapping[str, object]) -> object:
        if not (isinstance(read, Source) and read.gap):
            return read.read(ctx, Answers(answers))
        try:
            return read.read(ctx, Answers(answers))
        except (ApiError, TransportError) as exc:
            failed[read.name] = exc
            empty = frames.empty_frame(read.name)
            empty.attrs[UNREAD] = True
            return empty

    return call


def _frame(value: object) -> pd.DataFrame:
    if not isinstance(value, pd.DataFrame):
        raise TypeError(f"a source's read gave {type(value).__name__}, not a frame")
    return value


def _raise_first(order: tuple[Source | Answer, ...], done: dict[str, object]) -> None:
    """The first failure in the table's order (sources, then the answers they take); a read not made because
    one it needs failed is reported as that failure, at the place of the read that failed."""
    for read in order:
        value = done[read.name]
        if isinstance(value, BaseException) and not isinstance(value, fanout.Skipped):
            raise value


def _notes(sources: tuple[Source, ...], got: dict[str, pd.DataFrame]) -> list[str]:
    """One line per frame that stopped early, of the sources the table says to note."""
    return [
        f"{df.attrs.get('frame')}: {df.attrs.get('note')}"
        for s in sources
        if s.noted and not (df := got[s.name]).attrs.get("complete", True)
    ]

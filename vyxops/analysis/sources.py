"""The data sources of an investigation, as one table.

Each :class:`Source` is one frame of :class:`vyxops.analysis.evidence.Evidence`: its name (the frame, whose
schema is ``vyxops.fetch.frames.SCHEMAS[name]``), its platform, its read (a function of a :class:`ReadContext`
and the answers it needs), what it needs (the names of other reads, :data:`SOURCES` or :data:`ANSWERS`), whether
its failure is a gap and which (else the failure ends the investigation), whether its gaps decide health
(SPEC.md "Findings"), and its timeline mapping. The evidence's frames, the order in which they are read and a
failure is reported, coverage and :func:`build_timeline` are derived from this table: adding a source is one
entry here plus its fetcher (docs/DESIGN.md "Where to add a data source").

:data:`ANSWERS` are the reads that are not frames (the app's machine list, the org's apps, the raw rows): the
sources take them. Every read starts as soon as what it needs is in (:func:`vyxops.fetch.fanout.run_graph`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, cast

import pandas as pd
import pyarrow as pa

from vyxops.analysis import timeline as tl
from vyxops.analysis.evidence import (
    ProjectReads,
    candidate_refs,
    derive_shared,
    function_log_refs,
    function_logs_read,
    listed_images,
    machine_pins,
    match_secret,
    refs_in,
    secret_row,
)
from vyxops.core.contract import Contract
from vyxops.core.coverage import Gap
from vyxops.core.errors import ApiError, InputError, NotFoundError, TransportError
from vyxops.core.images import parse_image_ref
from vyxops.core.timeutil import iso
from vyxops.fetch import frames
from vyxops.fetch.clients.supabase import NO_MANAGEMENT_CODE
from vyxops.fetch.pg_frames import fetch_machine_rows_direct
from vyxops.fetch.session import Session

Machine = dict[str, Any]  # one machine as the Machines API lists it (JSON)
T = TypeVar("T")


@dataclass(frozen=True)
class ReadContext:
    """What every read of one app's evidence is made with."""

    session: Session
    project: ProjectReads
    contract: Contract
    app: str
    since: pd.Timestamp
    until: pd.Timestamp
    machine_id: str | None


class Answers:
    """The answers a read asked for (its ``needs``), by name, with typed accessors."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self._values = values

    def frame(self, name: str) -> pd.DataFrame:
        value = self._values[name]
        if not isinstance(value, pd.DataFrame):
            raise TypeError(f"{name}: not a frame")
        return value

    def listed(self) -> list[Machine]:
        return cast(list[Machine], self._values["listed"])

    def org_apps(self) -> list[str] | None:
        return cast(list[str] | None, self._values["org_apps"])

    def machine_pair(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return cast(tuple[pd.DataFrame, pd.DataFrame], self._values["machine_reads"])

    def gaps(self, name: str) -> list[Gap]:
        return cast(list[Gap], self._values[name])

    def kept(self, name: str) -> pd.DataFrame | list[Gap] | ApiError | TransportError:
        """An answer read with :func:`kept_failure`: the read's answer, or the failure it met."""
        value = self._values[name]
        if isinstance(value, Kept):
            return value.error
        return cast(pd.DataFrame | list[Gap], value)


@dataclass(frozen=True)
class Kept:
    """A failure kept as a read's answer (:func:`kept_failure`). Not an exception itself: the graph
    (:func:`vyxops.fetch.fanout.run_graph`) skips what needs a read that raised, and reports it first."""

    error: ApiError | TransportError


Read = Callable[[ReadContext, Answers], object]
#: A source's events on the timeline: its frame (usable: rows, and its schema's columns) and every usable frame.
Events = Callable[[pd.DataFrame, Mapping[str, pd.DataFrame]], list[pa.Table]]


@dataclass(frozen=True)
class Answer:
    """A read that is not a frame: sources take its answer. Of two answers with one name, the first whose
    ``when`` holds for the run is read (another way to the same answer, such as the database itself)."""

    name: str
    read: Read
    needs: tuple[str, ...] = ()
    when: Callable[[ReadContext], bool] | None = None


@dataclass(frozen=True)
class Source:
    """One frame of the evidence (see the module's docstring)."""

    name: str  # the frame, with its schema in frames.SCHEMAS
    platform: str  # "fly" or "supabase"
    read: Callable[[ReadContext, Answers], pd.DataFrame]
    needs: tuple[str, ...] = ()
    gap: str | None = None  # when set, a failure (ApiError, TransportError) is this Gap source, not the end
    decides: bool = True  # False: the source only corroborates; its gaps leave the verdict alone
    events: Events | None = None  # None: no timed events (a manifest has no push time)
    noted: bool = False  # an early stop gets a line in Evidence.notes

    @property
    def schema(self) -> dict[str, str]:
        """The frame's columns and dtypes, declared once beside its fetcher (frames.SCHEMAS)."""
        return frames.SCHEMAS[self.name]


# --------------------------------------------------------------------------- the reads


def _releases(ctx: ReadContext, _: Answers) -> pd.DataFrame:
    """The first read of the app: a missing app names what the target holds and how to switch."""
    try:
        return ctx.project.releases(ctx.app)
    except NotFoundError as exc:
        said = exc.message.split(": ", 1)[-1]  # the platform's own words, without the request line
        raise NotFoundError(
            f"app {ctx.app!r} not found on {ctx.session.label} ({said})",
            platform=exc.platform,
            method=exc.method,
            path=exc.path,
            status=exc.status,
            hint=f"{ctx.session.description or ctx.session.label}; on the sandbox, switch with "
            "`vyxops sandbox reset --scenario NAME` (list them with `vyxops scenarios`)",
        ) from None


def _table_rows_direct(ctx: ReadContext, _: Answers) -> pd.DataFrame:
    """The app's rows from the database itself ($SUPABASE_DB_URL): one query, no pages."""
    assert ctx.session.db is not None  # its Answer's ``when``
    return fetch_machine_rows_direct(ctx.session.db.reader(), ctx.contract, app=ctx.app)


def _table_rows(ctx: ReadContext, _: Answers) -> pd.DataFrame:
    """The app's rows: from the table read whole earlier in the run (discovery's) when there is one, else read."""
    whole = ctx.project.table_rows(ctx.contract.table.name)
    if whole is not None:
        return frames.rows_frame(whole, ctx.contract, app=ctx.app)
    return frames.fetch_machine_rows(ctx.session, ctx.contract, app=ctx.app)


def _machine_rows(ctx: ReadContext, got: Answers) -> pd.DataFrame:
    """The rows that are the app's. A table with an app column was read for the app alone; without one,
    a row is the app's when its machine id names one of the app's machines, or its image names the app's
    repository (SPEC.md); a row naming neither is the app's only when the org has no other app."""
    rows = got.frame("table_rows")
    if ctx.contract.columns.app:
        return rows
    ours = {m.get("id") for m in got.listed() or [] if isinstance(m, dict)}
    alone = not (set(got.org_apps() or []) - {ctx.app})
    keep = [
        (isinstance(mid, str) and mid in ours)
        or (isinstance(image, str) and _repository_app(image) == ctx.app)
        or (alone and not isinstance(image, str))
        for mid, image in zip(rows["machine_id"].tolist(), rows["image"].tolist())
    ]
    kept = rows[keep].reset_index(drop=True)
    kept.attrs.update(rows.attrs)
    return kept


def _repository_app(ref: str) -> str:
    return parse_image_ref(ref).repository.split("/", 1)[0]


def _machine_reads(ctx: ReadContext, got: Answers) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The machines and their events: those listed, and those known only by id (the rows', ``--machine``)."""
    rows = got.frame("machine_rows")
    known_ids = rows["machine_id"].dropna().tolist() + ([ctx.machine_id] if ctx.machine_id else [])
    return frames.machine_frames(ctx.session, ctx.app, got.listed(), also_ids=known_ids)


def kept_failure(read: Callable[[ReadContext], object]) -> Read:
    """``read``, whose failure to be read (ApiError, TransportError) is its answer: a read that the source that
    takes it turns into a gap, and that others can do without."""

    def call(ctx: ReadContext, _: Answers) -> object:
        try:
            return read(ctx)
        except (ApiError, TransportError) as exc:
            return Kept(exc)

    return call


def _function_logs(ctx: ReadContext, got: Answers) -> pd.DataFrame:
    """The contract's function's logs, with the plan's retention gaps (each read once per run, side by side)."""
    rows, gaps = got.kept("function_log_rows"), got.kept("log_retention")
    for value in (rows, gaps):
        if isinstance(value, ApiError | TransportError):
            raise value
    return frames.with_retention(cast(pd.DataFrame, rows), cast(list[Gap], gaps))


def _log_rows(ctx: ReadContext, got: Answers) -> pd.DataFrame:
    """The function logs' rows as read so far, without waiting for the plan: none when they could not be read."""
    rows = got.kept("function_log_rows")
    if isinstance(rows, pd.DataFrame):
        return rows
    none = frames.empty_frame("function_logs")
    none.attrs[UNREAD] = True  # no copy of the project's read: derived afresh (shared_reads)
    return none


def _manifests(ctx: ReadContext, got: Answers) -> pd.DataFrame:
    """Ask the registry about the references that concern the app (:func:`refs_to_check`); those every
    investigation of the app asks were asked ahead (ProjectReads.read_ahead) and are answered from there."""
    project, app, contract = ctx.project, ctx.app, ctx.contract
    derive = project_derive(ctx, got)
    refs = refs_to_check(
        app,
        got.frame("releases"),
        listed_images(app, got.listed()),
        got.frame("machine_rows"),
        own_texts=got.frame("fly_logs")["message"].dropna().tolist(),
        project_refs=function_log_refs(_log_rows(ctx, got), derive),
        other_apps=project.other_apps(app),
        secret=_secret_digest(got.frame("secrets"), derive, contract.image_secret),
    )
    fallback = contract.fallback_ref(app)
    refs += [fallback] if fallback and fallback not in refs else []
    own_apps = project.other_apps(app) | {app}  # the token's apps, as far as this run knows them
    return frames.fetch_manifests(ctx.session, refs, ask=project.manifest, own_apps=own_apps)


class Derive(Protocol):
    """``compute()``, a pure function of ``frame`` and ``key``, made once per run for a project read's copy."""

    def __call__(self, frame: pd.DataFrame, key: tuple[Any, ...], compute: Callable[[], T]) -> T: ...


def project_derive(ctx: ReadContext, got: Answers) -> Derive:
    """What every app derives alike from the project's reads, made once per run (ProjectReads.derive)."""
    shared = shared_reads(ctx, got.frame("secrets"), _log_rows(ctx, got))

    def derive(frame: pd.DataFrame, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        return derive_shared(ctx.project, shared, frame, key, compute)

    return derive


def shared_reads(ctx: ReadContext, secrets: pd.DataFrame, logs: pd.DataFrame) -> dict[tuple[Any, ...], pd.DataFrame]:
    """The evidence's copies of project-wide reads, by key: the secrets, and the function logs when they were read."""
    read = function_logs_read(ctx.since, ctx.until, ctx.contract.function)
    return {("secrets",): secrets} | ({} if logs.attrs.get(UNREAD) else {read: logs})


def refs_to_check(
    app: str,
    releases: pd.DataFrame,
    machines: pd.DataFrame,
    rows: pd.DataFrame,
    *,
    own_texts: list[str],
    project_refs: list[str],
    other_apps: set[str],
    secret: str | None,
) -> list[str]:
    """The image references an app's investigation asks the registry about.

    Those that concern the app: its releases, ``:latest``, its machines' and rows'
    images, references in its own Fly logs, references in the project's function logs
    (``project_refs``: :func:`refs_in` of them, read once per run)
    unless they are in another known app's repository (that app's business: its own
    investigation checks them), and whatever the image secret's digest
    matches among all of them, since provisioning uses it whichever repository it names.
    """
    own = candidate_refs(app, releases, machines, rows, refs_in(own_texts))
    pins = set(machine_pins(machines))  # asked about only when the secret names one: one GET, not one per digest
    keep = [ref for ref in own if ref not in pins] + [
        ref for ref in project_refs if _repository_app(ref) not in other_apps
    ]
    named = match_secret(secret, list(dict.fromkeys(own + project_refs)))
    return list(dict.fromkeys(keep + ([named] if named else [])))


def _secret_digest(secrets: pd.DataFrame, derive: Callable[..., dict[str, dict[str, object]]], name: str) -> str | None:
    row = secret_row(secrets, derive, name) if name else None
    return None if row is None or frames.is_na(row["digest"]) else str(row["digest"])


# --------------------------------------------------------------------------- the timeline mappings


def _machines_events(df: pd.DataFrame, usable: Mapping[str, pd.DataFrame]) -> list[pa.Table]:
    block = tl.machines_block(df, usable.get("machine_events"))
    return [] if block is None else [block]


# --------------------------------------------------------------------------- the table

#: The reads that are not frames, in the order their failure is reported after the sources' (as the stages did).
ANSWERS: tuple[Answer, ...] = (
    Answer("table_rows", _table_rows_direct, when=lambda ctx: ctx.session.db is not None),
    Answer("table_rows", _table_rows),
    Answer("listed", lambda ctx, _: ctx.project.listed(ctx.app)),
    Answer("function_log_rows",
           kept_failure(lambda ctx: ctx.project.function_log_rows(ctx.since, ctx.until, ctx.contract.function))),
    Answer("log_retention", kept_failure(lambda ctx: ctx.project.log_retention(ctx.since, ctx.until))),
    Answer("org_apps", lambda ctx, _: ctx.project.org_apps()),
    Answer("machine_reads", _machine_reads, ("machine_rows", "listed")),
)  # fmt: skip

#: The sources, in the evidence's order (its frames, its gaps, the timeline's blocks).
SOURCES: tuple[Source, ...] = (
    Source("machines", "fly", lambda _, got: got.machine_pair()[0], ("machine_reads",),
           events=_machines_events, noted=True),
    Source("machine_events", "fly", lambda _, got: got.machine_pair()[1], ("machine_reads",),
           events=lambda df, usable: [tl.events_block(df, usable.get("machines"))]),
    Source("releases", "fly", _releases, events=lambda df, _: [tl.releases_block(df)], noted=True),
    Source("manifests", "fly", _manifests,
           ("releases", "listed", "machine_rows", "fly_logs", "function_log_rows", "secrets", "org_apps")),
    Source("fly_logs", "fly", lambda ctx, _: ctx.project.fly_logs(ctx.app, ctx.since, ctx.until), gap="fly.logs",
           decides=False, events=lambda df, _: [tl.fly_logs_block(df)], noted=True),
    Source("machine_rows", "supabase", _machine_rows, ("table_rows", "listed", "org_apps"),
           events=lambda df, _: tl.rows_blocks(df), noted=True),
    Source("secrets", "supabase", lambda ctx, _: ctx.project.secrets(), events=lambda df, _: [tl.secrets_block(df)]),
    Source("functions", "supabase", lambda ctx, _: ctx.project.functions(),
           events=lambda df, usable: tl.functions_blocks(df, usable.get("secrets"))),
    Source("function_logs", "supabase", _function_logs, ("function_log_rows", "log_retention"),
           gap="supabase.function_logs",
           events=lambda df, _: tl.function_logs_blocks(df), noted=True),
)  # fmt: skip


def answers_for(ctx: ReadContext) -> tuple[Answer, ...]:
    """The answers this run reads: of each name, the first in :data:`ANSWERS` whose ``when`` holds."""
    chosen: dict[str, Answer] = {}
    for answer in ANSWERS:
        if answer.name not in chosen and (answer.when is None or answer.when(ctx)):
            chosen[answer.name] = answer
    return tuple(chosen.values())


def by_name() -> dict[str, Source]:
    """The table's sources by name (read from :data:`SOURCES` when asked: a test may declare one more)."""
    return {s.name: s for s in SOURCES}


def marked(source: Source, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its gaps as the table says of its source: a source that only corroborates leaves gaps that do
    not decide health (coverage)."""
    if source.decides or not df.attrs.get("gaps"):
        return df
    df.attrs["gaps"] = [replace(Gap.from_json(g), decides=False).as_json() for g in df.attrs["gaps"]]
    return df


def coverage(source: str, df: pd.DataFrame) -> list[Gap]:
    """The gaps of frame ``df`` of ``source``, as the evidence holds them (each deciding health or not, per the
    table)."""
    return [Gap.from_json(g) for g in marked(by_name()[source], df).attrs.get("gaps") or []]


def failure_gap(source: Source, exc: ApiError | TransportError, since: pd.Timestamp, until: pd.Timestamp) -> Gap:
    """The gap a source that failed leaves (its ``gap`` names it): it could not be read."""
    name = source.gap or source.name
    later = (
        "" if getattr(exc, "code", None) == NO_MANAGEMENT_CODE else "; retry later"
    )  # no Management API: nothing to retry
    why = f"{name} could not be read ({exc.message}){later}"
    return Gap(name, why, iso(since), iso(until), decides=source.decides)


#: The attr that marks a failed source's empty frame: it is no copy of a project-wide read (shared_reads).
UNREAD = "unread"


def build_timeline(**frames_given: pd.DataFrame | None) -> pd.DataFrame:
    """Merge the frames (each in its :data:`vyxops.fetch.frames.SCHEMAS` shape; any may be None) into one timeline.

    Each source's events are its table entry's mapping (:data:`SOURCES`); a name that is no source is an
    InputError naming those that are. Returns exactly :data:`vyxops.analysis.timeline.TIMELINE_SCHEMA`, sorted
    stably by (time, source, entity, kind), with repeated events (same time, source, entity, kind and message)
    kept once, index 0..n-1. ``attrs`` holds ``untimed`` (events dropped for lack of a time) and
    ``duplicates`` (events dropped as repeats).
    """
    known = by_name()
    unknown = [name for name in frames_given if name not in known]
    if unknown:
        raise InputError("frames", f"no source is named {unknown}", allowed=list(known))
    usable = {s.name: df for s in SOURCES if (df := frames_given.get(s.name)) is not None and tl.usable(s.name, df)}
    blocks: list[pa.Table] = []
    for source in SOURCES:
        if source.events is not None and source.name in usable:
            blocks += source.events(usable[source.name], usable)
    return tl.merge_blocks(blocks) if blocks else tl.empty_timeline()

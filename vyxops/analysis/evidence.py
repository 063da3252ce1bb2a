"""What an investigation looks at, for one app and one window: :class:`Evidence`, its frames.

The frames are the sources table's (:mod:`vyxops.analysis.sources`), read by
:func:`vyxops.analysis.collect.collect_evidence` through :class:`ProjectReads`, the run's shared
reads; detectors, the timeline and the notebooks work on the Evidence it returns.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pandas as pd

from vyxops.core import facts
from vyxops.core.checks import check_machine_of_app, check_time_input
from vyxops.core.contract import Contract
from vyxops.core.coverage import Gap
from vyxops.core.errors import ApiError, AuthError, InputError, TransportError, UnexpectedAnswer
from vyxops.core.function_auth import FunctionBearer
from vyxops.core.images import FLY_REGISTRY, ImageIdentity, parse_image_ref, reference_problem, secret_digest
from vyxops.core.timeutil import TIME_FORMS, iso, to_ms, to_utc
from vyxops.fetch import fanout, frames
from vyxops.fetch.session import Session

IMAGE_IN_TEXT = facts.IMAGE_IN_TEXT
T = TypeVar("T")
DEFAULT_LOOKBACK = pd.Timedelta(hours=24)
Head = tuple[bool | None, str | None]  # (exists, digest) of an image reference, as the registry answered


@dataclass
class Evidence:
    """The frames of one investigation, with the window and the target's clock."""

    target: str
    app: str
    now: pd.Timestamp
    since: pd.Timestamp
    until: pd.Timestamp
    machine_id: str | None
    # every source's frame, by the sources table's names and in its order (vyxops.analysis.sources)
    by_source: dict[str, pd.DataFrame]
    contract: Contract = field(default_factory=Contract)  # the team's pipeline this run read it with
    project_ref: str | None = None  # the Supabase project (for the commands a person types)
    notes: list[str] = field(default_factory=list)
    org_apps: list[str] | None = None  # the org's apps, when the token may list them
    extra_gaps: list[Gap] = field(default_factory=list)  # sources that failed outright
    incarnation: str = ""  # which world the target was (Session.incarnation): the audit log's lines of it are its own
    # what the session sends Edge Functions as a bearer (vyxops.core.function_auth); None: not known
    function_bearer: FunctionBearer | None = None
    _docker_image: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _manifest_rows: dict[object, int] | None = field(default=None, init=False, repr=False, compare=False)
    _heads: dict[object, Head] | None = field(default=None, init=False, repr=False, compare=False)
    project: ProjectReads | None = field(default=None, repr=False, compare=False)  # shares derivations
    # the frames above that are copies of ``project``'s reads, by the read's key, as collected (see derive)
    shared: dict[tuple[Any, ...], pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    def derive(self, frame: pd.DataFrame, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """``compute()``, a pure function of ``frame`` and ``key``; made once per run (ProjectReads.derive)
        when ``frame`` is the very copy of a project-wide read this evidence was collected with. Any other
        frame, a filtered one say, is computed afresh: its attrs, which filtering keeps, do not count."""
        return derive_shared(self.project, self.shared, frame, key, compute)

    def secret(self, name: str) -> dict[str, object] | None:
        """The project secret ``name``'s first row (``digest``, ``updated_at``), or None when unset.
        The secrets are a project-wide read: indexed once per run (:meth:`derive`)."""
        return secret_row(self.secrets, self.derive, name)

    @property
    def gaps(self) -> list[Gap]:
        """What the evidence could not show: every frame's gaps, its early stops, and failed sources."""
        out = list(self.extra_gaps)
        for df in self.frames().values():
            out += [Gap.from_json(g) for g in df.attrs.get("gaps") or []]
            if not df.attrs.get("gaps") and not df.attrs.get("complete", True):
                out.append(Gap(str(df.attrs.get("source") or df.attrs.get("frame")), str(df.attrs.get("note"))))
        return list(dict.fromkeys(out))

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every source's frame, in the sources table's order."""
        return dict(self.by_source)

    # Typed accessors of the frames the detectors read by name.
    @property
    def machines(self) -> pd.DataFrame:
        return self.by_source["machines"]

    @property
    def machine_events(self) -> pd.DataFrame:
        return self.by_source["machine_events"]

    @property
    def releases(self) -> pd.DataFrame:
        return self.by_source["releases"]

    @property
    def manifests(self) -> pd.DataFrame:
        return self.by_source["manifests"]

    @property
    def fly_logs(self) -> pd.DataFrame:
        return self.by_source["fly_logs"]

    @property
    def machine_rows(self) -> pd.DataFrame:
        return self.by_source["machine_rows"]

    @property
    def secrets(self) -> pd.DataFrame:
        return self.by_source["secrets"]

    @property
    def functions(self) -> pd.DataFrame:
        return self.by_source["functions"]

    @property
    def function_logs(self) -> pd.DataFrame:
        return self.by_source["function_logs"]

    def current_release(self) -> pd.Series | None:
        current = self.releases[self.releases["current"].fillna(False).astype(bool)]
        return None if current.empty else current.iloc[0]

    def current_said(self, *, short: bool = False) -> str:
        """Where the current release came from: Fly's word, or the inference (frames.fetch_releases)."""
        attrs = self.releases.attrs
        return facts.current_said(
            str(attrs.get("current_from", facts.CURRENT_INFERRED)), str(attrs.get("current_note", "")), short=short
        )

    def manifest(self, ref: str) -> pd.Series | None:
        """The registry's answer for ``ref`` (the first row naming it), found through an index built once."""
        if self._manifest_rows is None:
            self._manifest_rows = {}
            for n, r in enumerate(self.manifests["ref"].tolist()):
                self._manifest_rows.setdefault(r, n)
        at = self._manifest_rows.get(ref)
        return None if at is None else self.manifests.iloc[at]

    @functools.cached_property
    def identity(self) -> ImageIdentity:
        """One image, two digests: each index the registry answered stands for its platform child."""
        pairs = zip(self.manifests["digest"].tolist(), self.manifests.get("platform_digest", pd.Series()).tolist())
        return ImageIdentity({d: c for d, c in pairs if isinstance(d, str) and isinstance(c, str)})

    def head(self, ref: str | None) -> Head:
        """(exists, digest) of an image reference as the registry answered; (None, None) if not checked.
        Read off the manifests' columns once (a row as a Series costs more than the detectors' asking)."""
        if self._heads is None:
            m = self.manifests
            self._heads = {}
            for r, exists, digest in zip(m["ref"].tolist(), m["exists"].tolist(), m["digest"].tolist()):
                unchecked = frames.is_na(exists)  # a registry that did not answer: neither yes nor no
                said = (None, None) if unchecked else (bool(exists), None if frames.is_na(digest) else str(digest))
                self._heads.setdefault(r, said)
        return self._heads.get(ref, (None, None)) if ref else (None, None)

    def docker_image(self) -> dict[str, Any]:
        """What the contract's image secret points at, as far as digests tell (computed once).

        ``{"set", "digest", "updated_at", "ref"}``: ``set`` None when the secrets could not be read; ``ref`` is the
        candidate whose SHA-256
        equals the digest, or None when unset or when nothing matches; ``tried`` counts
        the candidates hashed.
        """
        if self._docker_image is None:
            row = self.secret(self.contract.image_secret) if self.contract.image_secret else None
            if not self.secrets.attrs.get("complete", True) and row is None:  # unseen (self-hosted): not unset
                self._docker_image = {"set": None, "digest": None, "updated_at": None, "ref": None, "tried": 0}
            elif row is None:
                self._docker_image = {"set": False, "digest": None, "updated_at": None, "ref": None, "tried": 0}
            else:
                digest = None if frames.is_na(row["digest"]) else str(row["digest"])
                logged = function_log_refs(self.function_logs, self.derive) + refs_in(self.fly_logs["message"])
                refs = candidate_refs(self.app, self.releases, self.machines, self.machine_rows, logged)
                refs += [r for r in [self.contract.fallback_ref(self.app)] if r and r not in refs]
                self._docker_image = {
                    "set": True,
                    "digest": digest,
                    "updated_at": row["updated_at"],
                    "ref": match_secret(digest, refs, self.manifests),
                    "tried": len(refs),
                }
        return self._docker_image


def parse_window(
    now: pd.Timestamp, since: Any = None, until: Any = None, tz: str = "UTC"
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The investigation window: ``until`` defaults to the target's now, ``since`` to 24 h before.

    Strings go through :func:`vyxops.core.checks.check_time_input` (RFC 3339, the report's format, a
    zone-less time read in ``tz``, or a duration); timestamps are taken as they are. A duration
    counts back from the target's now for ``until``, and from ``until`` for ``since``.
    """
    end = _time_arg(until, "--until", now, tz) or now
    start = _time_arg(since, "--since", end, tz) or end - DEFAULT_LOOKBACK
    if start >= end:
        raise InputError("--since/--until", f"since ({iso(start)}) must be before until ({iso(end)})")
    return start, end


def window_note(since: Any = None, until: Any = None, tz: str = "UTC") -> str:
    """How the report says the window's text was read: durations and zone-less times ("" when each named its zone).

    E.g. ``--since 2025-10-02 19:00 was given without a zone: read in --tz Europe/Paris``.
    """
    since_anchor = "--until" if isinstance(until, str) and until.strip() else "the target's now"
    notes = []
    for name, value, anchor in (("--since", since, since_anchor), ("--until", until, "the target's now")):
        given = check_time_input(value, name, tz) if isinstance(value, str) else None
        notes += [given.note(name, anchor)] if given is not None and given.note(name, anchor) else []
    return "; ".join(notes)


def _time_arg(value: Any, name: str, anchor: pd.Timestamp, tz: str) -> pd.Timestamp | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        given = check_time_input(value, name, tz)
        ms = None if given is None else given.at(int(anchor.value // 1_000_000))
        return None if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC")
    ts = to_utc(value, "ms")
    if ts is None or pd.isna(ts):
        raise InputError(name, f"{value!r} is not a time", allowed="; ".join(TIME_FORMS))
    return ts


def candidate_refs(
    app: str, releases: pd.DataFrame, machines: pd.DataFrame, rows: pd.DataFrame, logged: list[str]
) -> list[str]:
    """Every image reference the secret could point at: releases, :latest, configs, rows, and
    ``logged``, those named in logs (:func:`refs_in`)."""
    refs: list[str] = []
    refs += [r for r in releases["image"].dropna().tolist()]
    refs.append(latest_ref(app))
    refs += machines["image"].dropna().tolist()
    refs += machine_pins(machines)
    refs += rows["image"].dropna().tolist()
    return list(dict.fromkeys(refs + logged))


def machine_pins(machines: pd.DataFrame) -> list[str]:
    """Each machine's image pinned to the digest it records (``repo@sha256:…``, as `fly machine status` shows it):
    a secret may name an image that way (PLATFORM.md "Image identity"), and for an image index that digest is
    its platform child's, not the one a HEAD of the tag answers."""
    if not {"image", "image_repository", "image_digest"} <= set(machines.columns):
        return []
    out = []
    for image, repo, digest in zip(*(machines[c].tolist() for c in ("image", "image_repository", "image_digest"))):
        if isinstance(repo, str) and isinstance(digest, str) and repo and digest:
            registry = parse_image_ref(image).registry if isinstance(image, str) and image else FLY_REGISTRY
            out.append(f"{registry}/{repo}@{digest}")
    return list(dict.fromkeys(out))


def latest_ref(app: str) -> str:
    """The app's ``:latest`` (what the seed team's function falls back to when its image secret is unset)."""
    return f"{FLY_REGISTRY}/{app}:latest"


class ProjectReads:
    """The reads every app of a project shares, made once per run however many apps ask.

    Functions, secrets, function logs and the org's app list do not depend on the
    app, and the Management API allows 120 requests a minute per endpoint: an audit
    of fifty apps reading them once per app would be refused half-way. The same holds
    for the registry: an image reference is asked about once per run (``manifest``),
    not once per app that mentions it. An audit passes one of these to every app's
    evidence; a single investigation makes its own. Apps of one audit ask from several
    threads at once: each read is made by the first to ask, the others wait for it.
    Frames are handed out as shallow copies: under pandas' copy-on-write a change made to one (a column set, a
    value written) copies what it changes, so no app sees another's, and the rows are held once, not once per app.
    """

    def __init__(self, session: Session, apps: list[str] | None = None) -> None:
        self.session = session
        self.apps = list(apps or [])  # the apps of this run, besides the org's (see other_apps)
        self.asked_at: pd.Timestamp = session.now()  # the run's clock, read once: what the APIs still keep
        self._frames: dict[tuple[Any, ...], pd.DataFrame] = {}
        self._answers: dict[str, dict[str, Any]] = {}
        self._kept: dict[tuple[Any, ...], Any] = {}  # answers that are not frames (machine lists, documents)
        self._samples: dict[str, list[dict[str, Any]]] = {}  # tables read whole (by discovery)
        self._derived: dict[tuple[Any, ...], object] = {}
        self._unreachable: dict[tuple[Any, ...], TransportError] = {}  # see _unreachable_once
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[Any, ...], threading.Lock] = {}

    def _single(self, key: tuple[Any, ...]) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _once(self, key: tuple[Any, ...], fetch: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        return self._read(key, fetch).copy(deep=False)

    def _answer(self, key: tuple[Any, ...], fetch: Callable[[], T]) -> T:
        """The run's one answer for ``key`` (not a frame: a machine list, a document), made by the first to ask."""
        with self._single(key):
            if key not in self._kept:
                self._kept[key] = self._unreachable_once(key, fetch)
        return cast(T, self._kept[key])

    def _read(self, key: tuple[Any, ...], fetch: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The run's one read of ``key`` itself, not a copy: for what is derived from it here."""
        with self._single(key):
            if key not in self._frames:
                self._frames[key] = self._unreachable_once(key, fetch)
        return self._frames[key]

    def _unreachable_once(self, key: tuple[Any, ...], fetch: Callable[[], T]) -> T:
        """``fetch()``; when the platform did not answer it (a TransportError: every attempt timed out or could not
        connect), the next caller in this run gets the same error at once rather than waiting out every attempt
        again (a read made ahead, then by the evidence: a hang cost twice the retries' time, issue 19's harness).
        Other failures are not kept: a rate limit or a 5xx may pass by the time the evidence asks."""
        if key in self._unreachable:
            raise self._unreachable[key]
        try:
            return fetch()
        except TransportError as exc:
            self._unreachable[key] = exc
            raise

    def derive(self, read: tuple[Any, ...], key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """``compute()``, a pure function of the run's read ``read`` and of ``key``, made once per run.

        The apps of an audit each hold a copy of the same project-wide read (the function
        logs, say); what they all derive from it alike is derived by the first to ask. The
        caller names the read: a frame cannot say which read it is (Evidence.derive).
        """
        memo = ("derived", read, *key)
        with self._single(memo):
            if memo not in self._derived:
                self._derived[memo] = compute()
        return cast(T, self._derived[memo])

    def prefetch(self, start: pd.Timestamp, end: pd.Timestamp) -> None:
        """Read ahead, side by side, the project-wide sources every app of a run will ask for over
        the window [start, end]. A read that fails here is not kept: each app makes it again, and
        reports what it gets."""
        reads = {"function_logs": lambda: self.function_log_rows(start, end), "secrets": self.secrets,
                 "retention": lambda: self.log_retention(start, end)}  # fmt: skip
        fanout.gather({name: quietly(read) for name, read in (reads | {"apps": self.org_apps}).items()})

    def functions(self) -> pd.DataFrame:
        return self._once(("functions",), lambda: frames.fetch_functions(self.session))

    def secrets(self) -> pd.DataFrame:
        return self._once(("secrets",), lambda: frames.fetch_secrets(self.session))

    def org_apps(self) -> list[str] | None:
        """The org's app names, or None when the token may not list them (an app-scoped token)."""
        apps = self._read(("apps",), self._fetch_apps)
        if apps.attrs.get("denied"):
            return None
        return list(self.derive(("apps",), ("names",), lambda: apps["app"].dropna().astype(str).tolist()))

    def _fetch_apps(self) -> pd.DataFrame:
        try:
            return frames.fetch_apps(self.session)
        except UnexpectedAnswer:
            raise  # an answer, of the wrong shape: not a token that may not list (the rows' owners hang on it)
        except (AuthError, ApiError):
            denied = frames.empty_frame("apps", note="could not list the org's apps")
            denied.attrs["denied"] = True
            return denied

    def other_apps(self, app: str) -> set[str]:
        """Every app known to this run but ``app``: its image repositories are those apps' business."""
        return (set(self.org_apps() or []) | set(self.apps)) - {app}

    def function_logs(self, start: pd.Timestamp, end: pd.Timestamp, function: str | None = None) -> pd.DataFrame:
        """The project's function logs over [start, end]; with ``function``, that function's only (a read of
        its own, derived once from the whole: the provisioning function is what an investigation reads), with the
        plan's retention gaps (:meth:`log_retention`)."""
        return self._once(
            function_logs_read(start, end, function),
            lambda: frames.with_retention(self.function_log_rows(start, end, function), self.log_retention(start, end)),
        )

    def function_log_rows(self, start: pd.Timestamp, end: pd.Timestamp, function: str | None = None) -> pd.DataFrame:
        """:meth:`function_logs` without the plan's retention: the rows do not wait for the plan's two reads."""
        key = ("function_log_rows", start, end)

        def whole() -> pd.DataFrame:
            return frames.fetch_function_logs(self.session, start, end, functions=self.functions, retention=False)

        if function is None:
            return self._once(key, whole)
        rows = self._read(key, whole)
        return self._once((*key, function), lambda: _of_function(rows, function))

    def log_retention(self, start: pd.Timestamp, end: pd.Timestamp) -> list[Gap]:
        """The part of [start, end] older than the plan keeps function logs, as gaps (read once per run)."""
        return list(
            self._answer(("log_retention", start, end), lambda: frames.retention_gaps(self.session, start, end))
        )

    def listed(self, app: str) -> list[dict[str, Any]]:
        """``app``'s machines as the Machines API lists them (destroyed ones too), read once per run: discovery
        and the app's evidence both read them."""
        return self._answer(("listed", app), lambda: self.session.fly.list_machines(app, include_deleted=True))

    def done_with(self, app: str) -> None:
        """Let go of ``app``'s machine list as the API answered it, once its evidence holds its frames: an audit
        keeps every app's investigation until its report, and the raw answers would be held beside the frames
        made from them. Asked again, the list is read again."""
        with self._lock:
            self._kept.pop(("listed", app), None)

    def openapi(self) -> dict[str, Any]:
        """PostgREST's description of the project's tables, read once per run (discovery reads it)."""
        return self._answer(("openapi",), self.session.supabase.openapi)

    def newest_rows(self, table: str, order: str, limit: int) -> list[dict[str, Any]]:
        """``table``'s newest ``limit`` rows (by ``order``), read once per run; a table with fewer was read whole,
        and its rows are kept for the apps' evidence (:meth:`table_rows`)."""

        def read() -> list[dict[str, Any]]:
            rows = self.session.supabase.newest_rows(table, order, limit)
            if len(rows) < limit:
                self.keep_table(table, rows)
            return rows

        return self._answer(("newest_rows", table), read)

    def keep_table(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Keep ``table``'s rows, read whole (all its rows, every column), for the apps' evidence to read."""
        with self._lock:
            self._samples[table] = rows

    def table_rows(self, table: str) -> list[dict[str, Any]] | None:
        """``table``'s rows when this run read them whole already, else None (read them with the contract)."""
        with self._lock:
            return self._samples.get(table)

    def fly_logs(self, app: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """``app``'s Fly logs over [start, end], read once per run (they may be read ahead, while discovery runs)."""
        return self._once(
            ("fly_logs", app, start, end), lambda: _fly_logs(self.session, app, start, end, self.asked_at)
        )

    def read_ahead(self, app: str, start: pd.Timestamp, end: pd.Timestamp) -> None:
        """Read what ``app``'s evidence will ask for and no contract decides (its machines, releases, Fly logs,
        the plan's log retention, and the registry's answers for the images its releases and machines name)
        while the contract is being resolved, each as soon as what it needs is in; a read that fails is left for
        the evidence to make again."""
        reads: dict[str, fanout.Node] = {
            "listed": ((), lambda _: self.listed(app)),
            "releases": ((), lambda _: self.releases(app)),
            "fly_logs": ((), lambda _: self.fly_logs(app, start, end)),
            "retention": ((), lambda _: self.log_retention(start, end)),
            "registry": (("listed", "releases"), lambda _: self.ask_registry(ahead_refs(app, self, self.listed(app)))),
        }
        fanout.run_graph(reads)

    def ask_registry(self, refs: list[str]) -> None:
        """Ask the registry about ``refs`` ahead (:meth:`manifest` keeps the answers), side by side; a reference
        the grammar refuses, or an error, is left for the manifests read to meet again."""
        wanted = [r for r in dict.fromkeys(refs) if reference_problem(r) is None]
        fly = [r for r in wanted if parse_image_ref(r).registry == FLY_REGISTRY]
        fanout.map_ordered(lambda ref: quietly(functools.partial(self.manifest, ref))(), fly)

    def releases(self, app: str) -> pd.DataFrame:
        """``app``'s releases, read once per run (discovery and the app's evidence both read them)."""
        return self._once(("releases", app), lambda: frames.fetch_releases(self.session, app))

    def manifest(self, ref: str) -> dict[str, Any]:
        """The registry's answer for ``ref``, asked once per run (see :func:`vyxops.fetch.frames.head_answer`)."""
        with self._single(("manifest", ref)):
            if ref not in self._answers:
                self._answers[ref] = frames.head_answer(self.session, ref)
        return dict(self._answers[ref])


def ahead_refs(app: str, project: ProjectReads, listed: list[dict[str, Any]]) -> list[str]:
    """The image references every investigation of ``app`` asks the registry about whatever its contract says
    (:func:`vyxops.analysis.sources.refs_to_check`): its releases' images, ``:latest`` and its listed machines'
    images."""
    images = listed_images(app, listed)
    pins = set(machine_pins(images))
    own = candidate_refs(app, project.releases(app), images, frames.empty_frame("machine_rows"), [])
    return [ref for ref in own if ref not in pins]


def listed_images(app: str, listed: list[dict[str, Any]]) -> pd.DataFrame:
    """The listed machines' images, read as the machines frame reads them (config, then image_ref)."""
    return pd.DataFrame(
        frames.machine_records(app, listed)[0], columns=["image", "image_repository", "image_digest"], dtype=object
    )


def derive_shared(
    project: ProjectReads | None,
    shared: dict[tuple[Any, ...], pd.DataFrame],
    frame: pd.DataFrame,
    key: tuple[Any, ...],
    compute: Callable[[], T],
) -> T:
    """``compute()``, made once per run when ``frame`` is one of the ``shared`` copies of ``project``'s reads
    (by identity: a filtered frame keeps the attrs of the frame it came from, so attrs cannot say)."""
    read = next((name for name, held in shared.items() if held is frame), None)
    return compute() if project is None or read is None else project.derive(read, key, compute)


def function_logs_read(start: pd.Timestamp, end: pd.Timestamp, function: str | None = None) -> tuple[Any, ...]:
    """The key of the project's function logs over [start, end] (of ``function`` only, when given) in ProjectReads."""
    return ("function_logs", start, end) if function is None else ("function_logs", start, end, function)


def quietly(read: Callable[[], T], none: T | None = None) -> Callable[[], T | None]:
    """``read`` made ahead, or for what can do without it: an error gives ``none``, and whoever needs the read
    makes it again and reports what failed (a read that failed is never kept). Any error class: one app's answer
    that vyxops cannot read must not end an audit's read-ahead for every app (issue 19); the app's own
    investigation meets it again and it becomes that app's error row."""

    def call() -> T | None:
        try:
            return read()
        except Exception:  # noqa: BLE001 - see above: made again, and reported, by whoever needs it
            return none

    return call


def _of_function(logs: pd.DataFrame, function: str) -> pd.DataFrame:
    """``logs``' rows of function ``function`` (by slug), with the whole read's attrs (gaps, completeness)."""
    return _keep_attrs(logs, logs[logs["function"] == function].reset_index(drop=True))


def _fly_logs(
    session: Session, app: str, start: pd.Timestamp, end: pd.Timestamp, asked_at: pd.Timestamp
) -> pd.DataFrame:
    logs = frames.fetch_fly_logs(session, app, since=start, until=end, asked_at=asked_at)
    return _keep_attrs(logs, logs[logs["time"] <= end].reset_index(drop=True))


def function_log_refs(logs: pd.DataFrame, derive: Callable[..., list[str]]) -> list[str]:
    """:func:`refs_in` the project's function logs, read once per run through ``derive``
    (:meth:`ProjectReads.derive`, or an investigation's own :meth:`Evidence.derive`)."""
    return derive(logs, ("refs",), lambda: refs_in(logs["message"]))


def refs_in(texts: pd.Series | list[str]) -> list[str]:
    """The image references named in ``texts`` (the project's function log lines), each once, in order."""
    return list(dict.fromkeys(ref for text in texts if isinstance(text, str) for ref in IMAGE_IN_TEXT.findall(text)))


def secrets_by_name(secrets: pd.DataFrame) -> dict[str, dict[str, object]]:
    """Each secret's first row by name: its ``digest`` and ``updated_at`` as the frame holds them."""
    out: dict[str, dict[str, object]] = {}
    for name, digest, updated in zip(*(secrets[c].tolist() for c in ("name", "digest", "updated_at"))):
        out.setdefault(name, {"digest": digest, "updated_at": updated})
    return out


def secret_row(
    secrets: pd.DataFrame, derive: Callable[..., dict[str, dict[str, object]]], name: str
) -> dict[str, object] | None:
    """Secret ``name``'s first row, through an index of the project's secrets made once per run by
    ``derive`` (:meth:`ProjectReads.derive`, or an investigation's own :meth:`Evidence.derive`)."""
    return derive(secrets, ("by_name",), lambda: secrets_by_name(secrets)).get(name)


def _secret_digest(secrets: pd.DataFrame, derive: Callable[..., dict[str, dict[str, object]]], name: str) -> str | None:
    row = secret_row(secrets, derive, name) if name else None
    return None if row is None or frames.is_na(row["digest"]) else str(row["digest"])


def _keep_attrs(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    after.attrs.update(before.attrs)
    return after


def check_machine_in_window(
    machine_id: str | None,
    app: str,
    machines: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    rows: pd.DataFrame | None = None,
) -> None:
    """``--machine`` must name one of the app's machines in the window (SPEC.md: exit 2): one Fly showed
    (listed or read by id) or one the app's rows name (:func:`vyxops.core.checks.check_machine_of_app`)."""
    if not machine_id:
        return
    check_machine_of_app(
        machine_id,
        app,
        fly=_first_ms(machines["machine_id"].tolist(), machines["created_at"].tolist()),
        rows=_first_ms(*((rows["machine_id"].tolist(), rows["created_at"].tolist()) if rows is not None else ([], []))),
        end_ms=to_ms(end),
        hint=f"list them with `fly machines list -a {app}` "
        "(destroyed ones: the Machines API with include_deleted=true)",
    )


def _first_ms(ids: list[object], times: list[object]) -> dict[str, int | None]:
    """Each machine id's earliest time in Unix ms (None when none of its times is known)."""
    out: dict[str, int | None] = {}
    for mid, t in zip(ids, times):
        if not isinstance(mid, str) or not mid:
            continue
        ms = None if t is None or frames.is_na(t) else to_ms(t)
        before = out.get(mid)
        out[mid] = ms if before is None else before if ms is None else min(before, ms)
    return out


def match_secret(digest: str | None, refs: list[str], manifests: pd.DataFrame | None = None) -> str | None:
    """The image reference whose SHA-256 equals the secret's digest, or None.

    Digest-pinned forms (``repo@sha256:…``) of every known manifest are tried too.
    """
    if not digest:
        return None
    tried = list(refs)
    if manifests is not None and not manifests.empty:
        for _, m in manifests[manifests["exists"].fillna(False).astype(bool)].iterrows():
            tried.append(f"{m['registry']}/{m['repository']}@{m['digest']}")
            if "platform_digest" in m and isinstance(m["platform_digest"], str):  # an index: its platform child too
                tried.append(f"{m['registry']}/{m['repository']}@{m['platform_digest']}")
    for ref in dict.fromkeys(tried):
        if secret_digest(ref) == digest:
            return ref
    return None

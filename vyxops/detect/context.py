"""What every detector reads, computed once per investigation: the ledger, refusals, provisioning, release."""

from __future__ import annotations

import bisect
import collections
import difflib
import functools
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vyxops import facts
from vyxops.coverage import Gap
from vyxops.detect.ledger import build_ledger
from vyxops.detect.model import Thresholds
from vyxops.evidence import Evidence, latest_ref
from vyxops.images import parse_image_ref, secret_digest


@dataclass(frozen=True)
class Provisioning:
    """The image provisioning uses now: DOCKER_IMAGE's match, or ``:latest`` when the secret is unset."""

    secret_set: bool
    secret_digest: str | None
    secret_updated_at: pd.Timestamp | None
    ref: str | None  # None: the secret's digest matches no known reference
    exists: bool | None  # what the registry said of ``ref`` (None: not checked or could not check)
    digest: str | None
    check: str | None  # how the registry answered
    tried: int  # candidate references hashed

    @property
    def uses_latest(self) -> bool:
        return self.ref is not None and parse_image_ref(self.ref).tag == "latest"


@dataclass(frozen=True)
class Release:
    """The release whose image machines run now (the newest complete release that names one)."""

    version: int
    image: str
    created_at: pd.Timestamp
    exists: bool | None
    digest: str | None

    def same_image(self, ref: str | None, digest: str | None) -> bool:
        """Whether ``ref`` (or its ``digest``) is this release's image."""
        return ref == self.image or (digest is not None and self.digest is not None and digest == self.digest)


@dataclass
class Context:
    """One investigation's evidence and everything derived from it that detectors share."""

    e: Evidence
    t: Thresholds
    as_of: pd.Timestamp  # the window's end, or now when that is earlier
    ledger: pd.DataFrame  # one row per machine (vyxops.detect.ledger)
    refusals: pd.DataFrame  # one row per create the Machines API refused for this app's provisioning
    provisioning: Provisioning
    release: Release | None
    gaps: list[Gap] = field(default_factory=list)  # what detectors found they could not see
    # Derived once and shared by the detectors that ask (positions into the ledger, rows, pairs).
    _rows_by_id: dict[object, int] | None = field(default=None, repr=False)
    _pairs: frozenset[tuple[str, str]] | None = field(default=None, repr=False)
    _scope_rows: list[Any] | None = field(default=None, repr=False)
    _scope_at: list[int] | None = field(default=None, repr=False)
    _successes_at: list[int] | None = field(default=None, repr=False)

    @property
    def app(self) -> str:
        return self.e.app

    @property
    def latest_ref(self) -> str:
        return latest_ref(self.e.app)

    def row(self, row_id: object) -> pd.Series | None:
        """The machine_rows row with id ``row_id`` (indexed once)."""
        if row_id is None or (isinstance(row_id, float) and pd.isna(row_id)) or row_id is pd.NA:
            return None
        if self._rows_by_id is None:
            rows = self.e.machine_rows
            self._rows_by_id = {rid: i for i, rid in enumerate(rows["id"].tolist())}
        i = self._rows_by_id.get(row_id)
        return None if i is None else self.e.machine_rows.iloc[i]

    def check_of(self, ref: str | None) -> str | None:
        m = self.e.manifest(ref) if ref else None
        return None if m is None or pd.isna(m["check"]) else str(m["check"])

    def refused(self, ref: str | None) -> pd.DataFrame:
        """This app's refusals that name ``ref``."""
        return self.refusals[self.refusals["image"] == ref] if ref else self.refusals.iloc[0:0]

    def missing(self, ref: str | None) -> bool | None:
        """Whether ``ref`` does not resolve: the registry's 404, else the Machines API's own refusals
        naming it (MANIFEST_UNKNOWN) when the registry could not be asked; None when nothing says."""
        if ref is None:
            return None
        exists, _ = self.e.head(ref)
        if exists is not None:
            return not exists
        said = self.refused(ref)["message"].fillna("")
        return True if said.str.contains("MANIFEST_UNKNOWN|NAME_UNKNOWN", regex=True).any() else None

    def _scope(self) -> list[int]:
        """Positions in the ledger of :meth:`in_scope`'s machines, found once in plain Python."""
        if self._scope_at is None:
            since, until = self.e.since, self.e.until
            open_statuses = (*facts.TRANSITIONAL_ROW_STATUSES, facts.RUNNING_ROW_STATUS)
            created, status = self.ledger["created_at"].tolist(), self.ledger["row_status"].tolist()
            self._scope_at = [
                i
                for i, (at, row) in enumerate(zip(created, status))
                if (pd.notna(at) and since <= at <= until) or row in open_statuses
            ]
        return self._scope_at

    def in_scope(self) -> pd.DataFrame:
        """The ledger's machines an investigation speaks of: created in the window, or still named
        by a row that says the session is on (an old failure outside the window is not reported)."""
        return self.ledger.iloc[self._scope()]

    def outcomes_in_scope(self) -> frozenset[tuple[str, str]]:
        """The (outcome, origin) pairs among :meth:`in_scope`'s machines: a detector whose pair is
        missing has nothing to look at, and need not filter the ledger to find that out."""
        if self._pairs is None:
            outcome, origin = self.ledger["outcome"].tolist(), self.ledger["origin"].tolist()
            self._pairs = frozenset((outcome[i], origin[i]) for i in self._scope())
        return self._pairs

    def scope_rows(self, outcome: str, origins: tuple[str, ...]) -> list[Any]:
        """:meth:`in_scope`'s machines whose outcome is ``outcome`` and origin one of ``origins``, as
        rows (the values ``itertuples`` gives) with their ``resolved_at`` (:meth:`resolved_at`). The
        rows are made once per investigation, and only when some detector's pair is there at all:
        a pandas filter per detector cost more than the detectors' own work."""
        if not any((outcome, origin) in self.outcomes_in_scope() for origin in origins):
            return []  # the usual case: none of these
        if self._scope_rows is None:
            led, at = self.ledger, self._scope()
            columns = [list(led[c]) for c in led.columns]  # a Series iterates as itertuples reads it
            index = led.index.tolist()
            cells = {c: [values[i] for i in at] for c, values in zip(led.columns, columns)}
            resolved = self.resolved_at(cells["outcome_at"], cells["image"], cells["image_digest"])
            row = _row_type(tuple(led.columns))
            self._scope_rows = [
                row(index[i], *(values[i] for values in columns), when) for i, when in zip(at, resolved)
            ]
        return [m for m in self._scope_rows if m.outcome == outcome and m.origin in origins]

    def _success_at(self) -> list[int]:
        """Positions in the ledger of :meth:`successes`, oldest start first (ties in ledger order)."""
        if self._successes_at is None:
            led = self.ledger
            rows, origins, starts, outcomes = (led[c].tolist() for c in ("row_status", "origin", "start_at", "outcome"))
            ok_rows = (facts.RUNNING_ROW_STATUS, *facts.ENDED_ROW_STATUSES)
            worked = ("running", "ended", "stopped_on_request")
            keep = [
                i
                for i, (row, origin, start, outcome) in enumerate(zip(rows, origins, starts, outcomes))
                if row in ok_rows and origin in ("user", "canary") and pd.notna(start) and outcome in worked
            ]
            self._successes_at = sorted(keep, key=lambda i: starts[i])
        return self._successes_at

    def successes(self) -> pd.DataFrame:
        """Provisioned machines that worked (started, and their row said running or ended), oldest first."""
        return self.ledger.iloc[self._success_at()]

    def success_starts(self) -> list[pd.Timestamp]:
        """When each of :meth:`successes` started, oldest first."""
        starts = self.ledger["start_at"].tolist()
        return [starts[i] for i in self._success_at()]

    def resolved_at(self, at: list[object], image: list[object], digest: list[object]) -> list[object]:
        """For failures at ``at`` on ``image``/``digest``: the first later provisioning that worked on
        another image (NaT when none). Linear after one sort: successes between a failure and the
        first success on another image all share one image, so one "next different" jump finds it.
        A failure at NaT compares false with every time, so it finds none."""
        ok = self._success_at()
        if not ok or not at:
            return [pd.NaT] * len(at)
        times = self.success_starts()
        digests, images = self.ledger["image_digest"].tolist(), self.ledger["image"].tolist()
        ident = [_image_identity(digests[i], images[i]) for i in ok]
        nxt = [len(ident)] * len(ident)  # index of the next success on another image
        for k in range(len(ident) - 2, -1, -1):
            nxt[k] = k + 1 if ident[k + 1] != ident[k] else nxt[k + 1]
        out: list[object] = []
        for when, me in zip(at, map(_image_identity, digest, image)):
            i = bisect.bisect_right(times, when)
            j = len(ident) if i >= len(ident) else i if ident[i] != me else nxt[i]
            out.append(times[j] if j < len(ident) else pd.NaT)
        return out

    def no_longer_used(self, image: str | None, digest: str | None) -> bool:
        """Whether provisioning now uses another image than ``image`` (known for sure)."""
        p = self.provisioning
        if p.ref is None or image is None:
            return False
        if digest is not None and p.digest is not None:
            return digest != p.digest  # a moved tag (:latest) is another image under the same name
        return p.ref != image


def _image_identity(digest: object, image: object) -> object:
    """What tells two images apart: the digest, else the reference, else "" (nothing known)."""
    return digest if pd.notna(digest) else image if pd.notna(image) else ""


@functools.cache
def _row_type(columns: tuple[str, ...]) -> Any:
    """The row of :meth:`Context.scope_rows`: the ledger's columns (as ``itertuples`` names them), then resolved_at."""
    return collections.namedtuple("LedgerRow", ["Index", *columns, "resolved_at"], rename=True)


def build_context(e: Evidence, t: Thresholds) -> Context:
    """Everything the detectors share, each computed once."""
    as_of = min(e.now, e.until)
    ledger = build_ledger(
        e.machines, e.machine_events, e.machine_rows, as_of, present=e.until >= e.now, loop_exits=t.restart_loop_exits
    )
    return Context(e, t, as_of, ledger, _refusals(e, as_of), _provisioning(e), _release(e))


def _provisioning(e: Evidence) -> Provisioning:
    s = e.docker_image()
    ref = s["ref"] if s["set"] else latest_ref(e.app)
    exists, digest = e.head(ref)
    m = e.manifest(ref) if ref else None
    check = None if m is None or pd.isna(m["check"]) else str(m["check"])
    updated = s["updated_at"]
    return Provisioning(
        secret_set=bool(s["set"]),
        secret_digest=s["digest"],
        secret_updated_at=None if updated is None or pd.isna(updated) else updated,
        ref=ref,
        exists=exists,
        digest=digest,
        check=check,
        tried=int(s["tried"]),
    )


def _release(e: Evidence) -> Release | None:
    runs = e.releases[e.releases["runs_image"].fillna(False).astype(bool)]
    if runs.empty:
        return None
    r = runs.iloc[0]
    exists, digest = e.head(str(r["image"]))
    return Release(int(r["version"]), str(r["image"]), r["created_at"], exists, digest)


def _refusals(e: Evidence, as_of: pd.Timestamp) -> pd.DataFrame:
    """Creates the Machines API refused for this app's provisioning, read off the function's log lines.

    Every refusal for this app's provisioning counts, whatever repository its image
    names (SPEC.md): one naming this app's repository is this app's, one naming another
    app of the org is that app's, and one naming a repository no app owns (a typo) is
    this app's when the project's FLY_APP_NAME secret is this app (the function's default
    app) or the repository is a near miss of this app's name.
    """
    columns = ["time", "execution_id", "message", "image", "status_code"]
    refused = e.derive(e.function_logs, ("refusals", as_of), lambda: _project_refusals(e.function_logs, as_of))
    if not refused:
        return pd.DataFrame(columns=columns)
    default_app = _is_default_app(e)
    others = set(e.org_apps or ()) - {e.app}
    records = []
    for at, execution, message, image, code in refused:
        if image is not None and not _ours(image, e.app, default_app, others):
            continue
        if image is None and not default_app:
            continue
        records.append([at, execution, message, image, code])
    return pd.DataFrame(records, columns=columns)


def _project_refusals(function_logs: pd.DataFrame, as_of: pd.Timestamp) -> list[tuple[Any, ...]]:
    """Every refused create in the project's function logs up to ``as_of``, whichever app it was for:
    (time, execution, message, the image it names or its execution named, the execution's status)."""
    logs = function_logs[(function_logs["source"] == "function_logs") & (function_logs["time"] <= as_of)]
    hits = logs[logs["message"].fillna("").map(facts.is_refusal)]
    if hits.empty:
        return []
    by_exec = _images_by_execution(logs)
    edge = function_logs[function_logs["source"] == "function_edge_logs"]
    status = dict(zip(edge["execution_id"], edge["status_code"]))
    out = []
    for row in hits.itertuples(index=False):
        named = facts.images_in(row.message) or by_exec.get(row.execution_id, [])
        code = status.get(row.execution_id)
        image = named[0] if named else None
        out.append((row.time, row.execution_id, row.message, image, None if pd.isna(code) else int(code)))
    return out


def _images_by_execution(logs: pd.DataFrame) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for execution, message in zip(logs["execution_id"], logs["message"]):
        if isinstance(execution, str) and isinstance(message, str):
            out.setdefault(execution, []).extend(facts.images_in(message))
    return out


def _is_default_app(e: Evidence) -> bool:
    row = e.secret(facts.APP_SECRET)
    return row is not None and row["digest"] == secret_digest(e.app)


def _ours(image: str, app: str, default_app: bool, others: set[str]) -> bool:
    """Whether a refusal naming ``image`` is ``app``'s: its own repository, or one no other app of the
    org owns (a typo) when ``app`` is the function's default app or the name is a near miss of it."""
    repo = parse_image_ref(image).repository
    if repo == app:
        return True
    if repo in others:
        return False
    return default_app or difflib.SequenceMatcher(None, repo, app).ratio() >= 0.8

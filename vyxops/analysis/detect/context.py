"""What every detector reads, computed once per investigation: the ledger, refusals, provisioning, release."""

from __future__ import annotations

import bisect
import collections
import difflib
import functools
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vyxops.analysis.detect.invocations import Failed, answered_ok, project_failures
from vyxops.analysis.detect.ledger import ENDED_ROLES, OPEN_ROLES, build_ledger
from vyxops.analysis.detect.model import Thresholds
from vyxops.analysis.evidence import Evidence
from vyxops.core import facts
from vyxops.core.contract import RUNNING
from vyxops.core.coverage import Gap
from vyxops.core.images import ImageIdentity, parse_image_ref, secret_digest
from vyxops.fetch.frames import is_na


@dataclass(frozen=True)
class Provisioning:
    """The image provisioning uses now: the image secret's match, or the fallback when the secret is unset.

    ``ref`` is None when the secret's digest matches no known reference, and when the
    secret is unset and the contract has no fallback (the function cannot provision).
    """

    secret: str  # the contract's image secret ("" when the team has none)
    fallback: str | None  # the contract's fallback reference for this app (None: none)
    secret_set: bool
    secret_digest: str | None
    secret_updated_at: pd.Timestamp | None
    ref: str | None  # None: the secret's digest matches no known reference
    exists: bool | None  # what the registry said of ``ref`` (None: not checked or could not check)
    digest: str | None
    check: str | None  # how the registry answered
    tried: int  # candidate references hashed
    secret_seen: bool = True  # False: the secrets could not be read (self-hosted), so neither set nor unset is known

    @property
    def uses_latest(self) -> bool:
        """Whether provisioning uses the fallback reference (``:latest`` by default: LATEST_TAG_* speak for it)."""
        return self.ref is not None and self.ref == self.fallback

    @property
    def cannot_provision(self) -> bool:
        """The image secret is unset and there is no fallback: every invocation fails before any create."""
        return self.secret_seen and not self.secret_set and self.fallback is None and bool(self.secret)


@dataclass(frozen=True)
class Release:
    """The release whose image machines run now (the newest complete release that names one)."""

    version: int
    image: str
    created_at: pd.Timestamp
    exists: bool | None
    digest: str | None
    said: str = ""  # where "current" came from (Evidence.current_said)
    identity: ImageIdentity = field(default_factory=ImageIdentity, compare=False)  # the run's (Evidence.identity)

    def same_image(self, ref: str | None, digest: str | None) -> bool:
        """Whether ``ref`` (or its ``digest``: the index's or a platform child's) is this release's image."""
        return ref == self.image or self.identity.same(digest, self.digest)


@dataclass
class Context:
    """One investigation's evidence and everything derived from it that detectors share."""

    e: Evidence
    t: Thresholds
    as_of: pd.Timestamp  # the window's end, or now when that is earlier
    ledger: pd.DataFrame  # one row per machine (vyxops.analysis.detect.ledger)
    refusals: pd.DataFrame  # one row per create the Machines API refused for this app's provisioning
    failed_requests: pd.DataFrame  # the function's 4xx/5xx answers whose logs do not say what Fly answered
    answered_ok: list[pd.Timestamp]  # when the function answered 2xx, oldest first
    provisioning: Provisioning
    release: Release | None
    gaps: list[Gap] = field(default_factory=list)  # what detectors found they could not see
    tz: str = "UTC"  # the zone the findings' sentences tell times in (--tz); their RFC 3339 fields stay UTC
    # Derived once and shared by the detectors that ask (positions into the ledger, rows, pairs).
    _rows_by_id: dict[object, int] | None = field(default=None, repr=False)
    _pairs: frozenset[tuple[str, str]] | None = field(default=None, repr=False)
    _scope_rows: list[Any] | None = field(default=None, repr=False)
    _scope_at: list[int] | None = field(default=None, repr=False)
    _successes_at: list[int] | None = field(default=None, repr=False)
    _success_starts: list[pd.Timestamp] | None = field(default=None, repr=False)
    _success_regions: list[object] | None = field(default=None, repr=False)

    @property
    def app(self) -> str:
        return self.e.app

    @property
    def identity(self) -> ImageIdentity:
        """Which digests name one image (an index and its platform child): vyxops.core.images.ImageIdentity."""
        return self.e.identity

    @property
    def latest_ref(self) -> str | None:
        """The reference the function falls back to when its image secret is unset (the contract's)."""
        return self.provisioning.fallback

    def row(self, row_id: object) -> pd.Series | None:
        """The machine_rows row with id ``row_id`` (indexed once)."""
        if row_id is None or (isinstance(row_id, float) and pd.isna(row_id)) or row_id is pd.NA:
            return None
        if self._rows_by_id is None:
            rows = self.e.machine_rows
            self._rows_by_id = {rid: i for i, rid in enumerate(rows["id"].tolist())}
        i = self._rows_by_id.get(row_id)
        return None if i is None else self.e.machine_rows.iloc[i]

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
            created, role = self.ledger["created_at"].tolist(), self.ledger["row_role"].tolist()
            self._scope_at = [
                i
                for i, (at, row) in enumerate(zip(created, role))
                if (pd.notna(at) and since <= at <= until) or row in OPEN_ROLES
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
            rows, origins, starts, outcomes = (led[c].tolist() for c in ("row_role", "origin", "start_at", "outcome"))
            ok_rows = (RUNNING, *ENDED_ROLES)
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

    def success_regions(self) -> list[object]:
        """The region of each of :meth:`successes`, oldest first (made once: every refusal asks)."""
        if self._success_regions is None:
            regions = self.ledger["region"].tolist()
            self._success_regions = [regions[i] for i in self._success_at()]
        return self._success_regions

    def success_starts(self) -> list[pd.Timestamp]:
        """When each of :meth:`successes` started, oldest first (made once: every refusal asks)."""
        if self._success_starts is None:
            starts = self.ledger["start_at"].tolist()
            self._success_starts = [starts[i] for i in self._success_at()]
        return self._success_starts

    def resolved_at(self, at: list[pd.Timestamp], image: list[object], digest: list[object]) -> list[object]:
        """For failures at ``at`` on ``image``/``digest``: the first later provisioning that worked on
        another image (NaT when none). Linear after one sort: successes between a failure and the
        first success on another image all share one image, so one "next different" jump finds it.
        A failure at NaT compares false with every time, so it finds none."""
        ok = self._success_at()
        if not ok or not at:
            return [pd.NaT] * len(at)
        times = self.success_starts()
        digests, images = self.ledger["image_digest"].tolist(), self.ledger["image"].tolist()
        of = self.identity.of
        ident = [_image_identity(of(_opt(digests[i])), images[i]) for i in ok]
        nxt = [len(ident)] * len(ident)  # index of the next success on another image
        for k in range(len(ident) - 2, -1, -1):
            nxt[k] = k + 1 if ident[k + 1] != ident[k] else nxt[k + 1]
        out: list[object] = []
        for when, me in zip(at, (_image_identity(of(_opt(d)), i) for d, i in zip(digest, image))):
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
            # A moved tag (:latest) is another image under the same name; an index and its platform child are one.
            return not self.identity.same(digest, p.digest)
        return p.ref != image

    def releases_of(self, ref: str | None, digest: str | None) -> list[int]:
        """The versions (oldest first) of the releases that ran ``ref`` (by reference, or by digest through
        ImageIdentity): a rollback makes several. A ``failed`` release never ran its image (flyctl moves no machine
        when its release command fails), so it is not one."""
        out = [
            version
            for version, image, image_digest in self._ran_images
            if image == ref or (digest is not None and self.identity.same(digest, image_digest))
        ]
        return sorted(set(out))

    @functools.cached_property
    def _ran_images(self) -> list[tuple[int, str, str | None]]:
        """(version, image, its digest as the registry answered) of each release that ran its image, read once:
        :meth:`releases_of` is asked for every failed machine (a busy day has hundreds)."""
        rel = self.e.releases
        out = []
        for version, image, status in zip(rel["version"].tolist(), rel["image"].tolist(), rel["status"].tolist()):
            if isinstance(image, str) and status != facts.RELEASE_FAILED and not pd.isna(version):
                out.append((int(version), image, self.e.head(image)[1]))
        return out


def releases_said(versions: list[int], but: int | None = None) -> str:
    """ ", release v2's image" (or "the image of releases v2 and v4") for an image those releases ran; "" for none."""
    vs = [v for v in versions if v != but]
    if not vs:
        return ""
    if len(vs) == 1:
        return f", release v{vs[0]}'s image"
    return ", the image of releases " + ", ".join(f"v{v}" for v in vs[:-1]) + f" and v{vs[-1]}"


def _opt(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _image_identity(digest: object, image: object) -> object:
    """What tells two images apart: the digest (an index's platform child for an index), else the reference,
    else "" (nothing known)."""
    return digest if digest is not None and not is_na(digest) else image if not is_na(image) else ""


@functools.cache
def _row_type(columns: tuple[str, ...]) -> Any:
    """The row of :meth:`Context.scope_rows`: the ledger's columns (as ``itertuples`` names them), then resolved_at."""
    return collections.namedtuple("LedgerRow", ["Index", *columns, "resolved_at"], rename=True)


def build_context(e: Evidence, t: Thresholds, tz: str = "UTC") -> Context:
    """Everything the detectors share, each computed once; ``tz`` for the times their sentences tell."""
    as_of = min(e.now, e.until)
    ledger = build_ledger(
        e.machines, e.machine_events, e.machine_rows, as_of, present=e.until >= e.now, loop_exits=t.restart_loop_exits
    )
    refusals, failed = _failures(e, as_of)
    ok = e.derive(e.function_logs, ("answered_ok", as_of), lambda: answered_ok(e.function_logs, as_of))
    return Context(e, t, as_of, ledger, refusals, failed, ok, _provisioning(e), _release(e), tz=tz or "UTC")


def _provisioning(e: Evidence) -> Provisioning:
    s = e.docker_image()
    fallback = e.contract.fallback_ref(e.app)
    seen = s["set"] is not None
    ref = s["ref"] if s["set"] else (fallback if seen else None)  # unseen: which image is used is unknown
    exists, digest = e.head(ref)
    m = e.manifest(ref) if ref else None
    check = None if m is None or pd.isna(m["check"]) else str(m["check"])
    updated = s["updated_at"]
    return Provisioning(
        secret=e.contract.image_secret,
        fallback=fallback,
        secret_set=bool(s["set"]),
        secret_digest=s["digest"],
        secret_updated_at=None if updated is None or pd.isna(updated) else updated,
        ref=ref,
        exists=exists,
        digest=digest,
        check=check,
        tried=int(s["tried"]),
        secret_seen=seen,
    )


def _release(e: Evidence) -> Release | None:
    runs = e.releases["runs_image"].tolist()
    i = next((i for i, flag in enumerate(runs) if not is_na(flag) and flag), None)
    if i is None:
        return None
    version, image, created = (e.releases[c].iloc[i] for c in ("version", "image", "created_at"))
    exists, digest = e.head(str(image))
    return Release(int(version), str(image), created, exists, digest, e.current_said(), e.identity)


REFUSAL_COLUMNS = ["time", "execution_id", "message", "image", "status_code", "kind", "fly_status", "region"]
FAILED_COLUMNS = ["time", "execution_id", "message", "status_code"]


def _failures(e: Evidence, as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """This app's refused creates (what Fly answered is readable) and failed requests (it is not).

    Every refusal for this app's provisioning counts, whatever repository its image
    names (SPEC.md): one naming this app's repository is this app's, one naming another
    app of the org is that app's, and one naming a repository no app owns (a typo) is
    this app's when it is the function's default app (:func:`_is_default_app`) or the
    repository is a near miss of this app's name. A failure naming no image is the
    default app's.
    """
    failed: list[Failed] = e.derive(
        e.function_logs, ("failures", as_of), lambda: project_failures(e.function_logs, as_of)
    )
    default_app = _is_default_app(e) if failed else False
    others = set(e.org_apps or ()) - {e.app}
    refused, unread = [], []
    for f in failed:
        if f.image is not None and not _ours(f.image, e.app, default_app, others):
            continue
        if f.image is None and not default_app:
            continue
        if f.kind is None:
            unread.append([f.time, f.execution_id, f.message, f.status_code])
        else:
            refused.append([f.time, f.execution_id, f.message, f.image, f.status_code, f.kind, f.fly_status, f.region])
    return pd.DataFrame(refused, columns=REFUSAL_COLUMNS), pd.DataFrame(unread, columns=FAILED_COLUMNS)


def _is_default_app(e: Evidence) -> bool:
    """Whether ``e.app`` is the app the function provisions when a request names none: the org's only app,
    or the value of one of the project's secrets (the seed team's FLY_APP_NAME; any team's, by digest)."""
    if not (set(e.org_apps or ()) - {e.app}):
        return True
    digest = secret_digest(e.app)
    return digest in e.secrets["digest"].tolist()


def _ours(image: str, app: str, default_app: bool, others: set[str]) -> bool:
    """Whether a refusal naming ``image`` is ``app``'s: its own repository, or one no other app of the
    org owns (a typo) when ``app`` is the function's default app or the name is a near miss of it."""
    repo = parse_image_ref(image).repository
    if repo == app:
        return True
    if repo in others:
        return False
    return default_app or difflib.SequenceMatcher(None, repo, app).ratio() >= 0.8

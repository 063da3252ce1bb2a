"""Which release images served and which fail, read from the evidence (no platform call).

A machine *served* when it reached ``started`` and its DB row reached ``running``
(a row still ``running``, or a vyxops canary row closed as ``destroyed`` with no
error, which vyxops writes only after it saw ``running``), or when it ran
:data:`SERVED_AFTER` without exiting. A machine *failed* when it never started, or
exited sooner than that without anyone asking it to stop. An image *fails* when
machines on it failed and none served. Machines are matched to a release by digest
(provisioning may name ``:latest`` for the release's image), else by reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vyxops.analysis.evidence import Evidence
from vyxops.core.contract import RUNNING, STOPPED, TERMINAL
from vyxops.core.facts import CANARY_USER_PREFIX, INTERNAL_PROCESS_GROUPS, LAUNCH_FAILED_STATUSES, describe_exit
from vyxops.core.images import ImageIdentity
from vyxops.core.present import fmt_time
from vyxops.fetch.frames import is_na

SERVED_AFTER = pd.Timedelta(minutes=10)


#: How many machines' sentences a release keeps of each kind (served, failed): what a person reads.
SAID = 3


@dataclass
class ReleaseRecord:
    """One release image and what the machines on it did."""

    version: int
    image: str
    digest: str | None
    exists: bool | None  # whether the image still resolves (None: not checked)
    # One sentence of evidence per machine that served or failed, the first SAID of each: enough to show, and
    # to tell whether any served (a busy day's release has thousands of machines: judging them all is waste).
    served: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def fails(self) -> bool:
        return bool(self.failed) and not self.served


@dataclass
class ReleaseHealth:
    """Every release with an image, newest first, and the current one."""

    releases: list[ReleaseRecord]
    current: ReleaseRecord | None
    identity: ImageIdentity = field(default_factory=ImageIdentity)  # one image, two digests (Evidence.identity)

    def last_good(self) -> tuple[ReleaseRecord | None, list[str]]:
        """The newest earlier release whose machines served and whose image still resolves, and notes on
        the releases passed over."""
        notes: list[str] = []
        if self.current is None:
            return None, notes
        for r in self.releases:
            if r.version >= self.current.version or self.identity.same(r.digest, self.current.digest):
                continue
            if not r.served:
                continue
            if r.exists is False:
                notes.append(f"release v{r.version}'s image {r.image} served but no longer resolves (pruned?)")
                continue
            return r, notes
        return None, notes


def release_health(e: Evidence, tz: str = "UTC", *, judge: bool = True) -> ReleaseHealth:
    """What the machines on each release's image did, from the machines, their events and their rows (their
    times told in ``tz``, the report's one format). With ``judge`` False: only which release is current and
    whether each image resolves (what a window with no root cause needs: there is nothing to roll back)."""
    versions, images, currents = (e.releases[c].tolist() for c in ("version", "image", "current"))
    current = next((i for i, now in enumerate(currents) if not is_na(now) and now), None)
    records: list[ReleaseRecord] = []
    # Newest first (a version not known last), ties as listed: the releases' order sorted on the version column.
    order = sorted((i for i, image in enumerate(images) if not is_na(image)), key=lambda i: _newest_first(versions[i]))
    by_machine = _MachineFacts(e) if judge else None
    for i in order:
        image = str(images[i])
        exists, digest = e.head(image)
        r = ReleaseRecord(int(versions[i]), image, digest, exists)
        if by_machine is not None:
            _judge_machines(e, r, tz, by_machine)
        records.append(r)
    now = None if current is None else next((r for r in records if r.version == int(versions[current])), None)
    return ReleaseHealth(records, now, e.identity)


def _newest_first(version: object) -> tuple[int, float]:
    return (1, 0.0) if is_na(version) else (0, -float(version))  # type: ignore[arg-type]


def _judge_machines(e: Evidence, r: ReleaseRecord, tz: str, known: _MachineFacts) -> None:
    """Fill ``r.served`` and ``r.failed`` from the machines on its image, oldest first, until it is known to serve."""
    for _, m in _machines_on(e, r.image, r.digest).iterrows():
        verdict, sentence = _judge(e, m, tz, known)
        if verdict == "served":
            r.served.append(sentence)
        elif verdict == "failed" and len(r.failed) < SAID:
            r.failed.append(sentence)
        if len(r.served) >= SAID:  # it served: more machines would add nothing a person reads
            break


def _machines_on(e: Evidence, image: str, digest: str | None) -> pd.DataFrame:
    m = e.machines
    # A machine records its platform child's digest where the registry answers an index's (Evidence.identity).
    same = (m["image"] == image) | (m["image_digest"].map(e.identity.of) == e.identity.of(digest) if digest else False)
    internal = m["process_group"].isin(list(INTERNAL_PROCESS_GROUPS)).fillna(False)
    return m[same.fillna(False).astype(bool) & ~internal.astype(bool)].sort_values("created_at")


class _MachineFacts:
    """Each machine's events and rows, found by a binary search of the frames sorted once by machine id:
    filtering the whole frames per machine is quadratic on a busy day (10,000 machines, 50,000 events), and
    grouping them all builds a frame per machine when a few are judged."""

    def __init__(self, e: Evidence) -> None:
        self._events, self._event_ids = _by_machine(e.machine_events)
        self._rows, self._row_ids = _by_machine(e.machine_rows)

    def events(self, mid: str) -> pd.DataFrame:
        return _slice(self._events, self._event_ids, mid)

    def rows(self, mid: str) -> pd.DataFrame:
        return _slice(self._rows, self._row_ids, mid)


def _by_machine(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    ordered = frame[frame["machine_id"].notna()].sort_values("machine_id", kind="stable")
    return ordered, ordered["machine_id"].astype(str).to_numpy()


def _slice(frame: pd.DataFrame, ids: np.ndarray, mid: str) -> pd.DataFrame:
    lo, hi = np.searchsorted(ids, mid, "left"), np.searchsorted(ids, mid, "right")
    return frame.iloc[int(lo) : int(hi)]


def _judge(e: Evidence, m: pd.Series, tz: str, known: _MachineFacts) -> tuple[str, str]:
    """("served" | "failed" | "unknown", one sentence of evidence) for one machine."""
    mid = str(m["machine_id"])
    evs = known.events(mid).sort_values("time")
    starts = evs[evs["type"] == "start"]
    if starts.empty:
        failed = evs[evs["status"].isin(list(LAUNCH_FAILED_STATUSES))]
        if not failed.empty or m["state"] == "destroyed":
            why = "" if failed.empty or pd.isna(failed.iloc[-1]["error"]) else f" ({failed.iloc[-1]['error']})"
            return "failed", f"machine {mid} never started{why}"
        return "unknown", ""
    start = starts.iloc[0]["time"]
    exits = evs[(evs["type"] == "exit") & (evs["time"] >= start)]
    rows = known.rows(mid)
    row = None if rows.empty else rows.sort_values("created_at").iloc[-1]
    if row is not None and _row_reached_running(row):
        return "served", f"machine {mid} started at {fmt_time(start, tz)} and its row {row['id']} reached running"
    first_exit = None if exits.empty else exits.iloc[0]
    ran = (e.now if first_exit is None else first_exit["time"]) - start
    if ran >= SERVED_AFTER:
        return (
            "served",
            f"machine {mid} started at {fmt_time(start, tz)} "
            f"and ran {int(ran.total_seconds() // 60)} min without exiting",
        )
    if first_exit is not None and not _requested(first_exit):
        code = None if pd.isna(first_exit["exit_code"]) else int(first_exit["exit_code"])
        oom = None if pd.isna(first_exit["oom_killed"]) else bool(first_exit["oom_killed"])
        after = int(ran.total_seconds())
        return (
            "failed",
            f"machine {mid} {describe_exit(code, oom)} at {fmt_time(first_exit['time'], tz)}, "
            f"{after} s after it started",
        )
    return "unknown", ""


def _row_reached_running(row: pd.Series) -> bool:
    """Whether the row said the session ran: ``running``, or a canary closed as done (its cleanup writes a stopped
    word, or a word of no role, when it worked; a failure word, or an error, when it did not)."""
    if row["role"] == RUNNING:
        return True
    canary = isinstance(row["user_id"], str) and row["user_id"].startswith(CANARY_USER_PREFIX)
    return bool(canary and row["role"] in (STOPPED, TERMINAL) and pd.isna(row["error"]))


def _requested(x: pd.Series) -> bool:
    return not pd.isna(x["requested_stop"]) and bool(x["requested_stop"])

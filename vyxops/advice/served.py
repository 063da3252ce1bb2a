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

import pandas as pd

from vyxops.contract import RUNNING, STOPPED, TERMINAL
from vyxops.evidence import Evidence
from vyxops.facts import CANARY_USER_PREFIX, INTERNAL_PROCESS_GROUPS, LAUNCH_FAILED_STATUSES, describe_exit
from vyxops.images import ImageIdentity
from vyxops.present import fmt_time

SERVED_AFTER = pd.Timedelta(minutes=10)


@dataclass
class ReleaseRecord:
    """One release image and what the machines on it did."""

    version: int
    image: str
    digest: str | None
    exists: bool | None  # whether the image still resolves (None: not checked)
    served: list[str] = field(default_factory=list)  # one sentence of evidence per machine that served
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


def release_health(e: Evidence, tz: str = "UTC") -> ReleaseHealth:
    """What the machines on each release's image did, from the machines, their events and their rows (their
    times told in ``tz``, the report's one format)."""
    current = e.current_release()
    records: list[ReleaseRecord] = []
    rels = e.releases.dropna(subset=["image"]).sort_values("version", ascending=False)
    for _, rel in rels.iterrows():
        image = str(rel["image"])
        exists, digest = e.head(image)
        r = ReleaseRecord(int(rel["version"]), image, digest, exists)
        for _, m in _machines_on(e, image, digest).iterrows():
            verdict, sentence = _judge(e, m, tz)
            if verdict == "served":
                r.served.append(sentence)
            elif verdict == "failed":
                r.failed.append(sentence)
        records.append(r)
    now = None if current is None else next((r for r in records if r.version == int(current["version"])), None)
    return ReleaseHealth(records, now, e.identity)


def _machines_on(e: Evidence, image: str, digest: str | None) -> pd.DataFrame:
    m = e.machines
    # A machine records its platform child's digest where the registry answers an index's (Evidence.identity).
    same = (m["image"] == image) | (m["image_digest"].map(e.identity.of) == e.identity.of(digest) if digest else False)
    internal = m["process_group"].isin(list(INTERNAL_PROCESS_GROUPS)).fillna(False)
    return m[same.fillna(False).astype(bool) & ~internal.astype(bool)].sort_values("created_at")


def _judge(e: Evidence, m: pd.Series, tz: str) -> tuple[str, str]:
    """("served" | "failed" | "unknown", one sentence of evidence) for one machine."""
    mid = str(m["machine_id"])
    evs = e.machine_events[e.machine_events["machine_id"] == mid].sort_values("time")
    starts = evs[evs["type"] == "start"]
    if starts.empty:
        failed = evs[evs["status"].isin(list(LAUNCH_FAILED_STATUSES))]
        if not failed.empty or m["state"] == "destroyed":
            why = "" if failed.empty or pd.isna(failed.iloc[-1]["error"]) else f" ({failed.iloc[-1]['error']})"
            return "failed", f"machine {mid} never started{why}"
        return "unknown", ""
    start = starts.iloc[0]["time"]
    exits = evs[(evs["type"] == "exit") & (evs["time"] >= start)]
    rows = e.machine_rows[e.machine_rows["machine_id"] == mid]
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

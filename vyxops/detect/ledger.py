"""The machine ledger: one row per machine with its whole story, built once with group-bys.

Every machine detector reads this table instead of scanning the events once per
machine, so an investigation stays n·log n in events on a busy day. Only events up
to ``as_of`` (the window's end) count: evidence after the window is not cited as if
it were inside it.

Outcomes (``outcome`` column), from who made the machine and what its events and
DB row say — never from "exited + destroyed" alone (PLATFORM.md):

=================  =====================================================================
internal_ok        flyctl's own machine (release command, console, test) that exited 0
internal_failed    flyctl's own machine that exited non-zero (a failed release command)
pending            created, not started yet
never_started      never reached started: a failed pull or launch, or destroyed first
running            started and still running
stopped_on_request someone asked it to stop (requested_stop)
ended              exited 0 after its DB row said the session ended (stopped)
exited_ok          a machine nothing provisioned (no user, no row) that exited 0
restart_loop       its restart policy restarted it again and again after failing exits nobody asked for
exited             exited on its own, and nothing says that was the plan: a failure
=================  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vyxops import facts
from vyxops.frames import TIME

OUTCOMES = (
    "internal_ok",
    "internal_failed",
    "pending",
    "never_started",
    "running",
    "stopped_on_request",
    "ended",
    "exited_ok",
    "restart_loop",
    "exited",
)
FAILED_OUTCOMES = frozenset({"never_started", "exited", "restart_loop"})
HEALTHY_OUTCOMES = frozenset({"internal_ok", "running", "stopped_on_request", "ended", "exited_ok"})


@dataclass
class _Story:
    """One machine's events, summed up (see :func:`_events_summary`); None where nothing says."""

    starts: int = 0
    exits: int = 0
    unasked_exits: int = 0
    failing_exits: int = 0
    launch_at: object = None
    start_at: object = None
    last_start_at: object = None
    exit_at: object = None
    exit_code: object = None
    oom_killed: object = None
    requested_stop: object = None
    restart_count: object = None
    destroy_at: object = None
    destroy_source: object = None
    failed_at: object = None
    failed_error: object = None
    last_status: object = None

    def exit(self, at: object, code: object, oom: object, asked: object, restarts: object) -> None:
        """A failing exit: nobody asked, and the code is non-zero or the kernel killed it for memory. A code
        left out (fly-go omitempty) is a 0: a worker that exits 0 under restart `always` is doing its job."""
        self.exits += 1
        if asked is not True:
            self.unasked_exits += 1
            self.failing_exits += (_known(code) and code != 0) or oom is True
        self.exit_at, self.exit_code, self.oom_killed, self.requested_stop = at, code, oom, asked
        if isinstance(restarts, int) and not (isinstance(self.restart_count, int) and self.restart_count >= restarts):
            self.restart_count = restarts


_COUNTS = ("starts", "exits", "unasked_exits", "failing_exits")
_TIMES = ("launch_at", "start_at", "last_start_at", "exit_at", "destroy_at", "failed_at")
# summary column -> the event column it is read from, whose dtype it keeps
_READ_FROM = {
    "exit_code": "exit_code",
    "oom_killed": "oom_killed",
    "requested_stop": "requested_stop",
    "restart_count": "restart_count",
    "destroy_source": "source",
    "failed_error": "error",
    "last_status": "status",
}
_EVENT_COLUMNS = ("machine_id", "time", "type", "status", "source", "exit_code", "oom_killed", "requested_stop",
                  "restart_count", "error")  # fmt: skip


def _known(value: object) -> bool:
    return value is not None and value is not pd.NA and value is not pd.NaT


def _events_summary(events: pd.DataFrame) -> pd.DataFrame:
    """Per machine: launch, first/last start, exits and the last one's details, destroy, launch failure.

    One pass over the events in (machine, time) order, in plain Python: an app has a few
    dozen events, and a dozen pandas group-bys over them cost forty times what the pass
    does. A missing time is never a first or last one; "first" and "last" skip missing
    values, as pandas' group-bys do.
    """
    ev = events.sort_values(["machine_id", "time"], kind="stable")
    ids = ev["machine_id"].unique().tolist()
    stories = {m: _Story() for m in ids if _known(m)}
    for mid, at, kind, status, source, code, oom, asked, restarts, error in zip(
        *(ev[c].tolist() for c in _EVENT_COLUMNS)
    ):
        if not _known(mid):
            continue
        m, timed = stories[mid], _known(at)
        if kind == "launch" and timed and m.launch_at is None:
            m.launch_at = at
        if status == facts.STARTED:
            m.starts += 1
            if timed:
                m.start_at = m.start_at if m.start_at is not None else at
                m.last_start_at = at
        if kind == "exit":
            m.exit(at, code, oom, asked, restarts)
        if status == "destroyed":
            m.destroy_at = at if m.destroy_at is None and timed else m.destroy_at
            m.destroy_source = source if m.destroy_source is None and _known(source) else m.destroy_source
        if status in facts.LAUNCH_FAILED_STATUSES:
            m.failed_at = at if m.failed_at is None and timed else m.failed_at
            m.failed_error = error if m.failed_error is None and _known(error) else m.failed_error
        if _known(status):
            m.last_status = status
    rows = [stories.get(m, _Story()) for m in ids]
    frame = {c: pd.Series([getattr(r, c) for r in rows], dtype="int64") for c in _COUNTS}
    frame |= {c: pd.Series([getattr(r, c) for r in rows], dtype=TIME) for c in _TIMES}
    for c, source_column in _READ_FROM.items():
        frame[c] = pd.Series([getattr(r, c) for r in rows], dtype=object).astype(events[source_column].dtype)
    order = ("launch_at", "start_at", "last_start_at", *_COUNTS, "exit_at", "exit_code", "oom_killed",
             "requested_stop", "restart_count", "destroy_at", "destroy_source", "failed_at", "failed_error",
             "last_status")  # fmt: skip
    return pd.DataFrame({c: frame[c] for c in order}).set_axis(pd.Index(ev["machine_id"].unique(), name="machine_id"))


def _rows_by_machine(rows: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The newest row per machine, as of ``as_of``: rows created later do not exist yet, and a row
    changed after ``as_of`` has an unknown status at ``as_of``."""
    rows = rows[rows["fly_machine_id"].notna() & (rows["created_at"].isna() | (rows["created_at"] <= as_of))]
    rows = rows.sort_values("created_at", kind="stable").groupby("fly_machine_id", sort=False).tail(1)
    known = rows["updated_at"].isna() | (rows["updated_at"] <= as_of)
    out = pd.DataFrame(
        {
            "row_id": rows["id"].to_numpy(),
            "row_status": rows["status"].where(known).to_numpy(),
            "row_created_at": rows["created_at"].to_numpy(),
            "row_updated_at": rows["updated_at"].to_numpy(),
            "row_user_id": rows["user_id"].to_numpy(),
        },
        index=pd.Index(rows["fly_machine_id"].to_numpy(), name="machine_id"),
    )
    return out


def build_ledger(
    machines: pd.DataFrame,
    events: pd.DataFrame,
    rows: pd.DataFrame,
    as_of: pd.Timestamp,
    present: bool,
    loop_exits: int = 3,
) -> pd.DataFrame:
    """One row per machine created by ``as_of``: its frame columns, event summary, DB row and outcome.

    ``present``: ``as_of`` is the target's now, so the machine's state as listed is evidence
    too (a destroyed record may lack its destroy event); otherwise the state is read off the
    events up to ``as_of``. ``loop_exits``: exits nobody asked for that make a restarting
    machine a restart loop.
    """
    m = machines[machines["created_at"].isna() | (machines["created_at"] <= as_of)]
    m = m.drop_duplicates("machine_id").set_index("machine_id")
    ledger = m.join(_events_summary(events[events["time"] <= as_of]), how="left")
    ledger = ledger.join(_rows_by_machine(rows, as_of), how="left")
    for column in ("starts", "exits", "unasked_exits", "failing_exits"):
        ledger[column] = ledger[column].fillna(0).astype("int64")
    state = ledger["state"] if present else ledger["last_status"].fillna(ledger["state"])
    ledger["state_as_of"] = state
    ledger["gone"] = state.isin(facts.GONE_STATES) | ledger["destroy_at"].notna()
    ledger["origin"] = _origins(ledger)
    ledger["outcome"] = _outcomes(ledger, loop_exits)
    ledger["outcome_at"] = _outcome_times(ledger)
    return ledger.reset_index()


def _origins(ledger: pd.DataFrame) -> np.ndarray:
    group = ledger["process_group"].astype("object")
    user = ledger["user_id"].fillna(ledger["row_user_id"]).astype("object")
    internal = group.isin(facts.INTERNAL_PROCESS_GROUPS).to_numpy()
    canary = user.fillna("").astype(str).str.startswith(facts.CANARY_USER_PREFIX).to_numpy()
    provisioned = (user.notna() | ledger["row_id"].notna()).to_numpy()
    return np.select([internal, canary, provisioned], ["internal", "canary", "user"], default="other")


def _outcomes(ledger: pd.DataFrame, loop_exits: int) -> np.ndarray:
    code = ledger["exit_code"]
    clean = (code.isna() | (code == 0)).fillna(True).to_numpy(dtype=bool) & ~_true(ledger["oom_killed"])
    internal = (ledger["origin"] == "internal").to_numpy()
    exited = (ledger["exits"] > 0).to_numpy()
    started = ledger["start_at"].notna().to_numpy()
    # Destroyed before it started is a failed launch, unless someone asked (a destroy from "user", e.g. a
    # canary's cleanup): then nothing failed, the machine was simply not wanted any more.
    asked_destroy = (ledger["destroy_source"] == "user").fillna(False).to_numpy(dtype=bool)
    failed_launch = (ledger["failed_at"].notna() | ledger["state_as_of"].isin(["failed"])).to_numpy(dtype=bool)
    failed_launch = failed_launch | (ledger["gone"].to_numpy(dtype=bool) & ~asked_destroy)
    running = (ledger["state_as_of"] == facts.STARTED).to_numpy()
    asked = _true(ledger["requested_stop"])
    restarts = ledger["restart_policy"].isin(["on-failure", "always"]).to_numpy()
    failing = ledger["failing_exits"].to_numpy()
    gave_up = ~(ledger["state_as_of"] == facts.STARTED).to_numpy() & (failing >= 2)
    looping = restarts & ((failing >= loop_exits) | gave_up)
    ended_row = ledger["row_status"].isin(facts.ENDED_ROW_STATUSES).to_numpy()
    nobody = (ledger["origin"] == "other").to_numpy() & ledger["row_id"].isna().to_numpy()
    conditions = [
        internal & exited & clean,
        internal & exited,
        internal,
        ~started & failed_launch,
        ~started & asked_destroy,
        ~started,
        exited & asked,
        looping,
        running,
        exited & clean & ended_row,
        exited & clean & nobody,
        exited,
    ]
    choices = [
        "internal_ok",
        "internal_failed",
        "internal_ok",
        "never_started",
        "stopped_on_request",
        "pending",
        "stopped_on_request",
        "restart_loop",
        "running",
        "ended",
        "exited_ok",
        "exited",
    ]
    return np.select(conditions, choices, default="running")


def _outcome_times(ledger: pd.DataFrame) -> pd.Series:
    """When the outcome happened: the last exit, the failed launch or destroy, else the start or creation."""
    never = ledger["failed_at"].fillna(ledger["destroy_at"])
    when = ledger["exit_at"].where(ledger["exits"] > 0)
    when = when.where(ledger["outcome"] != "never_started", never)
    fallback = ledger["start_at"].fillna(ledger["launch_at"]).fillna(ledger["created_at"])
    return when.fillna(fallback)


def _true(series: pd.Series) -> np.ndarray:
    return series.astype("boolean").fillna(False).to_numpy(dtype=bool)

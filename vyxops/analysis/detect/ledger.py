"""The machine ledger: one row per machine with its whole story, built once, in one pass.

Every machine detector reads this table instead of scanning the events once per
machine, so an investigation stays n·log n in events on a busy day. It is built in
plain Python, machine by machine: an app has a dozen machines, and the two joins and
dozens of column operations it took in pandas cost five times as much. Only events up
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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pandas.api.extensions import ExtensionArray

from vyxops.core import facts
from vyxops.core.contract import RUNNING, STARTING, STOPPED, TERMINAL
from vyxops.fetch.frames import TIME, converted_together, is_na

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
#: Row roles (vyxops.core.contract) that say the session is on, and that it ended (a word mapped to no role
#: is terminal: an ended session as far as the row says).
OPEN_ROLES = (STARTING, RUNNING)
ENDED_ROLES = (STOPPED, TERMINAL)
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
            self.failing_exits += (not is_na(code) and code != 0) or oom is True
        self.exit_at, self.exit_code, self.oom_killed, self.requested_stop = at, code, oom, asked
        if isinstance(restarts, int) and not (isinstance(self.restart_count, int) and self.restart_count >= restarts):
            self.restart_count = restarts


_COUNTS = ("starts", "exits", "unasked_exits", "failing_exits")
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
_SUMMARY = ("launch_at", "start_at", "last_start_at", *_COUNTS, "exit_at", "exit_code", "oom_killed",
            "requested_stop", "restart_count", "destroy_at", "destroy_source", "failed_at", "failed_error",
            "last_status")  # fmt: skip
_EVENT_COLUMNS = ("machine_id", "time", "type", "status", "source", "exit_code", "oom_killed", "requested_stop",
                  "restart_count", "error")  # fmt: skip


def _value(value: object) -> object:
    """A cell as plain Python: None for every kind of missing (NA compares as neither true nor false)."""
    return value if not is_na(value) else None


def _stories(events: pd.DataFrame, as_of: pd.Timestamp) -> dict[object, _Story]:
    """Per machine: launch, first/last start, exits and the last one's details, destroy, launch failure,
    from the events up to ``as_of`` (an event without a time is not known to be before it).

    One pass over the events in (machine, time) order, in plain Python: an app has a few
    dozen events, and a dozen pandas group-bys over them cost forty times what the pass
    does. The order is a stable sort, as pandas' sort on the two columns is. "first" and
    "last" skip missing values, as pandas' group-bys do.
    """
    cells = [events[c].tolist() for c in _EVENT_COLUMNS]
    mids, times = cells[0], cells[1]
    keep = [i for i, (mid, at) in enumerate(zip(mids, times)) if pd.notna(mid) and pd.notna(at) and at <= as_of]
    keep.sort(key=lambda i: (mids[i], times[i]))
    stories: dict[object, _Story] = {}
    for mid, at, kind, status, source, code, oom, asked, restarts, error in (
        [column[i] for column in cells] for i in keep
    ):
        m, timed = stories.setdefault(mid, _Story()), pd.notna(at)
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
            m.destroy_source = source if m.destroy_source is None and pd.notna(source) else m.destroy_source
        if status in facts.LAUNCH_FAILED_STATUSES:
            m.failed_at = at if m.failed_at is None and timed else m.failed_at
            m.failed_error = error if m.failed_error is None and pd.notna(error) else m.failed_error
        if pd.notna(status):
            m.last_status = status
    return stories


@dataclass(frozen=True)
class _Row:
    """A machine's newest DB row as of the window's end (see :func:`_rows_by_machine`)."""

    row_id: object = None
    row_status: object = None
    row_role: object = None
    row_created_at: object = None
    row_updated_at: object = None
    row_user_id: object = None


_ROW_COLUMNS = ("row_id", "row_status", "row_role", "row_created_at", "row_updated_at", "row_user_id")
_NO_ROW = _Row()


def _rows_by_machine(rows: pd.DataFrame, as_of: pd.Timestamp) -> dict[object, _Row]:
    """The newest row per machine, as of ``as_of``: rows created later do not exist yet, and a row
    changed after ``as_of`` has an unknown status at ``as_of``."""
    columns = ("machine_id", "id", "status", "role", "created_at", "updated_at", "user_id")
    cells = [rows[c].tolist() for c in columns]
    # Oldest first, a row without a time last, ties as they came: pandas' stable sort on created_at.
    order = sorted(range(len(rows)), key=lambda i: (0, cells[4][i]) if pd.notna(cells[4][i]) else (1, 0))
    newest: dict[object, _Row] = {}
    for mid, rid, status, role, created, updated, user in ([column[i] for column in cells] for i in order):
        if not pd.notna(mid) or (pd.notna(created) and created > as_of):
            continue
        known = not pd.notna(updated) or updated <= as_of
        said = (_value(status), _value(role)) if known else (None, None)
        newest[mid] = _Row(_value(rid), *said, created, updated, _value(user))
    return newest


def _first_of_each(machines: pd.DataFrame, as_of: pd.Timestamp) -> list[int]:
    """Positions of the machines created by ``as_of`` (or at no known time), each id's first
    (a missing id counts as one id, as pandas' drop_duplicates counts it)."""
    seen: set[object] = set()
    keep = []
    for i, (mid, created) in enumerate(zip(machines["machine_id"].tolist(), machines["created_at"].tolist())):
        key = mid if pd.notna(mid) else _MISSING
        if (pd.notna(created) and created > as_of) or key in seen:
            continue
        seen.add(key)
        keep.append(i)
    return keep


_MISSING = object()


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
    machine a restart loop. Built machine by machine in plain Python, as :func:`_stories` is.
    """
    m = machines.take(_first_of_each(machines, as_of))
    ids = m["machine_id"].tolist()
    stories = _stories(events, as_of)
    newest = _rows_by_machine(rows, as_of)
    story = [stories.get(mid) or _Story() for mid in ids]
    row = [newest.get(mid, _NO_ROW) for mid in ids]
    own = {c: [_value(v) for v in m[c].tolist()] for c in ("state", "process_group", "user_id", "restart_policy")}
    own["created_at"] = m["created_at"].tolist()
    out: dict[str, object] = {c: m[c].array for c in ("machine_id", *(c for c in m.columns if c != "machine_id"))}
    states = [listed if present or is_na(st.last_status) else st.last_status for listed, st in zip(own["state"], story)]
    verdicts = [
        _verdict(st, rw, state, group, user, policy, created, loop_exits)
        for st, rw, state, group, user, policy, created in zip(
            story, row, states, own["process_group"], own["user_id"], own["restart_policy"], own["created_at"]
        )
    ]
    # Each column's values and how it is typed; the columns typed alike are converted in one call.
    typed: dict[str, tuple[str, object, list[object]]] = {}
    for c in _SUMMARY:
        values = [getattr(x, c) for x in story]
        if c in _READ_FROM:  # as its event column is typed
            typed[c] = ("astype", events[_READ_FROM[c]].dtype, values)
        else:
            typed[c] = ("array", "int64" if c in _COUNTS else TIME, values)
    for c in _ROW_COLUMNS:
        typed[c] = ("array", TIME if c.endswith("_at") else "str", [getattr(x, c) for x in row])
    typed["state_as_of"] = ("array", m["state"].dtype, states)
    typed["gone"] = ("array", bool, [v[0] for v in verdicts])
    typed["origin"] = ("array", "str", [v[1] for v in verdicts])
    typed["outcome"] = ("array", "str", [v[2] for v in verdicts])
    typed["outcome_at"] = ("array", TIME, [v[3] for v in verdicts])
    out |= _typed_together(typed, len(ids))
    out = {c: out[c] for c in (*(c for c in out if c not in typed), *typed)}  # the ledger's column order
    return pd.DataFrame(out, copy=False)


def _typed_together(typed: dict[str, tuple[str, object, list[object]]], rows: int) -> dict[str, object]:
    """Each column as ``pd.array`` types it (``array``: of that dtype; ``astype``: as objects, then
    cast), the columns typed alike converted in one call (:func:`vyxops.fetch.frames.converted_together`)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for c, (how, dtype, _) in typed.items():
        groups.setdefault((how, str(dtype)), []).append(c)
    out: dict[str, object] = {}
    for names in groups.values():
        how, dtype, _ = typed[names[0]]
        cells = {c: typed[c][2] for c in names}
        out |= converted_together(cells, names, rows, _converter(how, dtype))
    return out


def _converter(how: str, dtype: Any) -> Callable[[list[Any]], ExtensionArray]:
    """``pd.array`` of that dtype (``array``), or of objects cast to it (``astype``). ``dtype`` is any kind
    pd.array takes (a name, a numpy or an extension dtype); pandas-stubs type pd.array per kind, so no one
    annotation covers them all."""
    if how == "astype":
        return lambda values: pd.array(values, dtype=object).astype(dtype)
    return lambda values: pd.array(values, dtype=dtype)


def _verdict(
    st: _Story, row: _Row, state: object, group: object, user: object, policy: object, created: object, loop_exits: int
) -> tuple[bool, str, str, object]:
    """(gone, origin, outcome, outcome_at) of one machine: the first outcome in OUTCOMES' table whose
    conditions hold, in this order."""
    gone = state in facts.GONE_STATES or not is_na(st.destroy_at)
    user_id = user if user is not None else row.row_user_id
    origin = facts.machine_origin(
        None if group is None else str(group), None if user_id is None else str(user_id), row.row_id is not None
    )
    outcome = _outcome(st, row, state, origin, policy, gone, loop_exits)
    if outcome == "never_started":
        when = st.failed_at if not is_na(st.failed_at) else st.destroy_at
    else:
        when = st.exit_at if st.exits > 0 else None
    for fallback in (st.start_at, st.launch_at, created):
        when = when if not is_na(when) else fallback
    return gone, origin, outcome, when


def _outcome(st: _Story, row: _Row, state: object, origin: str, policy: object, gone: bool, loop_exits: int) -> str:
    """One machine's outcome (see the module's table)."""
    clean = (is_na(st.exit_code) or st.exit_code == 0) and st.oom_killed is not True
    exited, started, running = st.exits > 0, not is_na(st.start_at), state == facts.STARTED
    asked_destroy = st.destroy_source == "user"
    failed_launch = not is_na(st.failed_at) or state == "failed" or (gone and not asked_destroy)
    gave_up = not running and st.failing_exits >= 2
    looping = policy in ("on-failure", "always") and (st.failing_exits >= loop_exits or gave_up)
    if origin == "internal":
        return "internal_ok" if not exited or clean else "internal_failed"
    if not started:
        return "never_started" if failed_launch else "stopped_on_request" if asked_destroy else "pending"
    if exited and st.requested_stop is True:
        return "stopped_on_request"
    if looping:
        return "restart_loop"
    if running:
        return "running"
    if exited and clean and row.row_role in ENDED_ROLES:
        return "ended"
    if exited and clean and origin == "other" and row.row_id is None:
        return "exited_ok"
    return "exited" if exited else "running"

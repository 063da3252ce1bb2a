"""Who an incident touched: sessions that failed to start and the users behind them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from vyxops.analysis.detect import Context, Finding
from vyxops.analysis.detect.model import is_machine_failure
from vyxops.core.coverage import Gap
from vyxops.core.present import fmt_time


@dataclass(frozen=True)
class Impact:
    """Counts over the window; ``current`` ones still fail now, the rest are history."""

    sessions: int  # provisioning attempts that did not give a working session (refused or failed machines)
    current: int  # of those, the ones whose cause is still in effect
    users: int  # distinct users among them (a refusal whose line names no user counts once, as unknown)
    refused: int  # attempts that made no machine: refused by the Machines API, or failed requests
    machines: int  # machines that were made and failed
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    # Spans of the window a deciding source could not show (source, since, until): a session that failed
    # then is not counted, so the sentence says what was seen and what could not be.
    unseen: tuple[tuple[str, pd.Timestamp, pd.Timestamp], ...] = ()

    def sentence(self, tz: str = "UTC") -> str:
        """The impact in one sentence, its times in ``tz`` (vyxops.core.present.fmt_time: the report's one format)."""
        if not self.sessions and self.unseen:
            spans = " or ".join(f"{fmt_time(a, tz)}–{fmt_time(b, tz)}" for _, a, b in self.unseen)
            return f"No failed session seen outside {spans}; {self._unseen_clause(tz)}."
        if not self.sessions:
            return "No user session failed in the window."
        if not self.unseen:
            return self._counted(tz)
        clause = self._unseen_clause(tz)
        return f"{self._counted(tz)} {clause[:1].upper()}{clause[1:]}."

    def _unseen_clause(self, tz: str) -> str:
        said = "; ".join(f"{source} from {fmt_time(a, tz)} to {fmt_time(b, tz)}" for source, a, b in self.unseen)
        return f"{said} could not be read, so sessions that failed then are not counted"

    def _counted(self, tz: str) -> str:
        span = ""
        if self.first is not None and self.last is not None and self.first.floor("min") != self.last.floor("min"):
            span = f" between {fmt_time(self.first, tz)} and {fmt_time(self.last, tz)}"
        elif self.first is not None:
            span = f" at {fmt_time(self.first, tz)}"
        now = f"; {self.current} still failing now" if self.current != self.sessions else ""
        return (
            f"{self.sessions} session(s) for {self.users} user(s) failed{span}: {self.refused} made no machine, "
            f"{self.machines} machine(s) failed after it{now}."
        )


def impact_of(ctx: Context, findings: list[Finding]) -> Impact:
    """Count the failed sessions behind the findings (vyxops's own canaries are not users).

    A machine that failed has a row naming its user; a request that failed before any
    machine was made has none, and logs are not read for names (each team words them its
    own way): those count once, as one unknown user.
    """
    failed = [f for f in findings if is_machine_failure(f.code) and f.facts.get("origin") != "canary"]
    users: set[str] = set()
    times: list[pd.Timestamp] = []
    current = 0
    for f in failed:
        row = f.facts.get("row")
        user = row["user_id"] if row is not None and pd.notna(row["user_id"]) else f.facts.get("machine_id")
        users.add(str(user))
        times += [f.at] if f.at is not None else []
        current += int(f.current)
    refused = len(ctx.refusals) + len(ctx.failed_requests)
    if refused:
        users.add("unknown")
        times += ctx.refusals["time"].tolist() + ctx.failed_requests["time"].tolist()
        current += sum(
            int(f.facts.get("current", 0))
            for f in findings
            if f.code in ("MACHINE_CREATE_REJECTED", "PROVISIONING_REQUEST_FAILED")
        )
    return Impact(
        unseen=unseen_spans(ctx.e.gaps + ctx.gaps),
        sessions=len(failed) + refused,
        current=current,
        users=len(users),
        refused=refused,
        machines=len(failed),
        first=min(times) if times else None,
        last=max(times) if times else None,
    )


def unseen_spans(gaps: list[Gap]) -> tuple[tuple[str, pd.Timestamp, pd.Timestamp], ...]:
    """The spans of time deciding gaps leave unseen (a gap that is no span of time, e.g. a digest, hides no session)."""
    out: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []
    for g in dict.fromkeys(gaps):
        if not g.decides or not g.since or not g.until:
            continue
        try:
            span = (g.source, pd.Timestamp(g.since), pd.Timestamp(g.until))
        except ValueError:
            continue
        out.append(span)
    return tuple(out)

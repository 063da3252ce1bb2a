"""Who an incident touched: sessions that failed to start and the users behind them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from vyxops import facts
from vyxops.detect import Context, Finding
from vyxops.detect.model import is_machine_failure


@dataclass(frozen=True)
class Impact:
    """Counts over the window; ``current`` ones still fail now, the rest are history."""

    sessions: int  # provisioning attempts that did not give a working session (refused or failed machines)
    current: int  # of those, the ones whose cause is still in effect
    users: int  # distinct users among them (a refusal whose line names no user counts once, as unknown)
    refused: int  # attempts the Machines API refused (no machine)
    machines: int  # machines that were made and failed
    first: pd.Timestamp | None
    last: pd.Timestamp | None

    def sentence(self) -> str:
        if not self.sessions:
            return "No user session failed in the window."
        span = ""
        if self.first is not None and self.last is not None and self.first.floor("min") != self.last.floor("min"):
            span = f" between {self.first:%Y-%m-%d %H:%M} and {self.last:%Y-%m-%d %H:%M} UTC"
        elif self.first is not None:
            span = f" at {self.first:%Y-%m-%d %H:%M} UTC"
        now = f"; {self.current} still failing now" if self.current != self.sessions else ""
        return (
            f"{self.sessions} session(s) for {self.users} user(s) failed{span}: {self.refused} refused at create, "
            f"{self.machines} machine(s) failed after it{now}."
        )


def impact_of(ctx: Context, findings: list[Finding]) -> Impact:
    """Count the failed sessions behind the findings (vyxops's own canaries are not users)."""
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
    refusals = ctx.refusals
    refused_current = 0
    if not refusals.empty:
        named = _refused_users(ctx)
        users |= {named.get(str(x), "unknown") for x in refusals["execution_id"]}
        times += refusals["time"].tolist()
        rejected = next((f for f in findings if f.code == "MACHINE_CREATE_REJECTED"), None)
        refused_current = int(rejected.facts.get("current", 0)) if rejected is not None else 0
    return Impact(
        sessions=len(failed) + len(refusals),
        current=current + refused_current,
        users=len(users),
        refused=len(refusals),
        machines=len(failed),
        first=min(times) if times else None,
        last=max(times) if times else None,
    )


def _refused_users(ctx: Context) -> dict[str, str]:
    """execution id -> the user its provisioning line names (the project's logs: derived once per run)."""
    logs = ctx.e.function_logs
    return ctx.e.derive(logs, ("users_by_execution",), lambda: _users_by_execution(logs))


def _users_by_execution(logs: pd.DataFrame) -> dict[str, str]:
    out: dict[str, str] = {}
    for execution, message in zip(logs["execution_id"].tolist(), logs["message"].tolist()):
        if isinstance(execution, str) and isinstance(message, str):
            hit = facts.USER_IN_TEXT.search(message)
            if hit:
                out.setdefault(execution, hit.group(1))
    return out

"""The launch, run and exit links: provisioned machines that failed after their create was accepted.

Read off the ledger (:mod:`vyxops.analysis.detect.ledger`), whose outcomes already set the
healthy lifecycles apart: flyctl's own machines, sessions that ended with their row
``stopped``, stops someone asked for. Only ``never_started``, ``restart_loop`` and
``exited`` are failures here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from vyxops.analysis.detect.context import Context, releases_said
from vyxops.analysis.detect.model import Finding, Link, ev, is_db_discrepancy, register
from vyxops.core import facts
from vyxops.core.contract import RUNNING, STARTING
from vyxops.core.present import fmt_time, fmt_time_in_text


def _its_row(cause: Finding, symptom: Finding) -> bool:
    """A machine failure explains what its DB row says (stuck, or drifting from Fly)."""
    return is_db_discrepancy(symptom.code) and symptom.facts.get("machine_id") == cause.facts["machine_id"]


def _failures(ctx: Context, outcome: str, origins: tuple[str, ...] = ("user", "canary")) -> list[Any]:
    return ctx.scope_rows(outcome, origins)


def _story(m: Any) -> dict[str, Any]:
    return {
        "launch": m.launch_at if pd.notna(m.launch_at) else m.created_at,
        "start": m.start_at,
        "exit": m.exit_at,
        "destroy": m.destroy_at,
        "failed": m.failed_at,
        "error": m.failed_error,
        "gone": bool(m.gone),
        "state": m.state_as_of,
    }


def _finding(ctx: Context, m: Any, kind: str, title: str, evidence: list[dict[str, str]], **extra: Any) -> Finding:
    row = ctx.row(m.row_id)
    stuck = row is not None and isinstance(row["role"], str) and row["role"] == STARTING
    resolved = None if pd.isna(m.resolved_at) else m.resolved_at
    # A machine nothing provisioned fails on its own account: provisioning's image says nothing about it.
    provisioned = m.origin in ("user", "canary")
    current = resolved is None and not (provisioned and ctx.no_longer_used(m.image, _str(m.image_digest)))
    fixes = (["RECONCILE_STUCK_ROWS"] if stuck and bool(m.gone) else []) + ["VERIFY_PROVISIONING"]
    facts_ = {
        "machine_id": m.machine_id,
        "image": m.image,
        "digest": _str(m.image_digest),
        "image_id": ctx.identity.of(_str(m.image_digest)),  # what "same image" compares (images.ImageIdentity)
        "row": row,
        "story": _story(m),
        "origin": m.origin,
        **extra,
    }
    return Finding(
        kind, "critical", title, f"machine:{m.machine_id}", evidence, fixes, facts_,
        at=m.outcome_at, current=current, resolved_at=resolved,
    )  # fmt: skip


def _str(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _created(ctx: Context, m: Any) -> dict[str, str]:
    """The machine's creation: its image, and which release's image that was when a digest says so (``:latest``
    names another image after a rollback; the machine's digest still says what it ran)."""
    when = m.launch_at if pd.notna(m.launch_at) else m.created_at
    restart = m.restart_policy if pd.notna(m.restart_policy) else "unset"
    ran = releases_said(ctx.releases_of(_str(m.image), _str(m.image_digest)))
    detail = (
        f"machine {m.machine_id} created with {m.image}{ran} (auto_destroy={bool(m.auto_destroy)}, restart={restart})"
    )
    return ev("fly.events", when, detail)


@register("MACHINE_LAUNCH_FAILED", link=Link.LAUNCH, symptom=True, explains=_its_row)
def detect_launch_failed(ctx: Context) -> list[Finding]:
    """Machines that never reached started (a failed pull or launch) and were destroyed or failed."""
    out = []
    for m in _failures(ctx, "never_started"):
        err = m.failed_error if pd.notna(m.failed_error) else "no start event"
        end = m.failed_at if pd.notna(m.failed_at) else m.destroy_at
        evidence = [_created(ctx, m), ev("fly.events", end, f"never reached started: {err}")]
        if pd.notna(m.destroy_at) or m.gone:
            evidence.append(ev("fly.events", m.destroy_at, f"destroyed (state {m.state_as_of})"))
        title = f"machine {m.machine_id} never started" + (" and was destroyed" if m.gone else "")
        out.append(_finding(ctx, m, "MACHINE_LAUNCH_FAILED", title, evidence, error=str(err)))
    return out


def _exit_evidence(ctx: Context, m: Any) -> list[dict[str, str]]:
    code = None if pd.isna(m.exit_code) else int(m.exit_code)
    oom = None if pd.isna(m.oom_killed) else bool(m.oom_killed)
    said = facts.describe_exit(code, oom)
    asked = "" if pd.isna(m.requested_stop) else f", requested_stop={bool(m.requested_stop)}"
    evidence = [
        _created(ctx, m),
        ev("fly.events", m.start_at, "started: the image was pulled and ran"),
        ev("fly.events", m.exit_at, f"{said}{asked}"),
    ]
    if m.gone:
        where = "destroyed by auto_destroy" if bool(m.auto_destroy) else "destroyed"
        detail = f"{where}: gone from `fly machines list` (visible with include_deleted=true)"
        evidence.append(ev("fly.events", m.destroy_at if pd.notna(m.destroy_at) else None, detail))
    if pd.notna(m.row_status):
        evidence.append(ev("supabase.rows", m.row_updated_at, f"row {m.row_id} says {m.row_status}"))
    return evidence


@register("MACHINE_EXITED_AUTO_DESTROYED", "MACHINE_EXITED", link=Link.EXIT, symptom=True, explains=_its_row)
def detect_exited(ctx: Context) -> list[Finding]:
    """Provisioned machines whose process exited on its own though nothing says the session ended."""
    out = []
    for m in _failures(ctx, "exited"):
        code = None if pd.isna(m.exit_code) else int(m.exit_code)
        oom = None if pd.isna(m.oom_killed) else bool(m.oom_killed)
        said = facts.describe_exit(code, oom)
        if m.gone:
            kind, title = "MACHINE_EXITED_AUTO_DESTROYED", f"machine {m.machine_id} {said} and auto_destroy removed it"
        else:
            kind, title = "MACHINE_EXITED", f"machine {m.machine_id} {said} and is {m.state_as_of}"
        reported = m.row_role == RUNNING
        out.append(
            _finding(ctx, m, kind, title, _exit_evidence(ctx, m), code=code if code is not None else "not reported",
                     exit_code=code, oom_killed=oom, reported_running=bool(reported))
        )  # fmt: skip
    return out


@register("MACHINE_RESTART_LOOP", link=Link.RUN, symptom=True, explains=_its_row)
def detect_restart_loop(ctx: Context) -> list[Finding]:
    """Machines that keep exiting and being restarted in place (flyctl: "constantly restarting")."""
    out = []
    for m in _failures(ctx, "restart_loop", ("user", "canary", "other")):
        if m.origin == "other":
            m = m._replace(resolved_at=pd.NaT)  # another image working for users does not mend this machine
        code = None if pd.isna(m.exit_code) else int(m.exit_code)
        restarts = int(m.restart_count) if pd.notna(m.restart_count) else max(0, int(m.failing_exits) - 1)
        now = "still restarting" if m.state_as_of == facts.STARTED else f"gave up and is {m.state_as_of}"
        evidence = [
            _created(ctx, m),
            ev("fly.events", m.start_at, "started"),
            ev("fly.events", m.exit_at, f"exit {int(m.failing_exits)}: {facts.describe_exit(code, None)}, "
                                        f"restart_count {restarts}; {now}"),
        ]  # fmt: skip
        title = (
            f"machine {m.machine_id} keeps restarting: {int(m.failing_exits)} failing exits "
            f"(restart {m.restart_policy})"
        )
        # exit_code is what story_sentence tells: the last exit event's code (facts.read_exit_event).
        out.append(
            _finding(ctx, m, "MACHINE_RESTART_LOOP", title, evidence, code=code, exit_code=code, restarts=restarts)
        )
    return out


@register("RELEASE_COMMAND_FAILED", link=Link.RUN)
def detect_release_command_failed(ctx: Context) -> list[Finding]:
    """A deploy's release command exited non-zero: the deploy was aborted, the previous release stays."""
    out = []
    for m in _failures(ctx, "internal_failed", ("internal",)):
        if m.process_group != facts.RELEASE_COMMAND_GROUP:
            continue
        code = None if pd.isna(m.exit_code) else int(m.exit_code)
        evidence = [_created(ctx, m), ev("fly.events", m.exit_at, f"release command {facts.describe_exit(code, None)}")]
        title = f"release command on {m.image} {facts.describe_exit(code, None)}: that deploy was aborted"
        version, deployed = _failed_release(ctx, m)
        out.append(
            Finding("RELEASE_COMMAND_FAILED", "warning", title, f"machine:{m.machine_id}", evidence, [],
                    {"machine_id": m.machine_id, "image": m.image, "code": code, "exit_code": code,
                     "digest": _str(m.image_digest), "release_version": version, "deployed_at": deployed},
                    at=m.exit_at)
        )  # fmt: skip
    return out


def _failed_release(ctx: Context, m: Any) -> tuple[int | None, pd.Timestamp | None]:
    """The ``failed`` release whose release command machine ``m`` ran (the newest on its image created by then):
    flyctl creates the release, runs the command, and marks the release failed when it exits non-zero."""
    rel = ctx.e.releases
    hits = rel[(rel["image"] == m.image) & (rel["status"] == facts.RELEASE_FAILED)]
    hits = hits[hits["created_at"].isna() | (hits["created_at"] <= m.created_at)] if pd.notna(m.created_at) else hits
    if hits.empty:
        return None, None
    r = hits.sort_values("version").iloc[-1]
    return int(r["version"]), (None if pd.isna(r["created_at"]) else r["created_at"])


def story_sentence(f: Finding, tz: str = "UTC") -> str:
    """One sentence telling a failed machine's story with its times."""
    st, mid = f.facts["story"], f.facts["machine_id"]
    launch = fmt_time_in_text(st["launch"], tz)
    if f.code == "MACHINE_LAUNCH_FAILED":
        gone = f" and was destroyed at {fmt_time(st['destroy'], tz)}" if pd.notna(st["destroy"]) else ""
        return (
            f"Machine {mid} was created at {launch} with {f.facts['image']} "
            f"but never started ({f.facts['error']}){gone}."
        )
    said = facts.describe_exit(f.facts.get("exit_code"), f.facts.get("oom_killed"))
    text = f"Machine {mid} was created at {launch}, started at {fmt_time(st['start'], tz)}"
    if f.facts.get("reported_running"):
        text += ", its app reported `running` to the DB"
    text += f", its process {said} at {fmt_time(st['exit'], tz)}"
    if f.code == "MACHINE_EXITED_AUTO_DESTROYED":
        when = f" at {fmt_time(st['destroy'], tz)}" if pd.notna(st["destroy"]) else ""
        text += (
            f" and auto_destroy destroyed it{when}"
            " — which is why `fly machines list` (without include_deleted) does not show it"
        )
    elif f.code == "MACHINE_RESTART_LOOP":
        text += f"; it was restarted {f.facts.get('restarts')} time(s) and is {st['state']}"
    return text + "."

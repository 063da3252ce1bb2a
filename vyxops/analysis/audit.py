"""Scheduled audits: investigate several apps and say which need attention.

One app's failure is that app's ``error`` row, with its typed error; the other
apps are still reported. The audit's exit status is the worst of them, and 3
when a platform itself could not be reached or refused the whole audit (SPEC.md
exit codes). An audit that could not run at all (the org's apps could not be
listed) is still an :class:`Audit`, with its ``error``, so a scheduled run always
leaves its ``audit.json`` and report (:func:`audit_or_error`).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vyxops.analysis.collect import collect_evidence
from vyxops.analysis.discover import read_tables, resolve_contract
from vyxops.analysis.evidence import ProjectReads, parse_window, quietly
from vyxops.analysis.investigate import Investigation, analyse
from vyxops.core.checks import APP_NAME, FAIL_ON_LEVELS, STUCK_AFTER_MIN, check_app, check_fail_on, check_stuck_after
from vyxops.core.contract import Contract
from vyxops.core.errors import InputError, TransportError, VyxopsError, exit_code_for
from vyxops.core.text import one_line
from vyxops.core.timeutil import iso
from vyxops.fetch import fanout, heap
from vyxops.fetch.session import Session

log = logging.getLogger("vyxops.analysis.audit")
AUDIT_SCHEMA = "vyxops.analysis.audit/1"
_RANK = {"error": 3, "critical": 2, "warning": 1, "info": 0}


@dataclass(frozen=True)
class AppError:
    """An app the audit could not investigate, and why."""

    app: str
    error: VyxopsError

    def as_json(self) -> dict[str, Any]:
        return {**error_json(self.error), "unreachable": isinstance(self.error, TransportError)}


def error_json(error: VyxopsError) -> dict[str, Any]:
    """An error as audit.json holds it: its class, its message, the exit status it means."""
    return {"type": type(error).__name__, "message": str(error), "exit_code": exit_code_for(error)}


def failing_levels(fail_on: str) -> tuple[str, ...]:
    """The worst severities that fail a run at ``fail_on`` (an app's ``error`` row always does)."""
    return ("error", *FAIL_ON_LEVELS[: FAIL_ON_LEVELS.index(check_fail_on(fail_on)) + 1])


class UnexpectedAppError(VyxopsError):
    """An app's investigation stopped on an error with no vyxops type (an answer it could not read, a bug): that
    app's error row, named by the error's class; the other apps go on (issue 19: one poisoned app's text once
    ended a 45-app run before audit.json was written)."""

    def __init__(self, exc: Exception) -> None:
        self.cause_type = type(exc).__name__
        super().__init__(
            f"{self.cause_type}: {one_line(str(exc))}",
            hint="the other apps were audited; rerun `vyxops investigate` for this app to see where it stopped",
        )


def odd_name_error(name: object) -> VyxopsError:
    """Why a name from the org's app list is not audited: it is not a Fly app name, so no request is made with
    it (it would go into URL paths); reported as that name's error row, never fatal to the audit."""
    try:
        check_app(str(name), "the org's app list")
    except VyxopsError as exc:
        return exc
    return InputError("the org's app list", f"{name!r} is not a Fly app name")


@dataclass
class Audit:
    """One investigation per app (or the error that stopped it), and the worst severity each reached."""

    target: str
    generated_at: pd.Timestamp
    investigations: dict[str, Investigation]
    errors: dict[str, AppError] = field(default_factory=dict)
    contract: Contract | None = None  # the pipeline every app was read with
    project: str = ""  # the Supabase project ref and the Fly org audited: every summary names them
    org: str = ""
    error: VyxopsError | None = None  # what stopped the whole audit (then there are no apps), or None

    @property
    def apps(self) -> list[str]:
        return sorted(set(self.investigations) | set(self.errors))

    def row(self, app: str) -> dict[str, Any]:
        """One app's line: worst, verdict, root cause, findings count, summary (or its error)."""
        if app in self.errors:
            err = self.errors[app]
            return {"app": app, "worst": "error", "verdict": "error", "root_cause": None, "findings": 0,
                    "summary": str(err.error)}  # fmt: skip
        inv = self.investigations[app]
        return {
            "app": app,
            "worst": worst(inv),
            "verdict": inv.verdict,
            "root_cause": inv.root.code if inv.root else None,
            "findings": len(inv.findings),
            "summary": inv.summary,
        }

    def frame(self) -> pd.DataFrame:
        columns = ["app", "worst", "verdict", "root_cause", "findings", "summary"]
        return pd.DataFrame([self.row(app) for app in self.apps], columns=columns)

    @property
    def unreachable(self) -> bool:
        """Whether a platform could not be reached at all (the audit then exits 3)."""
        return any(isinstance(e.error, TransportError) for e in self.errors.values())

    def exit_code(self, fail_on: str) -> int:
        """The run's status (SPEC.md): the audit's own error's; 3 when a platform could not be reached, or refused
        every app; 1 when an app is at ``fail_on`` or worse (an app that could not be investigated counts); else 0."""
        if self.error is not None:
            return exit_code_for(self.error)
        refused_all = (
            bool(self.errors)
            and not self.investigations
            and all(exit_code_for(e.error) == 3 for e in self.errors.values())
        )
        if self.unreachable or refused_all:
            return 3
        levels = failing_levels(fail_on)
        return 1 if any(self.row(app)["worst"] in levels for app in self.apps) else 0

    def document(self, fail_on: str) -> dict[str, Any]:
        apps = []
        for app in self.apps:
            line = self.row(app)
            line.pop("summary")
            line.pop("findings")
            line["failing"] = line["worst"] in failing_levels(fail_on)
            if app in self.errors:
                line.update({"gaps": [], "findings": [], "error": self.errors[app].as_json()})
            else:
                inv = self.investigations[app]
                line.update({"gaps": [g.as_json() for g in inv.gaps], "findings": [f.as_json() for f in inv.findings]})
            apps.append(line)
        return {
            "schema": AUDIT_SCHEMA,
            "target": self.target,
            "project": self.project,
            "org": self.org,
            "generated_at": iso(self.generated_at),
            "fail_on": fail_on,
            "unreachable": self.unreachable,
            "exit_code": self.exit_code(fail_on),
            "error": error_json(self.error) if self.error is not None else None,
            "apps": apps,
        }

    def write(self, out_dir: Path, fail_on: str) -> Path:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "audit.json"
        path.write_text(json.dumps(self.document(fail_on), indent=2) + "\n", encoding="utf-8")
        return path


def worst(inv: Investigation) -> str | None:
    """The highest severity among an investigation's findings, or None when there are none.

    An inconclusive verdict (no root cause, incomplete evidence) counts as a warning (SPEC.md).
    """
    levels = [f.severity for f in inv.findings] + (["warning"] if inv.verdict == "inconclusive" else [])
    if not levels:
        return None
    return max(levels, key=lambda s: _RANK.get(s, 0))


#: Apps investigated at once. The platforms' limits are kept by the shared budget
#: (vyxops.fetch.budget), keyed per app on Fly, so apps do not slow each other down; this only
#: bounds the threads (each app reads up to eight sources side by side).
AUDIT_WIDTH = 64


def run_audit(
    session: Session,
    apps: list[str] | None = None,
    *,
    contract: Contract | str | Path | None = None,
    stuck_after_minutes: float = STUCK_AFTER_MIN,
    width: int = AUDIT_WIDTH,
    tz: str = "UTC",
) -> Audit:
    """Investigate each app (every app of the org when ``apps`` is empty), over one window, side by side.

    The window is fixed once (the target's now, 24 h back), and the project-wide
    reads (secrets, functions, function logs, each image reference) are made once for
    all the apps. An app whose investigation fails is recorded with its error; the rest
    go on. The result is the same whatever order the apps finish in. One pipeline
    contract serves every app of the project (``contract``, else declared, else
    discovered over all the apps: :func:`vyxops.analysis.discover.resolve_contract`).
    """
    for app in apps or []:
        check_app(app)  # every name is checked before the first request: nothing half-done on a typo
    check_stuck_after(stuck_after_minutes)
    until = session.now()
    project = ProjectReads(session)

    def one(pipeline: Contract, app: str) -> Investigation | AppError:
        try:
            evidence = collect_evidence(session, app, contract=pipeline, until=until, project=project)
            project.done_with(app)
            # Fetching overlaps; CPU work cannot (one interpreter lock): the apps take turns at it.
            with fanout.turn():
                return analyse(
                    evidence, stuck_after_minutes=stuck_after_minutes, project_ref=session.project_ref, tz=tz
                )
        except VyxopsError as exc:
            return AppError(app, exc)
        except Exception as exc:  # every error class is the app's own row (issue 19), never the whole run's
            log.warning("audit: %s stopped on %s", one_line(app), type(exc).__name__, exc_info=True)
            return AppError(app, UnexpectedAppError(exc))

    # The project-wide reads every app waits for (the function logs: the run's longest chain of
    # round trips) start now, while the org's apps are listed.
    # Everything the apps build is kept until the report: no whole-heap collection meanwhile (vyxops.fetch.heap).
    with heap.batch():
        window = parse_window(until, until=until)
        # The tables' description and rows (discovery's) need no app name either: read ahead too.
        wait_ahead = fanout.ahead(lambda: fanout.gather({"project": lambda: project.prefetch(*window),
                                                         "tables": quietly(lambda: read_tables(session, project))}),
                                  "vyxops-prefetch")  # fmt: skip
        try:
            listed = list(apps or []) or _org_app_names(session, project)
            # A name from the org's list goes into URL paths too: one that is not a Fly app name is reported as
            # its own error row and never read (the names given with --app were checked above: exit 2).
            odd = {_label(n): AppError(_label(n), odd_name_error(n)) for n in listed if not _app_name(n)}
            names = [n for n in listed if _app_name(n)]
            project.apps = names
            pipeline = _pipeline(session, project, names, contract, window, width)
            outcomes = fanout.map_ordered(functools.partial(one, pipeline), names, width=width)
        finally:
            wait_ahead()  # nothing is left running behind the audit, or behind its error
    for outcome in outcomes:
        if isinstance(outcome, AppError) and exit_code_for(outcome.error) == 2:
            raise outcome.error  # bad input (a malformed app name) is the caller's to fix, not an app's state
    investigations = {app: o for app, o in zip(names, outcomes) if not isinstance(o, AppError)}
    errors = {app: o for app, o in zip(names, outcomes) if isinstance(o, AppError)} | odd
    return Audit(session.label, session.now(), investigations, errors, pipeline, session.project_ref, session.org)


def audit_or_error(
    session: Session,
    apps: list[str] | None = None,
    *,
    contract: Contract | str | Path | None = None,
    stuck_after_minutes: float = STUCK_AFTER_MIN,
    tz: str = "UTC",
) -> Audit:
    """:func:`run_audit` (findings told in ``tz``), or, when a platform stops the whole audit (the org's apps cannot
    be listed, the project's contract cannot be read), an Audit holding that error and no apps: a scheduled run still
    writes its audit.json and report and says why (exit 3). Bad input (exit 2) is still raised: it is the caller's."""
    try:
        return run_audit(session, apps, contract=contract, stuck_after_minutes=stuck_after_minutes, tz=tz)
    except VyxopsError as exc:
        if exit_code_for(exc) == 2:
            raise
        return Audit(session.label, session.now(), {}, project=session.project_ref, org=session.org, error=exc)


def _pipeline(
    session: Session,
    project: ProjectReads,
    names: list[str],
    declared: Contract | str | Path | None,
    window: tuple[pd.Timestamp, pd.Timestamp],
    width: int,
) -> Contract:
    """The project's one contract for every app; what no contract decides (each app's machines, releases and
    Fly logs) is read meanwhile."""
    since, until = window
    reads = {app: functools.partial(project.read_ahead, app, since, until) for app in names}
    wait_apps = fanout.ahead(lambda: fanout.gather(reads, width=width), "vyxops-apps-ahead")
    try:
        return resolve_contract(session, names, declared=declared, project=project, since=since, until=until)
    finally:
        wait_apps()


def _app_name(name: object) -> bool:
    return isinstance(name, str) and APP_NAME.fullmatch(name) is not None


def _label(name: object) -> str:
    """How an odd name of the org's list is shown in its row: itself when text, else its repr (a null, a number)."""
    return name if isinstance(name, str) else repr(name)


def _org_app_names(session: Session, project: ProjectReads) -> list[str]:
    """The org's apps, from the run's one read of them (made ahead with the project's sources).
    When the token may not list them, they are asked for again, so the refusal is the audit's error."""
    names = project.org_apps()
    return names if names is not None else [a["name"] for a in session.fly.list_apps(session.org)]

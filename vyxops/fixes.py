"""Fixes: planned from an investigation, dry-run by default, applied with guards, verified, logged.

A :class:`Plan` is data: one :class:`Action` per platform change, in the order they
must be applied, each recording what was read when it was planned. :func:`apply_plan`
changes nothing unless ``dry_run=False`` and ``confirm`` is the app's name; then each
action re-reads the world right before acting and

* is ``skipped`` ("already done: …") when the desired state already holds — so a plan
  applied twice changes nothing the second time;
* is ``skipped`` with the reason when the world moved since planning (the secret, the
  release, :latest or the row changed): a person re-plans rather than a fix guessing;
* is one idempotent platform call (secret upsert, manifest PUT, secret delete by
  name, one guarded PATCH per row), so a failure never leaves half a change: the
  failed action is ``failed``, the ones after it are not run, and a rerun finishes.

Every action that was applied or failed appends one JSON line to the audit log
(SPEC.md "Fixes"); no credential is ever written there.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vyxops import config
from vyxops.errors import ApiError, InputError, NotFoundError, PreconditionError, TransportError, redact
from vyxops.images import FLY_REGISTRY, parse_image_ref, secret_digest
from vyxops.timeutil import iso

__all__ = [
    "FIX_CODES",
    "STRATEGIES",
    "REMEDIATION_SCHEMA",
    "Action",
    "Plan",
    "Outcome",
    "Result",
    "plan_fixes",
    "apply_plan",
]

REMEDIATION_SCHEMA = "vyxops.remediation/1"
#: Every fix, in the order a plan applies them: the image first (so that what is
#: verified is the fixed provisioning), then the DB, then the verification.
FIX_CODES = ("PIN_SECRET_TO_RELEASE", "TAG_LATEST", "UNSET_SECRET", "RECONCILE_STUCK_ROWS", "VERIFY_PROVISIONING")
#: pin: DOCKER_IMAGE = the release's image by tag; pin-digest: by digest (survives a
#: re-pushed tag); latest: tag the release image :latest, then unset DOCKER_IMAGE.
STRATEGIES = ("pin", "pin-digest", "latest")
IMAGE_FIXES = ("PIN_SECRET_TO_RELEASE", "TAG_LATEST", "UNSET_SECRET")
SECRET = "DOCKER_IMAGE"
FUNCTION = "provision-machine"
#: Machine states in which a DB row saying "starting"/"running" can only be wrong.
GONE_STATES = ("destroyed", "stopped", "failed", "launch_failed", "replaced", "migrated")
VERIFY_START_BUDGET_S = 120.0  # a machine normally starts in seconds; a pull may take a minute
VERIFY_DB_BUDGET_S = 60.0  # the app reports `running` to the DB a few seconds after start
VERIFY_MACHINE_CHECK_EVERY = 5  # DB polls between looks at the machine (stop waiting when it is gone)
NOT_RUN = "not run: an earlier action failed"


# --------------------------------------------------------------------------- data


@dataclass
class Action:
    """One planned platform change, with what was read when it was planned.

    ``read`` holds the facts the apply step re-checks (digests, versions, the row's
    status and raw ``updated_at``); ``desired`` is the state the action produces.
    """

    code: str
    target: str
    current: str  # what a person reads in the plan: the value or digest now
    new: str  # what it becomes
    precondition: str  # what must still hold when it is applied
    risk: str
    reason: str  # why it is planned: the findings that ask for it
    read: dict[str, Any] = field(default_factory=dict)
    desired: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "target": self.target,
            "status": "planned",
            "reason": self.reason,
            "before": _jsonable(self.read),
            "after": _jsonable(self.desired),
        }


@dataclass
class Plan:
    """The actions that would fix an investigation's findings, in apply order."""

    app: str
    target: str  # the session label, e.g. sandbox:stub-image
    strategy: str
    actions: list[Action]
    notes: list[str] = field(default_factory=list)  # fixes asked for but not planned, and why
    generated_at: str = ""

    def frame(self) -> pd.DataFrame:
        """One row per action: action, target, current, new, precondition, risk."""
        return pd.DataFrame(
            [
                {
                    "action": a.code,
                    "target": a.target,
                    "current": a.current,
                    "new": a.new,
                    "precondition": a.precondition,
                    "risk": a.risk,
                }
                for a in self.actions
            ],
            columns=["action", "target", "current", "new", "precondition", "risk"],
        )

    def document(self, dry_run: bool = True) -> dict[str, Any]:
        """``plan.json`` (schema vyxops.remediation/1): every action ``planned``."""
        return {
            "schema": REMEDIATION_SCHEMA,
            "dry_run": bool(dry_run),
            "target": self.target,
            "app": self.app,
            "strategy": self.strategy,
            "generated_at": self.generated_at,
            "actions": [a.as_json() for a in self.actions],
            "notes": list(self.notes),
        }

    def write(self, out_dir: str | Path, dry_run: bool = True) -> Path:
        """Write ``plan.json`` into ``out_dir``."""
        return _write_json(Path(out_dir) / "plan.json", self.document(dry_run))


@dataclass
class Outcome:
    """What became of one action: planned (dry run), applied, skipped or failed, and why."""

    code: str
    target: str
    status: str  # planned | applied | skipped | failed
    reason: str
    before: Any = None
    after: Any = None

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "target": self.target,
            "status": self.status,
            "reason": self.reason,
            "before": _jsonable(self.before),
            "after": _jsonable(self.after),
        }


@dataclass
class Result:
    """The outcome of applying (or dry-running) a plan, and the audit lines it appended."""

    app: str
    target: str
    dry_run: bool
    actions: list[Outcome]
    audit_lines: list[dict[str, Any]] = field(default_factory=list)
    audit_log: Path | None = None
    verification: dict[str, Any] | None = None  # what VERIFY_PROVISIONING saw, when it ran
    finished_at: str = ""
    notes: list[str] = field(default_factory=list)  # the plan's notes: fixes not planned, and why

    @property
    def ok(self) -> bool:
        return not any(a.status == "failed" for a in self.actions)

    @property
    def changed(self) -> bool:
        """Whether anything was applied (VERIFY_PROVISIONING included: it made and removed a canary)."""
        return any(a.status == "applied" for a in self.actions)

    def frame(self) -> pd.DataFrame:
        """One row per action: action, target, status, reason, before, after."""
        return pd.DataFrame(
            [
                {
                    "action": a.code,
                    "target": a.target,
                    "status": a.status,
                    "reason": a.reason,
                    "before": _brief(a.before),
                    "after": _brief(a.after),
                }
                for a in self.actions
            ],
            columns=["action", "target", "status", "reason", "before", "after"],
        )

    def verification_frame(self) -> pd.DataFrame:
        """What VERIFY_PROVISIONING saw, one row per fact (empty when it did not run)."""
        v = self.verification or {}
        return pd.DataFrame([{"what": k, "seen": _brief(x)} for k, x in v.items()], columns=["what", "seen"])

    def audit_frame(self) -> pd.DataFrame:
        """The audit lines this run appended."""
        cols = ["time", "action", "entity", "result", "who"]
        return pd.DataFrame([{k: line.get(k) for k in cols} for line in self.audit_lines], columns=cols)

    def document(self) -> dict[str, Any]:
        """``result.json`` (schema vyxops.remediation/1), same shape as the plan."""
        doc: dict[str, Any] = {
            "schema": REMEDIATION_SCHEMA,
            "dry_run": bool(self.dry_run),
            "target": self.target,
            "app": self.app,
            "finished_at": self.finished_at,
            "actions": [a.as_json() for a in self.actions],
            "notes": list(self.notes),
        }
        if self.verification is not None:
            doc["verification"] = _jsonable(self.verification)
        return doc

    def write(self, out_dir: str | Path) -> Path:
        """Write ``result.json`` into ``out_dir``."""
        return _write_json(Path(out_dir) / "result.json", self.document())


# --------------------------------------------------------------------------- planning


def plan_fixes(inv: Any, *, fixes: list[str] | None = None, strategy: str = "pin") -> Plan:
    """Build the actions that fix ``inv``'s findings, in apply order; nothing is called.

    The findings say which fixes they need; ``strategy`` says how the image is fixed
    (``pin``/``pin-digest``: PIN_SECRET_TO_RELEASE; ``latest``: TAG_LATEST then
    UNSET_SECRET); ``fixes`` restricts the plan to those codes (naming an image fix
    there chooses it over the strategy). An action whose desired state already holds
    is not planned: the plan says so in ``notes``. VERIFY_PROVISIONING is planned last
    when anything else is, when a critical finding asks for it, or when named.
    Raises InputError for an unknown fix code or strategy.
    """
    if strategy not in STRATEGIES:
        raise InputError("--strategy", f"unknown strategy {strategy!r}", allowed=list(STRATEGIES))
    wanted = list(dict.fromkeys(fixes or []))
    for code in wanted:
        if code not in FIX_CODES:
            raise InputError("--fix", f"unknown fix {code!r}", allowed=list(FIX_CODES))
    e = inv.evidence
    app = e.app
    asked: dict[str, list[str]] = {}
    for f in inv.findings:
        for code in f.fixes:
            asked.setdefault(code, []).append(f.code)
    critical_asks = {code for f in inv.findings if f.severity == "critical" or inv.root is f for code in f.fixes}

    def allowed(code: str) -> bool:
        return not wanted or code in wanted

    actions: list[Action] = []
    notes: list[str] = []
    facts = _image_facts(e)

    # -- the image provisioning uses
    image_reasons = sorted({c for code in IMAGE_FIXES for c in asked.get(code, [])})
    named_image = [c for c in IMAGE_FIXES if c in wanted]
    if image_reasons or named_image:
        why = _why(image_reasons, named_image)
        if named_image:
            codes = named_image
        elif strategy == "latest":
            codes = ["TAG_LATEST", "UNSET_SECRET"]
        else:
            codes = ["PIN_SECRET_TO_RELEASE"]
        for code in codes:
            if not allowed(code):
                continue
            made = {"PIN_SECRET_TO_RELEASE": _plan_pin, "TAG_LATEST": _plan_tag_latest, "UNSET_SECRET": _plan_unset}[
                code
            ](app, facts, strategy, why)
            if isinstance(made, str):
                notes.append(f"{code}: {made}")
            else:
                actions.append(made)
    elif not wanted:
        # Nothing asks for an image fix. Still say whether the strategy's fix holds, so a
        # second apply reports each fix as done instead of saying nothing.
        for code in ["TAG_LATEST", "UNSET_SECRET"] if strategy == "latest" else ["PIN_SECRET_TO_RELEASE"]:
            made = {"PIN_SECRET_TO_RELEASE": _plan_pin, "TAG_LATEST": _plan_tag_latest, "UNSET_SECRET": _plan_unset}[
                code
            ](app, facts, strategy, "")
            notes.append(f"{code}: {made}" if isinstance(made, str) else f"{code}: not planned: no finding asks for it")

    # -- rows whose machine is gone
    if allowed("RECONCILE_STUCK_ROWS"):
        rows = _plan_reconcile(inv, notes)
        actions += rows
        if not rows and not any(n.startswith("RECONCILE_STUCK_ROWS") for n in notes):
            notes.append("RECONCILE_STUCK_ROWS: already done: no row is stuck on a machine that is gone")

    # -- verification, last: it checks the fixes above on the real path
    if allowed("VERIFY_PROVISIONING") and (
        actions or "VERIFY_PROVISIONING" in critical_asks or "VERIFY_PROVISIONING" in wanted
    ):
        actions.append(_plan_verify(inv, asked.get("VERIFY_PROVISIONING", []), [a.code for a in actions]))
    elif allowed("VERIFY_PROVISIONING"):
        notes.append("VERIFY_PROVISIONING: not needed: nothing is planned and no critical finding asks for it")
    if not actions and not notes:
        notes.append("nothing to do: no finding calls for a change")
    return Plan(app=app, target=e.target, strategy=strategy, actions=actions, notes=notes, generated_at=iso(e.now))


def _why(finding_codes: list[str], named: list[str]) -> str:
    if finding_codes:
        return "asked for by " + ", ".join(finding_codes)
    return "named with --fix " + " ".join(named)


def _image_facts(e: Any) -> dict[str, Any]:
    """The secret, the current release and :latest as the investigation read them."""
    release = e.current_release()
    latest_ref = f"{FLY_REGISTRY}/{e.app}:latest"
    secret = e.docker_image()
    digest, ref = secret["digest"], secret["ref"]
    rel_image = None if release is None or pd.isna(release["image"]) else str(release["image"])
    rel_exists, rel_digest = e.head(rel_image)
    latest_exists, latest_digest = e.head(latest_ref)
    return {
        "secret_digest": digest,
        "secret_ref": ref,
        "release_version": None if release is None else int(release["version"]),
        "release_image": rel_image,
        "release_exists": rel_exists,
        "release_digest": rel_digest,
        "latest_ref": latest_ref,
        "latest_exists": latest_exists,
        "latest_digest": latest_digest,
    }


def _release_problem(f: dict[str, Any]) -> str | None:
    if f["release_version"] is None or not f["release_image"]:
        return "not planned: the app has no current release with an image to point at"
    if f["release_exists"] is False:
        return f"not planned: release v{f['release_version']}'s image {f['release_image']} does not resolve in the registry (pruned?); fixing to it would make every create fail"
    return None


def _secret_text(digest: str | None, ref: str | None) -> str:
    if digest is None:
        return "unset (provisioning falls back to :latest)"
    return f"{ref} ({_short(digest)})" if ref else f"digest {_short(digest)} (matches no known image)"


def _plan_pin(app: str, f: dict[str, Any], strategy: str, why: str) -> Action | str:
    problem = _release_problem(f)
    if problem:
        return problem
    rel = parse_image_ref(f["release_image"])
    if strategy == "pin-digest":
        if not f["release_digest"]:
            return "not planned: the release image's digest is unknown, so it cannot be pinned by digest"
        ref = f"{rel.registry}/{rel.repository}@{f['release_digest']}"
    else:
        ref = f["release_image"]
    if f["secret_digest"] == secret_digest(ref):
        return f"already done: {SECRET} already points at {ref}"
    read = {k: f[k] for k in ("secret_digest", "secret_ref", "release_version", "release_image", "release_digest")}
    return Action(
        code="PIN_SECRET_TO_RELEASE",
        target=f"secret:{SECRET}",
        current=_secret_text(f["secret_digest"], f["secret_ref"]),
        new=f"{ref} (release v{f['release_version']}, {_short(secret_digest(ref))})",
        precondition=f"{SECRET} digest still {_short(f['secret_digest']) if f['secret_digest'] else 'unset'}; release v{f['release_version']} still current; its image still resolves",
        risk="low: the next provisioning uses the release's image; undo by setting the old value again",
        reason=why,
        read=read,
        desired={"name": SECRET, "ref": ref, "digest": secret_digest(ref)},
    )


def _plan_tag_latest(app: str, f: dict[str, Any], strategy: str, why: str) -> Action | str:
    problem = _release_problem(f)
    if problem:
        return problem
    if not f["release_digest"]:
        return "not planned: the release image's digest is unknown"
    if f["latest_digest"] == f["release_digest"]:
        return f"already done: {f['latest_ref']} is already release v{f['release_version']}'s image ({_short(f['release_digest'])})"
    read = {k: f[k] for k in ("latest_ref", "latest_digest", "release_version", "release_image", "release_digest")}
    return Action(
        code="TAG_LATEST",
        target=f"image:{f['latest_ref']}",
        current=_short(f["latest_digest"]) if f["latest_digest"] else "missing (MANIFEST_UNKNOWN)",
        new=f"{_short(f['release_digest'])} = {f['release_image']} (release v{f['release_version']})",
        precondition=f":latest still {_short(f['latest_digest']) if f['latest_digest'] else 'missing'}; release v{f['release_version']} still current with digest {_short(f['release_digest'])}",
        risk="medium: anything pulling :latest gets the release's image; a pruned tag breaks it again (pinning is sturdier)",
        reason=why,
        read=read,
        desired={"ref": f["latest_ref"], "digest": f["release_digest"]},
    )


def _plan_unset(app: str, f: dict[str, Any], strategy: str, why: str) -> Action | str:
    if f["secret_digest"] is None:
        return f"already done: {SECRET} is not set"
    problem = _release_problem(f)
    if problem:
        return problem
    read = {
        k: f[k]
        for k in ("secret_digest", "secret_ref", "latest_ref", "release_version", "release_image", "release_digest")
    }
    return Action(
        code="UNSET_SECRET",
        target=f"secret:{SECRET}",
        current=_secret_text(f["secret_digest"], f["secret_ref"]),
        new=f"unset: provisioning uses {f['latest_ref']}",
        precondition=f"{SECRET} digest still {_short(f['secret_digest'])}; {f['latest_ref']} resolves to release v{f['release_version']}'s digest {_short(f['release_digest'])}",
        risk=f"medium: provisioning then depends on :latest; only {SECRET} is deleted, never any other secret",
        reason=why,
        read=read,
        desired={"name": SECRET, "set": False, "falls_back_to": f["latest_ref"]},
    )


def _plan_reconcile(inv: Any, notes: list[str]) -> list[Action]:
    """One action per row a finding says is stuck or drifting and whose machine is gone."""
    e = inv.evidence
    machines = e.machines.set_index("machine_id") if not e.machines.empty else None
    asking: dict[str, list[Any]] = {}  # row id -> the findings that ask to reconcile it
    for f in inv.findings:
        if "RECONCILE_STUCK_ROWS" in f.fixes and f.facts.get("row") is not None:
            asking.setdefault(str(f.facts["row"]["id"]), []).append(f)
    actions = []
    for row_id, found in asking.items():
        row = found[0].facts["row"]
        mid = None if pd.isna(row["fly_machine_id"]) else str(row["fly_machine_id"])
        m = machines.loc[mid] if machines is not None and mid in machines.index else None
        state = None if m is None else str(m["state"])
        if state is not None and state not in GONE_STATES:
            # Never for a machine that runs (or may still come up): the DB may be right soon.
            notes.append(f"RECONCILE_STUCK_ROWS: row {row_id} not planned: machine {mid} is {state}")
            continue
        if row["status"] == "failed":
            continue
        fate = _machine_fate(e, mid, state)
        raw = None if pd.isna(row["updated_at_raw"]) else str(row["updated_at_raw"])
        table = str(row["table"]) if "table" in row and not pd.isna(row["table"]) else "machines"
        actions.append(
            Action(
                code="RECONCILE_STUCK_ROWS",
                target=f"db_row:{row_id}",
                current=f"status {row['status']} since {raw} (machine {mid}: {state or 'not found'})",
                new="status failed, error: " + fate,
                precondition=f"row still {row['status']} with updated_at {raw}; machine {mid} still gone",
                risk="low: one row, guarded by its status and updated_at; the app treats it as a failed session",
                reason="asked for by " + ", ".join(sorted({f.code for f in found})),
                read={
                    "table": table,
                    "row_id": row_id,
                    "status": str(row["status"]),
                    "updated_at_raw": raw,
                    "machine_id": mid,
                    "machine_state": state,
                },
                desired={"status": "failed", "error": fate},
            )
        )
    return actions


def _machine_fate(e: Any, mid: str | None, state: str | None) -> str:
    """One sentence saying what became of the machine, from its events."""
    if mid is None:
        return "the row names no machine"
    if state is None:
        return f"machine {mid} does not exist on Fly (not found by id)"
    evs = e.machine_events[e.machine_events["machine_id"] == mid].sort_values("time")
    exit_ = evs[evs["type"] == "exit"]
    destroy = evs[evs["type"] == "destroy"]
    failed = evs[evs["status"].isin(["launch_failed", "failed"])]
    parts = []
    if not exit_.empty:
        x = exit_.iloc[-1]
        code = "unknown" if pd.isna(x["exit_code"]) else int(x["exit_code"])
        parts.append(f"machine {mid} exited with code {code} at {iso(x['time'])}")
    elif not failed.empty:
        x = failed.iloc[-1]
        err = "" if pd.isna(x["error"]) else f" ({x['error']})"
        parts.append(f"machine {mid} never started{err}")
    else:
        parts.append(f"machine {mid} is {state}")
    if not destroy.empty:
        d = destroy.iloc[-1]
        by = "auto-destroyed" if (not exit_.empty and d["source"] != "user") else "destroyed"
        parts.append(f"was {by} at {iso(d['time'])}")
    return " and ".join(parts)


def _plan_verify(inv: Any, asked_by: list[str], before: list[str]) -> Action:
    e = inv.evidence
    rows = e.machine_rows.dropna(subset=["created_at"]).sort_values("created_at")
    region = "sjc" if rows.empty or pd.isna(rows.iloc[-1]["region"]) else str(rows.iloc[-1]["region"])
    table = str(rows.iloc[-1]["table"]) if not rows.empty and not pd.isna(rows.iloc[-1]["table"]) else None
    why = "asked for by " + ", ".join(dict.fromkeys(asked_by)) if asked_by else "checks the fixes above"
    return Action(
        code="VERIFY_PROVISIONING",
        target=f"function:{FUNCTION}",
        current="provisioning last failed" if any(f.severity == "critical" for f in inv.findings) else "not verified",
        new=f"a canary machine in {region} reaches started and its row running; then it is destroyed",
        precondition="the fixes before it applied or already done",
        risk="low: creates one short-lived machine (user vyxops-verify-…) and one row, cleaned up; runs on every apply",
        reason=why + (f" (after {', '.join(dict.fromkeys(before))})" if before else ""),
        read={"function": FUNCTION, "region": region, "table": table},
        desired={"machine": "started, then destroyed", "row": "running, then destroyed"},
    )


# --------------------------------------------------------------------------- applying


@dataclass
class _Ctx:
    session: Any
    app: str
    table: str
    verification: dict[str, Any] | None = None


def apply_plan(
    session: Any,
    plan: Plan,
    *,
    dry_run: bool = True,
    confirm: str | None = None,
    app: str,
    audit_log: Path | None = None,
    who: str | None = None,
) -> Result:
    """Apply ``plan`` on ``session``'s target, or with ``dry_run`` (the default) change nothing.

    Applying needs ``dry_run=False`` and ``confirm == app`` (else InputError naming
    --confirm, before any call). Each action checks its precondition right before it
    acts; the first failure stops the plan and the rest are reported not run. Every
    applied or failed action appends one line to the audit log (``audit_log``, else
    ``$VYXOPS_AUDIT_LOG``, else ``.vyxops/audit.jsonl``).
    """
    if app != plan.app:
        raise InputError("app", f"the plan is for {plan.app!r}, not {app!r}", allowed=plan.app)
    if dry_run:
        outcomes = [
            Outcome(a.code, a.target, "planned", "dry run: nothing changed", a.read, a.desired) for a in plan.actions
        ]
        return Result(
            app=app,
            target=plan.target,
            dry_run=True,
            actions=outcomes,
            finished_at=iso(session.now()),
            notes=list(plan.notes),
        )
    if confirm != app:
        raise InputError(
            "--confirm", f"applying changes {app!r}: pass --confirm {app} (confirm={app!r}) to apply", allowed=app
        )
    log_path = Path(audit_log) if audit_log is not None else config.audit_log_path()
    # Open the log before the first call: a change that cannot be logged is not made.
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8"):
        pass
    operator = who or os.environ.get("VYXOPS_OPERATOR") or _user()
    ctx = _Ctx(session=session, app=app, table=getattr(session, "machines_table", "machines"))
    result = Result(app=app, target=plan.target, dry_run=False, actions=[], audit_log=log_path, notes=list(plan.notes))
    stopped = False
    for action in plan.actions:
        if stopped:
            result.actions.append(Outcome(action.code, action.target, "skipped", NOT_RUN, action.read, None))
            continue
        try:
            outcome = _APPLY[action.code](ctx, action)
        except PreconditionError as exc:
            outcome = Outcome(action.code, action.target, "skipped", exc.message, action.read, None)
        except (ApiError, TransportError) as exc:
            outcome = Outcome(action.code, action.target, "failed", exc.message, action.read, None)
        result.actions.append(outcome)
        if outcome.status in ("applied", "failed"):
            result.audit_lines.append(_audit(log_path, session, app, action, outcome, operator))
        if outcome.status == "failed":
            stopped = True
    result.verification = ctx.verification
    result.finished_at = iso(session.now())
    return result


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"


def _audit(path: Path, session: Any, app: str, action: Action, outcome: Outcome, who: str) -> dict[str, Any]:
    """Append one JSON line for an applied or failed action; redacted as a last guard."""
    line = {
        "time": iso(session.now()),
        "target": session.label,
        "app": app,
        "action": action.code,
        "entity": action.target,
        "before": _jsonable(outcome.before),
        "after": _jsonable(outcome.after),
        "result": outcome.status,
        "reason": outcome.reason,
        "who": who,
    }
    text = redact(json.dumps(line, sort_keys=True, ensure_ascii=False))
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return json.loads(text)


# -- reading the world again, right before acting


def _current_release(session: Any, app: str) -> dict[str, Any] | None:
    """The newest complete release, as frames.fetch_releases marks ``current``."""
    nodes = session.fly.releases(app, limit=10)
    for n in sorted(nodes, key=lambda n: n.get("version", 0), reverse=True):
        if n.get("status") == "complete":
            return n
    return None


def _secret_now(session: Any) -> str | None:
    for s in session.supabase.list_secrets():
        if s.get("name") == SECRET:
            return s.get("value")
    return None


def _check_release(session: Any, app: str, read: dict[str, Any]) -> dict[str, Any]:
    """Skip (PreconditionError) unless the planned release is still current and its image resolves."""
    rel = _current_release(session, app)
    if rel is None or rel.get("version") != read["release_version"]:
        now = "no complete release" if rel is None else f"v{rel.get('version')} ({rel.get('imageRef')})"
        raise PreconditionError(
            f"release moved since planning: {now} is current now, the plan was made for v{read['release_version']} ({read['release_image']}); re-plan"
        )
    if rel.get("imageRef") != read["release_image"]:
        raise PreconditionError(
            f"release v{read['release_version']} now names image {rel.get('imageRef')}, planned {read['release_image']}; re-plan"
        )
    head = session.fly.head_manifest(read["release_image"])
    if not head["exists"]:
        raise PreconditionError(
            f"release v{read['release_version']}'s image {read['release_image']} no longer resolves in the registry; fixing to it would make every create fail"
        )
    if read.get("release_digest") and head["digest"] != read["release_digest"]:
        raise PreconditionError(
            f"{read['release_image']} now resolves to {_short(head['digest'])}, planned {_short(read['release_digest'])} (the tag was re-pushed); re-plan"
        )
    return {"version": rel.get("version"), "image": rel.get("imageRef"), "digest": head["digest"]}


def _apply_pin(ctx: _Ctx, a: Action) -> Outcome:
    s = ctx.session
    ref, want = a.desired["ref"], a.desired["digest"]
    _check_release(s, ctx.app, a.read)
    digest = _secret_now(s)
    before = {"digest": digest, "ref": a.read.get("secret_ref") if digest == a.read["secret_digest"] else None}
    if digest == want:
        return Outcome(
            a.code, a.target, "skipped", f"already done: {SECRET} already points at {ref}", before, a.desired
        )
    if digest != a.read["secret_digest"]:
        raise PreconditionError(
            f"{SECRET} changed since planning: digest {_short(digest) if digest else 'unset'}, planned from {_short(a.read['secret_digest']) if a.read['secret_digest'] else 'unset'}; re-plan"
        )
    s.supabase.set_secrets([{"name": SECRET, "value": ref}])
    got = _secret_now(s)
    after = {"digest": got, "ref": ref if got == want else None}
    if got != want:
        return Outcome(
            a.code,
            a.target,
            "failed",
            f"{SECRET} read back as digest {_short(got) if got else 'unset'}, expected sha256({ref}) = {_short(want)}",
            before,
            after,
        )
    return Outcome(
        a.code,
        a.target,
        "applied",
        f"{SECRET} now points at {ref} (release v{a.read['release_version']}); read back {_short(got)}",
        before,
        after,
    )


def _apply_tag_latest(ctx: _Ctx, a: Action) -> Outcome:
    s = ctx.session
    rel = _check_release(s, ctx.app, a.read)
    latest = s.fly.head_manifest(a.read["latest_ref"])
    before = {"digest": latest["digest"] if latest["exists"] else None}
    if latest["exists"] and latest["digest"] == rel["digest"]:
        return Outcome(
            a.code,
            a.target,
            "skipped",
            f"already done: :latest is already release v{rel['version']}'s image ({_short(rel['digest'])})",
            before,
            a.desired,
        )
    if before["digest"] != a.read["latest_digest"]:
        raise PreconditionError(
            f":latest changed since planning: {_short(before['digest']) if before['digest'] else 'missing'}, planned from {_short(a.read['latest_digest']) if a.read['latest_digest'] else 'missing'}; re-plan"
        )
    body, media_type, digest = s.fly.get_manifest(a.read["release_image"])
    if digest and digest != rel["digest"]:
        raise PreconditionError(f"{a.read['release_image']} changed while reading it ({_short(digest)}); re-plan")
    repo = parse_image_ref(a.read["latest_ref"]).repository
    s.fly.put_manifest(repo, "latest", body, media_type)
    check = s.fly.head_manifest(a.read["latest_ref"])
    after = {"digest": check["digest"]}
    if check["digest"] != rel["digest"]:
        return Outcome(
            a.code,
            a.target,
            "failed",
            f":latest resolves to {_short(check['digest'])} after the PUT, expected {_short(rel['digest'])}",
            before,
            after,
        )
    return Outcome(
        a.code,
        a.target,
        "applied",
        f":latest now resolves to release v{rel['version']}'s image ({_short(rel['digest'])})",
        before,
        after,
    )


def _apply_unset(ctx: _Ctx, a: Action) -> Outcome:
    s = ctx.session
    digest = _secret_now(s)
    before = {"digest": digest, "ref": a.read.get("secret_ref") if digest == a.read["secret_digest"] else None}
    if digest is None:
        return Outcome(a.code, a.target, "skipped", f"already done: {SECRET} is not set", before, a.desired)
    if digest != a.read["secret_digest"]:
        raise PreconditionError(
            f"{SECRET} changed since planning: digest {_short(digest)}, planned from {_short(a.read['secret_digest'])}; re-plan"
        )
    rel = _check_release(s, ctx.app, a.read)
    latest = s.fly.head_manifest(a.read["latest_ref"])
    if not latest["exists"] or latest["digest"] != rel["digest"]:
        now = _short(latest["digest"]) if latest["exists"] else "missing"
        raise PreconditionError(
            f"not unset: {a.read['latest_ref']} is {now}, not release v{rel['version']}'s image {_short(rel['digest'])}; "
            "unsetting would make provisioning fall back to it (apply TAG_LATEST first)"
        )
    s.supabase.delete_secrets([SECRET])  # by name: never an empty list, which would mean every secret
    got = _secret_now(s)
    after = {"digest": got, "set": got is not None}
    if got is not None:
        return Outcome(
            a.code, a.target, "failed", f"{SECRET} is still set after the delete (digest {_short(got)})", before, after
        )
    return Outcome(
        a.code,
        a.target,
        "applied",
        f"{SECRET} unset: provisioning uses {a.read['latest_ref']} = release v{rel['version']}",
        before,
        after,
    )


def _read_row(s: Any, table: str, row_id: str) -> dict[str, Any] | None:
    rows = s.supabase.select_all(table, filters=[("id", "eq", row_id)]).rows
    return rows[0] if rows else None


def _same_time(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    try:
        return pd.Timestamp(a) == pd.Timestamp(b)
    except ValueError:
        return a == b


def _apply_reconcile(ctx: _Ctx, a: Action) -> Outcome:
    s = ctx.session
    r = a.read
    table, row_id = r["table"], r["row_id"]
    row = _read_row(s, table, row_id)
    if row is None:
        raise PreconditionError(f"row {row_id} no longer exists in {table}")
    before = {"status": row.get("status"), "updated_at": row.get("updated_at"), "error": row.get("error")}
    if row.get("status") == "failed":
        return Outcome(a.code, a.target, "skipped", f"already done: row {row_id} is failed", before, a.desired)
    if row.get("status") != r["status"] or not _same_time(row.get("updated_at"), r["updated_at_raw"]):
        raise PreconditionError(_row_moved(row, r))
    mid = r["machine_id"]
    if mid:
        try:
            m = s.fly.get_machine(ctx.app, mid)
            state = m.get("state")
        except NotFoundError:
            state = None
        if state is not None and state not in GONE_STATES:
            raise PreconditionError(f"machine {mid} is {state} now, not gone: the row is left alone")
    stamp = iso(s.now()).replace("Z", "+00:00")
    values = {"status": "failed", "error": a.desired["error"], "updated_at": stamp}
    # The guard is the filter: the PATCH matches only the row as it was read.
    changed = s.supabase.update_rows(
        table, values, [("id", "eq", row_id), ("status", "eq", r["status"]), ("updated_at", "eq", r["updated_at_raw"])]
    )
    if not changed:
        now = _read_row(s, table, row_id)
        raise PreconditionError(
            _row_moved(now, r) if now else f"row {row_id} was deleted while it was being reconciled"
        )
    got = changed[0]
    after = {"status": got.get("status"), "updated_at": got.get("updated_at"), "error": got.get("error")}
    return Outcome(a.code, a.target, "applied", f"row {row_id} marked failed: {a.desired['error']}", before, after)


def _row_moved(row: dict[str, Any], read: dict[str, Any]) -> str:
    return (
        f"row {read['row_id']} changed since it was read: now status {row.get('status')} updated_at {row.get('updated_at')}, "
        f"planned from status {read['status']} updated_at {read['updated_at_raw']}; left alone"
    )


def _apply_verify(ctx: _Ctx, a: Action) -> Outcome:
    """Invoke provisioning as a user would, wait for started and DB running, then clean up.

    Not idempotent by nature: it runs on every apply, and leaves nothing lasting
    behind (the canary machine is destroyed, its row marked ``destroyed``).
    """
    s = ctx.session
    region = a.read.get("region") or "sjc"
    table = a.read.get("table") or ctx.table
    user_id = "vyxops-verify-" + s.now().strftime("%Y%m%d%H%M%S")
    seen: dict[str, Any] = {"user_id": user_id, "region": region, "started_at": iso(s.now())}
    ctx.verification = seen
    status, body = s.supabase.invoke(FUNCTION, {"user_id": user_id, "region": region})
    seen["invoke_status"] = status
    if status != 200:
        seen["function_answer"] = _brief(body)
        return Outcome(
            a.code,
            a.target,
            "failed",
            f"{FUNCTION} answered {status}: {_brief(body)}; no machine was provisioned",
            None,
            dict(seen),
        )
    mid = body.get("machine_id") or body.get("id") if isinstance(body, dict) else None
    seen["machine_id"] = mid
    seen["image"] = body.get("image") if isinstance(body, dict) else None
    if not mid:
        return Outcome(
            a.code,
            a.target,
            "failed",
            f"{FUNCTION} answered 200 without a machine id: {_brief(body)}",
            None,
            dict(seen),
        )

    problem = _wait_started(s, ctx.app, mid, seen)
    row = None
    if problem is None:
        row, problem = _wait_row_running(s, ctx.app, table, mid, seen)
    cleanup = _cleanup(s, ctx.app, table, mid, row, problem, seen)
    seen["finished_at"] = iso(s.now())
    if problem is not None:
        return Outcome(
            a.code, a.target, "failed", f"provisioning did not work: {problem}; cleanup: {cleanup}", None, dict(seen)
        )
    if not seen.get("cleaned_up"):
        return Outcome(
            a.code,
            a.target,
            "failed",
            f"provisioning works (machine {mid} started, row running) but cleanup failed: {cleanup}",
            None,
            dict(seen),
        )
    return Outcome(
        a.code,
        a.target,
        "applied",
        f"provisioning works: machine {mid} reached started and its row running in {seen['waited_s']:.0f} s; {cleanup}",
        None,
        dict(seen),
    )


def _wait_started(s: Any, app: str, mid: str, seen: dict[str, Any]) -> str | None:
    """Wait (≤ VERIFY_START_BUDGET_S) for the machine to start; None when it did, else what was seen."""
    t0 = s.clock.now()
    while True:
        try:
            got = s.fly.wait_machine(app, mid, "started", timeout_s=60)
        except NotFoundError:  # gone before it started (e.g. a failed pull, then destroyed)
            seen["machine_state"] = _machine_state(s, app, mid, seen)
            return f"machine {mid} never reached started: {seen.get('machine_story') or seen['machine_state']}"
        if got is not None:
            seen["machine_started_at"] = iso(s.now())
            seen["machine_state"] = "started"
            return None
        if s.clock.now() - t0 >= VERIFY_START_BUDGET_S:
            state = _machine_state(s, app, mid, seen)
            seen["machine_state"] = state
            return f"machine {mid} did not reach started within {VERIFY_START_BUDGET_S:.0f} s (state {state})"


def _wait_row_running(
    s: Any, app: str, table: str, mid: str, seen: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """Poll the DB row once a second (≤ VERIFY_DB_BUDGET_S) for ``running``; stop early if the machine is gone."""
    t0 = s.clock.now()
    polls = 0
    row: dict[str, Any] | None = None
    while True:
        rows = s.supabase.select_all(table, filters=[("fly_machine_id", "eq", mid)]).rows
        row = rows[0] if rows else None
        polls += 1
        seen["row_status"] = row.get("status") if row else None
        seen["row_id"] = row.get("id") if row else None
        waited = s.clock.now() - t0
        if row is not None and row.get("status") == "running":
            seen["waited_s"] = round(waited, 1)
            return row, None
        if polls % VERIFY_MACHINE_CHECK_EVERY == 0:
            state = _machine_state(s, app, mid, seen)
            seen["machine_state"] = state
            if state in GONE_STATES or state == "not found":
                return (
                    row,
                    f"machine {mid} reached started, then {seen.get('machine_story') or state}; its row stayed {seen['row_status'] or 'absent'}",
                )
        if waited >= VERIFY_DB_BUDGET_S:
            state = _machine_state(s, app, mid, seen)
            seen["machine_state"] = state
            seen["waited_s"] = round(waited, 1)
            return (
                row,
                f"machine {mid} is {state} but its row is {seen['row_status'] or 'absent'} after {VERIFY_DB_BUDGET_S:.0f} s (the app never reported running)",
            )
        s.clock.sleep(1)


def _machine_state(s: Any, app: str, mid: str, seen: dict[str, Any]) -> str:
    """The machine's state now; records its last exit in ``seen["machine_story"]``."""
    try:
        m = s.fly.get_machine(app, mid)
    except NotFoundError:
        return "not found"
    state = str(m.get("state"))
    for ev in m.get("events") or []:  # newest first
        x = ((ev.get("request") or {}).get("exit_event")) or None
        if ev.get("type") == "exit" and x:
            seen["exit_code"] = x.get("exit_code")
            seen["machine_story"] = (
                f"exited with code {x.get('exit_code')} (requested_stop={x.get('requested_stop')}) and is {state}"
            )
            break
        if ev.get("status") in ("launch_failed", "failed"):
            seen["machine_story"] = (
                f"failed to launch ({(ev.get('request') or {}).get('error') or ev.get('status')}) and is {state}"
            )
            break
    return state


def _cleanup(
    s: Any, app: str, table: str, mid: str, row: dict[str, Any] | None, problem: str | None, seen: dict[str, Any]
) -> str:
    """Stop and destroy the canary, then mark its row so no detector mistakes it for a live session.

    The row becomes ``destroyed`` (the machine was removed on purpose) when provisioning
    worked, ``failed`` with what was seen when it did not — an engineer reading the table
    then sees why the canary is gone; rows cannot be deleted through vyxops.
    """
    done: list[str] = []
    try:
        state = _machine_state(s, app, mid, {})
        if state == "started":
            try:
                s.fly.stop_machine(app, mid)
                done.append("stopped")
            except ApiError:
                pass  # destroy with force below takes care of it
        if state not in ("destroyed", "not found"):
            try:
                s.fly.destroy_machine(app, mid, force=True)
            except NotFoundError:
                pass  # already gone: what we wanted
        final = _machine_state(s, app, mid, {})
        seen["machine_final_state"] = final
        if final not in ("destroyed", "not found"):
            return f"machine {mid} is still {final}: destroy it with `fly machines destroy --force {mid}`"
        done.append(f"machine {mid} destroyed")
        rows = s.supabase.select_all(table, filters=[("fly_machine_id", "eq", mid)]).rows
        for r in rows:
            status = "failed" if problem else "destroyed"
            error = f"vyxops VERIFY_PROVISIONING canary: {problem}" if problem else None
            stamp = iso(s.now()).replace("Z", "+00:00")
            s.supabase.update_rows(
                table,
                {"status": status, "error": error, "updated_at": stamp},
                [("id", "eq", r["id"]), ("fly_machine_id", "eq", mid)],
            )
            done.append(f"row {r['id']} marked {status}")
            seen["row_final_status"] = status
        seen["cleaned_up"] = True
    except (ApiError, TransportError) as exc:
        seen["cleaned_up"] = False
        return f"{', '.join(done) or 'nothing done'}; then {exc.message}"
    return ", ".join(done)


_APPLY: dict[str, Callable[[_Ctx, Action], Outcome]] = {
    "PIN_SECRET_TO_RELEASE": _apply_pin,
    "TAG_LATEST": _apply_tag_latest,
    "UNSET_SECRET": _apply_unset,
    "RECONCILE_STUCK_ROWS": _apply_reconcile,
    "VERIFY_PROVISIONING": _apply_verify,
}


# --------------------------------------------------------------------------- helpers


def _short(digest: str | None) -> str:
    if not digest:
        return "none"
    d = str(digest)
    head, _, tail = d.partition(":")
    return f"{head}:{tail[:12]}…" if tail else f"{d[:12]}…"


def _jsonable(value: Any) -> Any:
    """Plain JSON types only (pandas NA and timestamps become None/ISO strings)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, pd.Timestamp):
        return iso(value)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, (int, float)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _brief(value: Any, limit: int = 160) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(_jsonable(value), ensure_ascii=False, sort_keys=True)
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _write_json(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path

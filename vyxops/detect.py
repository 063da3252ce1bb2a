"""Detectors and the ranking that names the root cause (SPEC.md "Findings").

Each detector is a small function ``(Evidence, Thresholds) -> list[Finding]`` that
reads frames only. :func:`rank` picks the root cause by what happened — the causal
chain secret → image → machine → exit/destroy → DB row — not by detector order,
and :func:`findings_document` renders ``findings.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from vyxops.evidence import IMAGE_IN_TEXT, Evidence
from vyxops.images import FLY_REGISTRY
from vyxops.timeutil import iso

FINDINGS_SCHEMA = "vyxops.findings/1"
TRANSITIONAL = ("starting", "provisioning", "pending", "creating", "stopping")
CODES = (
    "IMAGE_TAG_MISSING",
    "MACHINE_CREATE_REJECTED",
    "MACHINE_EXITED_AUTO_DESTROYED",
    "MACHINE_LAUNCH_FAILED",
    "DB_STATUS_STUCK",
    "DB_FLY_STATE_DRIFT",
    "SECRET_IMAGE_NOT_CURRENT_RELEASE",
    "SECRET_DIGEST_UNMATCHED",
    "LATEST_TAG_MISSING",
    "LATEST_TAG_STALE",
)


@dataclass
class Thresholds:
    """Tunable limits; defaults suit per-user session machines."""

    stuck_after_minutes: float = 10.0  # a row may sit in a transitional status this long
    drift_after_minutes: float = 5.0  # Fly and the DB may disagree this long (the app's callback)


@dataclass
class Finding:
    code: str
    severity: str  # critical | warning | info
    title: str
    entity: str
    evidence: list[dict[str, str]]
    fixes: list[str]
    facts: dict[str, Any] = field(default_factory=dict)  # for the ranking and the summary; not serialised

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("facts")
        return d


def ev(source: str, time: Any, detail: str) -> dict[str, str]:
    return {"source": source, "time": iso(time) if time is not None and not pd.isna(time) else "", "detail": detail}


# --------------------------------------------------------------------------- the secret and the registry


def _secret_state(e: Evidence) -> dict[str, Any]:
    """The image provisioning uses: DOCKER_IMAGE's match, or :latest when the secret is unset."""
    s = dict(e.docker_image())
    if not s["set"]:
        s["ref"] = f"{FLY_REGISTRY}/{e.app}:latest"
    return s


def detect_secret(e: Evidence, t: Thresholds) -> list[Finding]:
    """SECRET_IMAGE_NOT_CURRENT_RELEASE / SECRET_DIGEST_UNMATCHED from the secret's digest."""
    s = _secret_state(e)
    if not s["set"]:
        return []
    if s["ref"] is None:
        return [
            Finding(
                "SECRET_DIGEST_UNMATCHED",
                "warning",
                "DOCKER_IMAGE matches no known image reference",
                "secret:DOCKER_IMAGE",
                [
                    ev(
                        "supabase.secrets",
                        s["updated_at"],
                        f"DOCKER_IMAGE digest {s['digest'][:16]}… matches none of {s['tried']} candidate references (release images, :latest, machine configs, DB rows, logs)",
                    )
                ],
                ["PIN_SECRET_TO_RELEASE"],
                {"digest": s["digest"]},
            )
        ]
    release = e.current_release()
    if release is None:
        return []
    ref, rel_image = s["ref"], str(release["image"])
    exists, digest = e.head(ref)
    rel_exists, rel_digest = e.head(rel_image)
    if ref == rel_image or exists is False or (digest and digest == rel_digest):
        return []  # the release's image (by tag or digest), or missing: IMAGE_TAG_MISSING speaks for it
    evidence = [
        ev("supabase.secrets", s["updated_at"], f"DOCKER_IMAGE digest {s['digest'][:16]}… = sha256({ref!r})"),
        ev("fly.releases", release["created_at"], f"current release v{release['version']} runs {rel_image}"),
    ]
    if exists:
        evidence.append(ev("fly.registry", None, f"HEAD {ref} → 200, {digest}: the tag exists"))
    return [
        Finding(
            "SECRET_IMAGE_NOT_CURRENT_RELEASE",
            "warning",
            f"DOCKER_IMAGE points at {ref}, not release v{release['version']}'s image",
            "secret:DOCKER_IMAGE",
            evidence,
            ["PIN_SECRET_TO_RELEASE", "VERIFY_PROVISIONING"],
            {
                "ref": ref,
                "release_image": rel_image,
                "release_version": int(release["version"]),
                "updated_at": s["updated_at"],
                "release_created_at": release["created_at"],
            },
        )
    ]


def detect_image_refs(e: Evidence, t: Thresholds) -> list[Finding]:
    """IMAGE_TAG_MISSING, LATEST_TAG_MISSING, LATEST_TAG_STALE for the image provisioning uses."""
    s = _secret_state(e)
    out: list[Finding] = []
    release = e.current_release()
    latest = f"{FLY_REGISTRY}/{e.app}:latest"
    ref = s["ref"]
    rejects = _rejections(e)
    if ref is not None:
        exists, _ = e.head(ref)
        if exists is False:
            related = [r for r in rejects if ref in r["message"]]
            evidence = [ev("fly.registry", None, f"HEAD {ref} → 404 MANIFEST_UNKNOWN")]
            if s["set"]:
                evidence.insert(
                    0,
                    ev(
                        "supabase.secrets",
                        s["updated_at"],
                        f"DOCKER_IMAGE digest {s['digest'][:16]}… = sha256({ref!r})",
                    ),
                )
            else:
                evidence.insert(
                    0, ev("supabase.secrets", None, "DOCKER_IMAGE is not set: provision-machine falls back to :latest")
                )
            evidence += [ev("supabase.function_logs", r["time"], r["message"][:240]) for r in related[:3]]
            severity = "critical"  # provisioning uses this reference: every attempt is refused
            if ref == latest:
                ever = e.machines[e.machines["image_tag"] == "latest"]
                how = "was pruned (machines ran it before)" if not ever.empty else "was never tagged or was pruned"
                out.append(
                    Finding(
                        "LATEST_TAG_MISSING",
                        severity,
                        f"{latest} does not exist: it {how}",
                        f"image:{latest}",
                        evidence,
                        ["TAG_LATEST", "PIN_SECRET_TO_RELEASE", "VERIFY_PROVISIONING"],
                        {"ref": ref, "how": how, "secret_set": s["set"], "rejections": len(related)},
                    )
                )
            else:
                out.append(
                    Finding(
                        "IMAGE_TAG_MISSING",
                        severity,
                        f"{ref} does not resolve in the registry",
                        f"image:{ref}",
                        evidence,
                        ["PIN_SECRET_TO_RELEASE", "VERIFY_PROVISIONING"],
                        {"ref": ref, "updated_at": s["updated_at"], "rejections": len(related)},
                    )
                )
    # :latest against the current release, when something relies on it
    if release is not None and (not s["set"] or ref == latest):
        exists, digest = e.head(latest)
        _, rel_digest = e.head(str(release["image"]))
        if exists and rel_digest and digest != rel_digest:
            out.append(
                Finding(
                    "LATEST_TAG_STALE",
                    "warning",
                    f":latest is not release v{release['version']}'s image",
                    f"image:{latest}",
                    [
                        ev("fly.registry", None, f"{latest} → {digest}"),
                        ev(
                            "fly.releases",
                            release["created_at"],
                            f"v{release['version']} {release['image']} → {rel_digest}",
                        ),
                    ],
                    ["TAG_LATEST"],
                    {"ref": latest},
                )
            )
    return out


def _rejections(e: Evidence) -> list[dict[str, Any]]:
    """Function log lines where the Machines API refused a create (no machine was made)."""
    logs = e.function_logs
    text = logs["message"].fillna("")
    # One project may provision several apps: keep the lines about this app's images.
    mine = text.str.contains(f"{FLY_REGISTRY}/{e.app}:", regex=False) | text.str.contains(
        f"{FLY_REGISTRY}/{e.app}@", regex=False
    )
    hits = logs[text.str.contains(r"MANIFEST_UNKNOWN|Fly API error \(4\d\d\)", regex=True) & mine]
    return [dict(r) for _, r in hits.iterrows()]


def detect_create_rejected(e: Evidence, t: Thresholds) -> list[Finding]:
    """MACHINE_CREATE_REJECTED: provisioning attempts the Machines API refused."""
    rejects = _rejections(e)
    if not rejects:
        return []
    edge = e.function_logs[e.function_logs["source"] == "function_edge_logs"]
    evidence = []
    for r in rejects[:5]:
        inv = edge[edge["execution_id"] == r["execution_id"]]
        status = (
            f" (invocation answered {int(inv.iloc[0]['status_code'])})"
            if not inv.empty and not pd.isna(inv.iloc[0]["status_code"])
            else ""
        )
        evidence.append(ev("supabase.function_logs", r["time"], r["message"][:240] + status))
    return [
        Finding(
            "MACHINE_CREATE_REJECTED",
            "critical",
            f"{len(rejects)} provisioning attempt(s) refused by the Machines API; no machine was made",
            "function:provision-machine",
            evidence,
            ["VERIFY_PROVISIONING"],
            {
                "count": len(rejects),
                "first": rejects[0]["time"],
                "last": rejects[-1]["time"],
                "refs": sorted({ref for r in rejects for ref in IMAGE_IN_TEXT.findall(r["message"])}),
            },
        )
    ]


# --------------------------------------------------------------------------- machines and rows


def _machine_story(e: Evidence, machine_id: str) -> dict[str, Any]:
    evs = e.machine_events[e.machine_events["machine_id"] == machine_id].sort_values("time")

    def first(kind: str, status: str | None = None) -> pd.Series | None:
        hit = evs[evs["type"] == kind] if status is None else evs[evs["status"] == status]
        return None if hit.empty else hit.iloc[0]

    return {
        "events": evs,
        "launch": first("launch"),
        "start": first("start", "started"),
        "exit": first("exit"),
        "destroy": first("destroy", "destroyed"),
        "failed": first("", "launch_failed")
        if (evs["status"] == "launch_failed").any()
        else (first("", "failed") if (evs["status"] == "failed").any() else None),
    }


def _row_for(e: Evidence, machine_id: str) -> pd.Series | None:
    rows = e.machine_rows[e.machine_rows["fly_machine_id"] == machine_id]
    return None if rows.empty else rows.iloc[0]


def _stuck(e: Evidence, row: pd.Series | None, t: Thresholds) -> bool:
    return (
        row is not None
        and row["status"] in TRANSITIONAL
        and (e.now - row["updated_at"]) > pd.Timedelta(minutes=t.stuck_after_minutes)
    )


def _in_scope(e: Evidence) -> pd.DataFrame:
    m = e.machines
    if e.machine_id:
        m = m[m["machine_id"] == e.machine_id]
    # machines created in the window, or still referenced by a row
    referenced = set(e.machine_rows["fly_machine_id"].dropna())
    return m[((m["created_at"] >= e.since) & (m["created_at"] <= e.until)) | m["machine_id"].isin(referenced)]


def detect_machine_outcomes(e: Evidence, t: Thresholds) -> list[Finding]:
    """MACHINE_EXITED_AUTO_DESTROYED and MACHINE_LAUNCH_FAILED, one per machine."""
    out = []
    for _, m in _in_scope(e).iterrows():
        mid = m["machine_id"]
        st = _machine_story(e, mid)
        row = _row_for(e, mid)
        severity = "critical" if _stuck(e, row, t) or (row is not None and row["status"] == "running") else "warning"
        if st["start"] is None and (st["failed"] is not None or st["destroy"] is not None):
            end = st["failed"] if st["failed"] is not None else st["destroy"]
            err = end["error"] if not pd.isna(end["error"]) else "no start event"
            evidence = [
                ev(
                    "fly.events",
                    st["launch"]["time"] if st["launch"] is not None else m["created_at"],
                    f"machine {mid} launched with {m['image']}",
                )
            ]
            evidence.append(ev("fly.events", end["time"], f"never reached started: {err}"))
            if st["destroy"] is not None:
                evidence.append(ev("fly.events", st["destroy"]["time"], f"destroyed (state {m['state']})"))
            out.append(
                Finding(
                    "MACHINE_LAUNCH_FAILED",
                    severity,
                    f"machine {mid} never started and was destroyed",
                    f"machine:{mid}",
                    evidence,
                    ["RECONCILE_STUCK_ROWS"],
                    {"machine_id": mid, "image": m["image"], "digest": m["image_digest"], "story": st, "row": row},
                )
            )
            continue
        x = st["exit"]
        # requested_stop is a numpy bool (never `is True`): a stop someone asked for is not a failure
        if (
            st["start"] is not None
            and x is not None
            and not (not pd.isna(x["requested_stop"]) and bool(x["requested_stop"]))
            and st["destroy"] is not None
            and bool(m["auto_destroy"])
        ):
            code = "unknown" if pd.isna(x["exit_code"]) else int(x["exit_code"])
            evidence = [
                ev(
                    "fly.events",
                    st["launch"]["time"] if st["launch"] is not None else m["created_at"],
                    f"machine {mid} created with {m['image']} (auto_destroy={bool(m['auto_destroy'])}, restart={m['restart_policy']})",
                ),
                ev("fly.events", st["start"]["time"], "started: the image was pulled and ran"),
                ev(
                    "fly.events",
                    x["time"],
                    f"exited with code {code} (oom_killed={x['oom_killed']}, requested_stop={x['requested_stop']})",
                ),
                ev(
                    "fly.events",
                    st["destroy"]["time"],
                    "destroyed by auto_destroy: gone from `fly machines list` (visible with include_deleted=true)",
                ),
            ]
            fixes = ["RECONCILE_STUCK_ROWS"] if _stuck(e, row, t) else []
            out.append(
                Finding(
                    "MACHINE_EXITED_AUTO_DESTROYED",
                    severity,
                    f"machine {mid} exited with code {code} and auto_destroy removed it",
                    f"machine:{mid}",
                    evidence,
                    fixes + ["VERIFY_PROVISIONING"],
                    {
                        "machine_id": mid,
                        "image": m["image"],
                        "digest": m["image_digest"],
                        "code": code,
                        "story": st,
                        "row": row,
                    },
                )
            )
    return out


def detect_rows(e: Evidence, t: Thresholds) -> list[Finding]:
    """DB_STATUS_STUCK (a row in a transitional status too long) and DB_FLY_STATE_DRIFT."""
    out = []
    machines = e.machines.set_index("machine_id") if not e.machines.empty else None
    rows = e.machine_rows
    if e.machine_id:
        rows = rows[rows["fly_machine_id"] == e.machine_id]
    for _, row in rows.iterrows():
        mid = row["fly_machine_id"]
        m = machines.loc[mid] if machines is not None and mid in machines.index else None
        fly_state = None if m is None else m["state"]
        age = e.now - row["updated_at"]
        minutes = int(age.total_seconds() // 60)
        if _stuck(e, row, t):
            evidence = [
                ev(
                    "supabase.rows",
                    row["created_at"],
                    f"row {row['id']} for machine {mid} created with status {row['status']}",
                ),
                ev(
                    "supabase.rows",
                    row["updated_at"],
                    f"last updated {minutes} min before {iso(e.now)}; still {row['status']}",
                ),
            ]
            if fly_state is not None:
                evidence.append(ev("fly.machines", m["updated_at"], f"Fly says machine {mid} is {fly_state}"))
            gone = fly_state in (None, "destroyed", "stopped", "failed", "launch_failed")
            out.append(
                Finding(
                    "DB_STATUS_STUCK",
                    "critical",
                    f"row for machine {mid} has been {row['status']} for {minutes} min",
                    f"db_row:{row['id']}",
                    evidence,
                    ["RECONCILE_STUCK_ROWS"] if gone else [],
                    {"row": row, "minutes": minutes, "machine_state": fly_state},
                )
            )
        # drift: Fly says the machine is alive and the DB says otherwise, or the reverse
        alive = fly_state == "started"
        started_long = alive and (e.now - m["updated_at"]) > pd.Timedelta(minutes=t.drift_after_minutes)
        if (started_long and row["status"] != "running") or (
            row["status"] == "running" and fly_state in (None, "destroyed", "stopped")
        ):
            out.append(
                Finding(
                    "DB_FLY_STATE_DRIFT",
                    "critical",
                    f"Fly says machine {mid} is {fly_state or 'missing'}, the DB says {row['status']}",
                    f"machine:{mid}",
                    [
                        ev(
                            "fly.machines",
                            None if m is None else m["updated_at"],
                            f"machine {mid} state {fly_state or 'not found'}",
                        ),
                        ev("supabase.rows", row["updated_at"], f"row {row['id']} status {row['status']}"),
                    ],
                    [] if alive else ["RECONCILE_STUCK_ROWS"],
                    {"row": row, "machine_state": fly_state},
                )
            )
    return out


DETECTORS = (detect_secret, detect_image_refs, detect_create_rejected, detect_machine_outcomes, detect_rows)


def run_detectors(e: Evidence, thresholds: Thresholds | None = None) -> list[Finding]:
    """Every detector's findings, in a stable order (code, entity)."""
    t = thresholds or Thresholds()
    found = [f for d in DETECTORS for f in d(e, t)]
    return sorted(found, key=lambda f: (CODES.index(f.code), f.entity))


# --------------------------------------------------------------------------- ranking


def rank(e: Evidence, findings: list[Finding]) -> tuple[Finding | None, list[Finding]]:
    """Name the finding that explains the others, following the causal chain.

    Returns (root, findings) where the root is also escalated to critical. With no
    failure to explain, the root is None and no finding stays critical.
    """
    by = {c: [f for f in findings if f.code == c] for c in CODES}
    failures = by["MACHINE_EXITED_AUTO_DESTROYED"] + by["MACHINE_LAUNCH_FAILED"]
    # A failure whose row is settled and whose image provisioning no longer uses is history (e.g. after fixes).
    by["MACHINE_EXITED_AUTO_DESTROYED"] = [f for f in by["MACHINE_EXITED_AUTO_DESTROYED"] if _still_current(e, f)]
    by["MACHINE_LAUNCH_FAILED"] = [f for f in by["MACHINE_LAUNCH_FAILED"] if _still_current(e, f)]
    root: Finding | None = None
    if by["IMAGE_TAG_MISSING"]:
        root = by["IMAGE_TAG_MISSING"][0]
    elif by["LATEST_TAG_MISSING"]:
        root = by["LATEST_TAG_MISSING"][0]
    elif by["SECRET_IMAGE_NOT_CURRENT_RELEASE"] and any(
        f.facts["image"] == by["SECRET_IMAGE_NOT_CURRENT_RELEASE"][0].facts["ref"] for f in failures
    ):
        root = by["SECRET_IMAGE_NOT_CURRENT_RELEASE"][0]
    elif by["MACHINE_LAUNCH_FAILED"]:
        root = _latest(by["MACHINE_LAUNCH_FAILED"])
    elif by["DB_FLY_STATE_DRIFT"]:
        root = by["DB_FLY_STATE_DRIFT"][0]
    elif by["MACHINE_EXITED_AUTO_DESTROYED"]:
        root = _latest(by["MACHINE_EXITED_AUTO_DESTROYED"])
    elif [f for f in by["MACHINE_CREATE_REJECTED"] if _rejection_current(e, f)]:
        root = by["MACHINE_CREATE_REJECTED"][0]
    elif by["DB_STATUS_STUCK"]:
        root = by["DB_STATUS_STUCK"][0]
    if root is None:
        for f in findings:
            if f.severity == "critical":
                f.severity = "warning"
        return None, findings
    root.severity = "critical"
    return root, findings


def _still_current(e: Evidence, f: Finding) -> bool:
    """Whether a machine failure still explains something: its row is stuck/running, or provisioning still uses its image."""
    ref = _secret_state(e)["ref"]
    if f.severity == "critical" or ref is None:
        return True
    _, digest = e.head(ref)
    return f.facts["image"] == ref or (digest is not None and str(f.facts.get("digest")) == digest)


def _rejection_current(e: Evidence, f: Finding) -> bool:
    """Whether refused creates still explain something: they name no image, or the image provisioning uses now."""
    refs = f.facts.get("refs") or []
    return not refs or _secret_state(e)["ref"] in refs


def _latest(found: list[Finding]) -> Finding:
    return max(
        found,
        key=lambda f: (
            f.facts["story"]["launch"]["time"] if f.facts["story"]["launch"] is not None else pd.Timestamp(0, tz="UTC")
        ),
    )


def summarize(e: Evidence, root: Finding | None, findings: list[Finding]) -> str:
    """One paragraph naming the chain (secret → image → machine → exit/destroy → DB row) with times."""
    if root is None:
        return ""
    parts: list[str] = []
    failures = [f for f in findings if f.code in ("MACHINE_EXITED_AUTO_DESTROYED", "MACHINE_LAUNCH_FAILED")]
    stuck = {f.facts["row"]["fly_machine_id"]: f for f in findings if f.code == "DB_STATUS_STUCK"}
    if root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE":
        f = root.facts
        parts.append(
            f"Supabase secret DOCKER_IMAGE (updated {iso(f['updated_at'])}) points at {f['ref']} — its SHA-256 digest matches that reference — "
            f"not the current release v{f['release_version']}'s image {f['release_image']} (released {iso(f['release_created_at'])})."
        )
        parts.append(
            f"{f['ref']} exists in the registry, so the Machines API accepted the create (a missing tag is refused with 400 MANIFEST_UNKNOWN and no machine)."
        )
        parts += [_failure_sentence(x, stuck) for x in failures if x.facts["image"] == f["ref"]]
    elif root.code in ("IMAGE_TAG_MISSING", "LATEST_TAG_MISSING"):
        f = root.facts
        if root.code == "LATEST_TAG_MISSING":
            parts.append(
                f"DOCKER_IMAGE is {'set to' if f['secret_set'] else 'not set, so provision-machine falls back to'} {f['ref']}, which {f['how']}: the registry answers HEAD with 404 MANIFEST_UNKNOWN."
            )
        else:
            parts.append(
                f"DOCKER_IMAGE (updated {iso(f['updated_at'])}) points at {f['ref']} — its digest matches that reference — and the registry answers HEAD with 404 MANIFEST_UNKNOWN."
            )
        rej = [x for x in findings if x.code == "MACHINE_CREATE_REJECTED"]
        if rej:
            r = rej[0].facts
            parts.append(
                f"The Machines API refused {r['count']} create(s) with 400 MANIFEST_UNKNOWN between {iso(r['first'])} and {iso(r['last'])}: no machine was made and no DB row written; provision-machine answered 500."
            )
        release = e.current_release()
        if release is not None:
            parts.append(f"The current release v{release['version']} runs {release['image']}.")
    elif root.code in ("MACHINE_EXITED_AUTO_DESTROYED", "MACHINE_LAUNCH_FAILED"):
        release = e.current_release()
        img = root.facts["image"]
        _, rel_digest = e.head(str(release["image"])) if release is not None else (None, None)
        if release is not None and (img == release["image"] or (rel_digest and root.facts.get("digest") == rel_digest)):
            same = "" if img == release["image"] else f" (as {img}, same digest {rel_digest[:19]}…)"
            parts.append(
                f"Nothing points at a wrong image: machines run the current release v{release['version']}'s own image {release['image']}{same}, and it fails."
            )
        else:
            parts.append(f"Machine {root.facts['machine_id']} ran {img}.")
        parts += [_failure_sentence(x, stuck) for x in failures]
    elif root.code == "DB_FLY_STATE_DRIFT":
        row = root.facts["row"]
        parts.append(
            f"Fly says machine {row['fly_machine_id']} is {root.facts['machine_state']} while its DB row {row['id']} says {row['status']} "
            f"(created {iso(row['created_at'])}, last updated {iso(row['updated_at'])}): the machine runs but never reported back to the DB."
        )
    else:
        parts.append(root.title + ".")
    if e.notes:
        parts.append("Incomplete evidence: " + "; ".join(e.notes) + ".")
    return " ".join(p for p in parts if p)


def _failure_sentence(f: Finding, stuck: dict[str, Finding]) -> str:
    st = f.facts["story"]
    mid = f.facts["machine_id"]
    launch = iso(st["launch"]["time"]) if st["launch"] is not None else "?"
    if f.code == "MACHINE_EXITED_AUTO_DESTROYED":
        text = f"Machine {mid} was created at {launch}, started at {iso(st['start']['time'])}, its process exited with code {f.facts['code']} at {iso(st['exit']['time'])} and auto_destroy destroyed it at {iso(st['destroy']['time'])} — which is why `fly machines list` (without include_deleted) does not show it."
    else:
        end = st["failed"] if st["failed"] is not None else st["destroy"]
        text = f"Machine {mid} was created at {launch} with {f.facts['image']} but never started ({end['error'] if not pd.isna(end['error']) else end['status']}) and was destroyed at {iso(st['destroy']['time']) if st['destroy'] is not None else '?'}."
    s = stuck.get(mid)
    if s is not None:
        row = s.facts["row"]
        text += f" Its DB row {row['id']} has been `{row['status']}` since {iso(row['updated_at'])} ({s.facts['minutes']} min)."
    return text


def findings_document(e: Evidence, root: Finding | None, findings: list[Finding], summary: str) -> dict[str, Any]:
    """``findings.json`` (schema vyxops.findings/1)."""
    return {
        "schema": FINDINGS_SCHEMA,
        "target": e.target,
        "app": e.app,
        "generated_at": iso(e.now),
        "window": {"since": iso(e.since), "until": iso(e.until)},
        "root_cause": None if root is None else {"code": root.code, "summary": summary},
        "findings": [f.as_json() for f in findings],
    }

"""Gather everything an investigation looks at, for one app and one window, into frames.

This is the only place an investigation touches the platforms: detectors, the
timeline and the notebooks work on the :class:`Evidence` it returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vyxops import frames
from vyxops.errors import InputError
from vyxops.images import FLY_REGISTRY, secret_digest
from vyxops.timeutil import to_utc

IMAGE_IN_TEXT = re.compile(r"registry\.fly\.io/[a-z0-9._\-/]+(?::[A-Za-z0-9_.\-]+|@sha256:[0-9a-f]{64})")
DEFAULT_LOOKBACK = pd.Timedelta(hours=24)


@dataclass
class Evidence:
    """The frames of one investigation, with the window and the target's clock."""

    target: str
    app: str
    now: pd.Timestamp
    since: pd.Timestamp
    until: pd.Timestamp
    machine_id: str | None
    machines: pd.DataFrame
    machine_events: pd.DataFrame
    releases: pd.DataFrame
    manifests: pd.DataFrame
    fly_logs: pd.DataFrame
    machine_rows: pd.DataFrame
    secrets: pd.DataFrame
    functions: pd.DataFrame
    function_logs: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    _docker_image: dict[str, Any] | None = field(default=None, repr=False)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {
            name: getattr(self, name)
            for name in (
                "machines",
                "machine_events",
                "releases",
                "manifests",
                "fly_logs",
                "machine_rows",
                "secrets",
                "functions",
                "function_logs",
            )
        }

    def current_release(self) -> pd.Series | None:
        current = self.releases[self.releases["current"].fillna(False).astype(bool)]
        return None if current.empty else current.iloc[0]

    def manifest(self, ref: str) -> pd.Series | None:
        hit = self.manifests[self.manifests["ref"] == ref]
        return None if hit.empty else hit.iloc[0]

    def head(self, ref: str | None) -> tuple[bool | None, str | None]:
        """(exists, digest) of an image reference as the registry answered; (None, None) if not checked."""
        m = self.manifest(ref) if ref else None
        if m is None or pd.isna(m["exists"]):
            return None, None
        return bool(m["exists"]), (None if pd.isna(m["digest"]) else str(m["digest"]))

    def docker_image(self) -> dict[str, Any]:
        """What DOCKER_IMAGE points at, as far as digests tell (computed once).

        ``{"set", "digest", "updated_at", "ref"}``: ``ref`` is the candidate whose SHA-256
        equals the digest, or None when unset or when nothing matches; ``tried`` counts
        the candidates hashed.
        """
        if self._docker_image is None:
            row = self.secrets[self.secrets["name"] == "DOCKER_IMAGE"]
            if row.empty:
                self._docker_image = {"set": False, "digest": None, "updated_at": None, "ref": None, "tried": 0}
            else:
                digest = None if pd.isna(row.iloc[0]["digest"]) else str(row.iloc[0]["digest"])
                texts = self.function_logs["message"].dropna().tolist() + self.fly_logs["message"].dropna().tolist()
                refs = candidate_refs(self.app, self.releases, self.machines, self.machine_rows, texts)
                self._docker_image = {
                    "set": True,
                    "digest": digest,
                    "updated_at": row.iloc[0]["updated_at"],
                    "ref": match_secret(digest, refs, self.manifests),
                    "tried": len(refs),
                }
        return self._docker_image


def parse_window(now: pd.Timestamp, since: Any = None, until: Any = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The investigation window: ``until`` defaults to the target's now, ``since`` to 24 h before."""
    try:
        end = to_utc(until) if until not in (None, "") else now
        start = to_utc(since) if since not in (None, "") else end - DEFAULT_LOOKBACK
    except (ValueError, TypeError) as exc:
        raise InputError(
            "--since/--until", f"not a time: {exc}", allowed="RFC 3339, e.g. 2025-10-02T16:00:00Z"
        ) from None
    assert start is not None and end is not None
    if start >= end:
        raise InputError("--since/--until", f"since ({start}) must be before until ({end})")
    return start, end


def candidate_refs(
    app: str, releases: pd.DataFrame, machines: pd.DataFrame, rows: pd.DataFrame, texts: list[str]
) -> list[str]:
    """Every image reference the secret could point at: releases, :latest, configs, rows, logs."""
    refs: list[str] = []
    refs += [r for r in releases["image"].dropna().tolist()]
    refs.append(f"{FLY_REGISTRY}/{app}:latest")
    refs += machines["image"].dropna().tolist()
    refs += rows["image"].dropna().tolist()
    for text in texts:
        refs += IMAGE_IN_TEXT.findall(text or "")
    return list(dict.fromkeys(refs))


class ProjectReads:
    """The project-wide reads (functions, secrets, function logs), made once and shared.

    They do not depend on the app, and the Management API allows 120 requests a
    minute per endpoint: an audit of fifty apps reading them once per app would
    be refused half-way. An audit passes one of these to every app's evidence;
    a single investigation makes its own. Frames are handed out as copies.
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        self._frames: dict[tuple[Any, ...], pd.DataFrame] = {}

    def _once(self, key: tuple[Any, ...], fetch: Any) -> pd.DataFrame:
        if key not in self._frames:
            self._frames[key] = fetch()
        return self._frames[key].copy()

    def functions(self) -> pd.DataFrame:
        return self._once(("functions",), lambda: frames.fetch_functions(self.session))

    def secrets(self) -> pd.DataFrame:
        return self._once(("secrets",), lambda: frames.fetch_secrets(self.session))

    def function_logs(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return self._once(
            ("function_logs", start, end),
            lambda: frames.fetch_function_logs(self.session, start, end, functions=self.functions()),
        )


def collect_evidence(
    session: Any,
    app: str,
    *,
    since: Any = None,
    until: Any = None,
    machine_id: str | None = None,
    project: ProjectReads | None = None,
) -> Evidence:
    """Read both platforms for ``app`` over the window; each source is read once.

    ``project`` shares the project-wide reads between the apps of one audit.
    """
    if not app or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", app):
        raise InputError("--app", f"{app!r} is not a Fly app name", allowed="lower-case letters, digits and '-'")
    project = project or ProjectReads(session)
    now = session.now()
    start, end = parse_window(now, since, until)
    releases = frames.fetch_releases(session, app)
    functions = project.functions()
    secrets = project.secrets()
    rows = frames.fetch_machine_rows(session, filters=[("fly_app", "eq", app)])
    known_ids = rows["fly_machine_id"].dropna().tolist() + ([machine_id] if machine_id else [])
    machines, events = frames.fetch_machines(session, app, include_deleted=True, also_ids=known_ids)
    fn_logs = project.function_logs(start, end)
    fly_logs = frames.fetch_fly_logs(session, app, since=start)
    fly_logs = fly_logs[fly_logs["time"] <= end].reset_index(drop=True)
    refs = candidate_refs(
        app, releases, machines, rows, fn_logs["message"].dropna().tolist() + fly_logs["message"].dropna().tolist()
    )
    manifests = frames.fetch_manifests(session, refs)
    notes = [
        f"{df.attrs.get('frame')}: {df.attrs.get('note')}"
        for df in (releases, rows, machines, fn_logs, fly_logs)
        if not df.attrs.get("complete", True)
    ]
    if machine_id and machine_id not in set(machines["machine_id"]):
        notes.append(f"machine {machine_id} was not found in app {app}, even by id")
    return Evidence(
        target=session.label,
        app=app,
        now=now,
        since=start,
        until=end,
        machine_id=machine_id,
        machines=machines,
        machine_events=events,
        releases=releases,
        manifests=manifests,
        fly_logs=fly_logs,
        machine_rows=rows,
        secrets=secrets,
        functions=functions,
        function_logs=fn_logs,
        notes=notes,
    )


def match_secret(digest: str | None, refs: list[str], manifests: pd.DataFrame | None = None) -> str | None:
    """The image reference whose SHA-256 equals the secret's digest, or None.

    Digest-pinned forms (``repo@sha256:…``) of every known manifest are tried too.
    """
    if not digest:
        return None
    tried = list(refs)
    if manifests is not None and not manifests.empty:
        for _, m in manifests[manifests["exists"].fillna(False).astype(bool)].iterrows():
            tried.append(f"{m['registry']}/{m['repository']}@{m['digest']}")
    for ref in dict.fromkeys(tried):
        if secret_digest(ref) == digest:
            return ref
    return None

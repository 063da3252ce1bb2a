"""Gather everything an investigation looks at, for one app and one window, into frames.

This is the only place an investigation touches the platforms: detectors, the
timeline and the notebooks work on the :class:`Evidence` it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vyxops import facts, frames
from vyxops.checks import check_app, check_machine_id, check_time
from vyxops.coverage import Gap
from vyxops.errors import ApiError, AuthError, InputError, NotFoundError, TransportError
from vyxops.images import FLY_REGISTRY, secret_digest
from vyxops.progress import stages
from vyxops.timeutil import iso, to_utc

IMAGE_IN_TEXT = facts.IMAGE_IN_TEXT
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
    org_apps: list[str] | None = None  # the org's apps, when the token may list them
    extra_gaps: list[Gap] = field(default_factory=list)  # sources that failed outright
    _docker_image: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def gaps(self) -> list[Gap]:
        """What the evidence could not show: every frame's gaps, its early stops, and failed sources."""
        out = list(self.extra_gaps)
        for df in self.frames().values():
            out += [Gap.from_json(g) for g in df.attrs.get("gaps") or []]
            if not df.attrs.get("gaps") and not df.attrs.get("complete", True):
                out.append(Gap(str(df.attrs.get("source") or df.attrs.get("frame")), str(df.attrs.get("note"))))
        return list(dict.fromkeys(out))

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
    """The investigation window: ``until`` defaults to the target's now, ``since`` to 24 h before.

    Strings go through :func:`vyxops.checks.check_time` (strict RFC 3339; "nan" is no time);
    timestamps are taken as they are.
    """
    end = _time_arg(until, "--until") or now
    start = _time_arg(since, "--since") or end - DEFAULT_LOOKBACK
    if start >= end:
        raise InputError("--since/--until", f"since ({iso(start)}) must be before until ({iso(end)})")
    return start, end


def _time_arg(value: Any, name: str) -> pd.Timestamp | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        ms = check_time(value, name)
        return None if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC")
    ts = to_utc(value, "ms")
    if ts is None or pd.isna(ts):
        raise InputError(name, f"{value!r} is not a time", allowed="RFC 3339, e.g. 2025-10-02T16:00:00Z")
    return ts


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

    def org_apps(self) -> list[str] | None:
        """The org's app names, or None when the token may not list them (an app-scoped token)."""
        if ("apps",) not in self._frames:
            try:
                self._frames["apps",] = frames.fetch_apps(self.session)
            except (AuthError, ApiError):
                self._frames["apps",] = frames.empty_frame("apps", note="could not list the org's apps")
                self._frames["apps",].attrs["denied"] = True
        apps = self._frames["apps",]
        return None if apps.attrs.get("denied") else apps["app"].dropna().astype(str).tolist()

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
    check_app(app)
    check_machine_id(machine_id)
    project = project or ProjectReads(session)
    now = session.now()
    start, end = parse_window(now, since, until)
    gaps: list[Gap] = []
    got: dict[str, pd.DataFrame] = {}
    with stages(7, f"evidence for {app}") as say:
        say.step("Fly releases")
        got["releases"] = _app_read(session, app, lambda: frames.fetch_releases(session, app))
        say.step("Supabase functions and secrets")
        got["functions"], got["secrets"] = project.functions(), project.secrets()
        say.step("DB rows")
        rows = got["machine_rows"] = frames.fetch_machine_rows(session, filters=[("fly_app", "eq", app)])
        say.step("Fly machines, destroyed ones too")
        known_ids = rows["fly_machine_id"].dropna().tolist() + ([machine_id] if machine_id else [])
        got["machines"], got["machine_events"] = frames.fetch_machines(
            session, app, include_deleted=True, also_ids=known_ids
        )
        say.step("function logs and Fly logs")
        got["function_logs"], got["fly_logs"] = _logs(session, project, app, start, end, gaps)
        say.step("image manifests")
        got["manifests"] = _manifests(session, app, got)
    check_machine_in_window(machine_id, app, got["machines"], start, end)
    return Evidence(
        target=session.label, app=app, now=now, since=start, until=end, machine_id=machine_id, **got,
        notes=_notes(got), org_apps=project.org_apps(), extra_gaps=gaps,
    )  # fmt: skip


def _app_read(session: Any, app: str, fetch: Any) -> pd.DataFrame:
    """The first read of the app: a missing app names what the target holds and how to switch."""
    try:
        df: pd.DataFrame = fetch()
    except NotFoundError as exc:
        said = exc.message.split(": ", 1)[-1]  # the platform's own words, without the request line
        raise NotFoundError(
            f"app {app!r} not found on {session.label} ({said})",
            platform=exc.platform,
            method=exc.method,
            path=exc.path,
            status=exc.status,
            hint=f"{session.description or session.label}; on the sandbox, switch with "
            "`vyxops sandbox reset --scenario NAME` (list them with `vyxops scenarios`)",
        ) from None
    return df


def _logs(
    session: Any, project: ProjectReads, app: str, start: pd.Timestamp, end: pd.Timestamp, gaps: list[Gap]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    fn_logs = _optional(gaps, "supabase.function_logs", start, end, lambda: project.function_logs(start, end),
                        lambda: frames.empty_frame("function_logs"))  # fmt: skip
    fly_logs = _optional(gaps, "fly.logs", start, end, lambda: frames.fetch_fly_logs(session, app, since=start),
                         lambda: frames.empty_frame("fly_logs"))  # fmt: skip
    return fn_logs, _keep_attrs(fly_logs, fly_logs[fly_logs["time"] <= end].reset_index(drop=True))


def _manifests(session: Any, app: str, got: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """HEAD every image reference the secret could point at (candidate_refs)."""
    texts = got["function_logs"]["message"].dropna().tolist() + got["fly_logs"]["message"].dropna().tolist()
    refs = candidate_refs(app, got["releases"], got["machines"], got["machine_rows"], texts)
    return frames.fetch_manifests(session, refs)


def _notes(got: dict[str, pd.DataFrame]) -> list[str]:
    """One line per frame that stopped early."""
    return [
        f"{df.attrs.get('frame')}: {df.attrs.get('note')}"
        for name, df in got.items()
        if name in ("releases", "machine_rows", "machines", "function_logs", "fly_logs")
        and not df.attrs.get("complete", True)
    ]


def _optional(
    gaps: list[Gap], source: str, start: pd.Timestamp, end: pd.Timestamp, fetch: Any, empty: Any
) -> pd.DataFrame:
    """A source the investigation can do without: when it fails, its absence is a gap, not the end."""
    try:
        df: pd.DataFrame = fetch()
    except (ApiError, TransportError) as exc:
        gaps.append(Gap(source, f"{source} could not be read ({exc.message}); retry later", iso(start), iso(end)))
        return empty()
    return df


def _keep_attrs(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    after.attrs.update(before.attrs)
    return after


def check_machine_in_window(
    machine_id: str | None, app: str, machines: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> None:
    """``--machine`` must name one of the app's machines that existed during the window (SPEC.md: exit 2)."""
    if not machine_id:
        return
    hit = machines[machines["machine_id"] == machine_id]
    if hit.empty:
        raise InputError(
            "--machine",
            f"machine {machine_id} is not one of app {app}'s machines, even by id",
            hint=f"list them with `fly machines list -a {app}` "
            "(destroyed ones: the Machines API with include_deleted=true)",
        )
    created = hit.iloc[0]["created_at"]
    if pd.notna(created) and created > end:
        raise InputError(
            "--machine",
            f"machine {machine_id} was created at {iso(created)}, after the window ends ({iso(end)})",
            hint="widen the window with --until",
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

"""The sandbox's models of Fly.io and Supabase, and the state they keep.

Everything the sandbox serves is read from ``World.state``; everything that
changes it goes through a ``World`` method, so each platform rule lives in one
place. The state is plain JSON, persisted under the sandbox directory, and the
same scenario file always replays to the same bytes. The machine lifecycle lives
in :mod:`vyxops_sandbox.machines`, the Edge Functions in
:mod:`vyxops_sandbox.functions`; this module keeps the state, the clock, the
steps, the registry, releases, secrets and tables.

Where the real platform's behaviour is unknown the model says so in a comment
and picks the behaviour that loses no evidence (PLATFORM.md).
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from vyxops.core.errors import InputError, ScenarioError
from vyxops.core.images import FLY_REGISTRY, secret_digest
from vyxops.core.images import parse_image_ref as _parse_ref
from vyxops.core.timeutil import iso
from vyxops_sandbox import functions, image_index, machines, refusals, statefile
from vyxops_sandbox.functions import FUNCTION_CREATE_MS, FUNCTION_DONE_MS  # noqa: F401  (re-exported)
from vyxops_sandbox.machines import (  # noqa: F401  (re-exported: the fleet generator and tests read them here)
    APP_REPORT_MS,
    DESTROY_AFTER_EXIT_MS,
    PULL_MS,
    START_MS,
    DuplicateMachine,
    MachineRefused,
    ManifestUnknown,
)
from vyxops_sandbox.pipeline import Pipeline, enums, table_schema, update_row
from vyxops_sandbox.platform import Platform, credentials_for
from vyxops_sandbox.refusals import CreateRefused
from vyxops_sandbox.scenario import Scenario, load_scenario, resolve_scenario_path

# 2: the platform block, machines' run model (`_run`), release-command releases, new steps.
# 3: the pipeline block (state["supabase"]["pipeline"]), column types and enums beside each table,
#    Fly's refusals (state["fly"]["refusals"]); the seed's table has no `error` column any more.
SCHEMA = "vyxops.sandbox/3"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
IMAGE_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
FLYCTL_VERSION = "0.3.200"  # what a release-command machine's metadata names as fly_flyctl_version
STATE_KEYS = ("scenario", "now_ms", "seq", "fly", "registry", "supabase", "pending", "platform")

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

__all__ = [
    "World",
    "ManifestUnknown",
    "DuplicateMachine",
    "credentials_for",
    "SCHEMA",
    "pg_time",
    "sha256_hex",
]

sha256_hex = secret_digest


def parse_image_ref(ref: str) -> tuple[str, str, str | None, str | None]:
    """Split an image reference into (registry, repo, tag, digest)."""
    r = _parse_ref(ref)
    return r.registry, r.repository, r.tag, r.digest


def pg_time(ms: int) -> str:
    """A timestamptz as PostgREST renders it (PostgreSQL's ``to_json``): ``2025-10-02T16:18:40.912+00:00``, the
    fraction's trailing zeros dropped (``…40.5+00:00``, not ``…40.500+00:00``), as a real database renders it."""
    text = iso(ms)[:-1]
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "+00:00"


def new_incarnation() -> str:
    """A fresh incarnation id (random: the replay itself is the same bytes every time, its incarnation is not)."""
    return uuid.uuid4().hex[:16]


class StepRefused(Exception):
    """A scenario step the world cannot carry out as written (``allowed``: what it could name instead)."""

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


def _reset_hint(scenario: str | None) -> str:
    return f"start it over with `vyxops sandbox reset --scenario {scenario or 'NAME'}` (fixes applied so far are lost)"


class World:
    """The state of both platforms, with the only methods allowed to change it."""

    def __init__(self, state: dict[str, Any], sandbox_dir: Path | None = None) -> None:
        self.state = state
        self.sandbox_dir = Path(sandbox_dir) if sandbox_dir else None
        self.dirty = False  # anything changed since the last save (the clock included)
        self.changed = False  # something other than the clock changed since the last save
        self._clock_only = False  # inside advance_to: what changes is the clock's doing
        # Counts every touch (never saved): what a read derived from the state (a PostgREST query's
        # matching rows) may be kept for while it is unchanged. A new state object is a new world.
        self.version = 0
        self.revision = statefile.revision_of(state)
        self._stamp: statefile.Stamp | None = None
        self.platform = Platform.from_json(state.get("platform"))
        self.pipeline = Pipeline.from_json(state.get("supabase", {}).get("pipeline"))

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def from_scenario(cls, scenario: Scenario, sandbox_dir: Path | None = None) -> World:
        """Replay ``scenario`` from nothing up to its ``now``.

        A step the world refuses (a stop of a machine that is not running, a machine
        id used twice) is a ScenarioError naming the step and its line.
        """
        first = min([s["at_ms"] for s in scenario.steps] + [scenario.now_ms])
        world = cls(_empty_state(scenario, first - 3_600_000), sandbox_dir)
        for app in scenario.apps:
            world.state["fly"]["apps"][app] = {
                "id": world.stable_hash("app", app)[:16],
                "name": app,
                "status": "deployed",
                "org": scenario.org,
                "machines": {},
                "releases": [],
                "logs": [],
            }
        world._set_secret("FLY_APP_NAME", scenario.apps[0])
        world._set_secret("SUPABASE_URL", f"https://{scenario.project_ref}.supabase.co")
        if world.pipeline.token_modelled:
            # The function's own Fly token, so that it can be revoked and restored. Not token-shaped
            # and never one of the sandbox's credentials; seed scenarios gain no secret.
            world._set_secret(
                world.pipeline.fly_token_secret, "sandbox-function-token-" + world.stable_hash("fn-token")[:32]
            )
        functions.add_function(world, world.pipeline.function)
        for ref, spec in scenario.images.items():
            world._push(ref, {**spec, "pushed_at_ms": spec.get("pushed_at_ms", world.now_ms)})
        for i, step in enumerate(scenario.steps):
            world.advance_to(step["at_ms"])
            try:
                world.apply_step(step["kind"], step["args"])
            except StepRefused as exc:
                raise ScenarioError(
                    scenario.path, f"steps[{i}].{step['kind']}", str(exc), line=step["line"], allowed=exc.allowed
                ) from None
            except (DuplicateMachine, MachineRefused) as exc:
                raise ScenarioError(scenario.path, f"steps[{i}].{step['kind']}", str(exc), line=step["line"]) from None
        world.advance_to(scenario.now_ms)
        world.dirty = True
        return world

    @classmethod
    def open(cls, sandbox_dir: Path, scenario: str | None = None) -> World | None:
        """The world persisted in ``sandbox_dir``, or None when it holds none.

        A state file that is not this schema's, or not readable as one, is refused
        (InputError naming the reset command), never replayed over: it may hold fixes.
        """
        path = Path(sandbox_dir) / "state.json"
        if not path.is_file():
            if path.exists() or path.is_symlink():  # a directory, a FIFO, a dangling link: never written over
                raise InputError(
                    str(path), "the sandbox state is not a file", hint=f"remove it, then {_reset_hint(scenario)}"
                )
            return None
        try:
            state = json.loads(path.read_bytes().decode("utf-8"))
        except OSError as exc:
            raise InputError(
                str(path), f"the sandbox state cannot be read ({exc.strerror})", hint=_reset_hint(scenario)
            ) from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise InputError(
                str(path),
                f"the sandbox state is corrupted ({type(exc).__name__}: {str(exc)[:120]})",
                hint=_reset_hint(scenario),
            ) from None
        held = (
            state.get("scenario", {}).get("name")
            if isinstance(state, dict) and isinstance(state.get("scenario"), dict)
            else None
        )
        if not isinstance(state, dict) or state.get("schema") != SCHEMA:
            found = state.get("schema") if isinstance(state, dict) else type(state).__name__
            raise InputError(
                str(path), f"the sandbox state has schema {found!r}, not {SCHEMA!r}", hint=_reset_hint(scenario or held)
            )
        missing = [k for k in STATE_KEYS if k not in state]
        if missing or not isinstance(state["now_ms"], int) or not isinstance(held, str):
            raise InputError(
                str(path),
                f"the sandbox state is incomplete (missing {', '.join(missing) or 'scenario name/clock'})",
                hint=_reset_hint(scenario or held),
            )
        problem = statefile.shape_problem(state)
        if problem:
            raise InputError(str(path), f"the sandbox state has the wrong shape: {problem}", hint=_reset_hint(held))
        world = cls(state, Path(sandbox_dir))
        world._stamp = statefile.Stamp.of(path)
        return world

    @classmethod
    def load(cls, scenario: str | Path | Scenario | None, sandbox_dir: Path, *, save: bool = True) -> World:
        """The sandbox's world: kept when it already holds ``scenario``, replayed otherwise.

        With ``scenario=None`` the persisted world is used, and the seed incident
        (``stub-image``) is loaded when the sandbox holds none. ``save=False`` leaves a
        replayed world unsaved (``dirty``): the CLI saves it only once every input has passed.
        """
        hint = scenario.name if isinstance(scenario, Scenario) else None if scenario is None else str(scenario)
        existing = cls.open(sandbox_dir, hint)
        if scenario is None:
            if existing is not None:
                return existing
            scenario = "stub-image"
        if existing is not None and not isinstance(scenario, Scenario) and _same_file(existing, scenario):
            return existing  # the very text it was replayed from: no need to read and check it again
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if (
            existing is not None
            and existing.state["scenario"]["name"] == sc.name
            and existing.state["scenario"]["sha256"] == sc.sha256
        ):
            return existing
        world = cls.from_scenario(sc, Path(sandbox_dir))
        world.state["incarnation"] = new_incarnation()  # a new world in this directory: fixes made before are not its
        if existing is not None:  # switching scenario replaces the held state on purpose: take its place
            world.revision, world._stamp = existing.revision, existing._stamp
        if save:
            world.save()
        return world

    def save(self) -> None:
        """Write the state to ``<sandbox_dir>/state.json`` under the sandbox's lock, never over a newer one.

        A newer state on disk is adopted when this process changed only the clock since it
        read; StaleState (exit 2) when it changed something itself (statefile's docstring).
        """
        if self.sandbox_dir is None:
            return
        with statefile.locked(self.sandbox_dir):
            self._catch_up()
            self.state["revision"] = self.revision + 1
            self._stamp = statefile.write_state(self.sandbox_dir, self.dumps())
            self.revision += 1
        self.dirty = self.changed = False

    def refresh(self) -> None:
        """Pick up a state another process saved since this one last read or wrote (one stat when none did)."""
        if self.sandbox_dir is None or statefile.Stamp.of(self.sandbox_dir / statefile.STATE) == self._stamp:
            return
        with statefile.locked(self.sandbox_dir):
            self._catch_up()

    def _catch_up(self) -> None:
        """Adopt a newer state on disk (keeping this process's later clock), or refuse when both changed."""
        path = self.sandbox_dir / statefile.STATE  # type: ignore[operator]
        stamp = statefile.Stamp.of(path)
        if stamp is None or stamp == self._stamp:
            return
        try:
            disk = statefile.read_state(path)
        except (ValueError, UnicodeDecodeError):
            return  # a corrupted file is World.open's to report; this write replaces it
        if statefile.shape_problem(disk):
            return  # so is one of the wrong shape: never adopted, or a request would meet it
        if statefile.incarnation_of(disk) != self.incarnation:
            self._adopt_reset(disk, stamp)
            return
        theirs = statefile.revision_of(disk)
        if theirs <= self.revision:
            self._stamp = stamp
            return
        if self.changed:
            raise statefile.stale_error(path.parent, self.revision, theirs)
        now = self.now_ms
        self.state, self.revision, self._stamp = disk, theirs, stamp
        self.platform = Platform.from_json(disk.get("platform"))
        self.pipeline = Pipeline.from_json(disk.get("supabase", {}).get("pipeline"))
        self.advance_to(now)

    def _adopt_reset(self, disk: dict[str, Any], stamp: statefile.Stamp | None) -> None:
        """Another process put a new world in the directory (``sandbox reset``, another scenario): this one is gone.

        The new world is adopted whole, its clock included (a reset starts at the scenario's now); a change this
        process made to the old world since it last saved is refused (StaleState), never written over the new one.
        """
        changed, old = self.changed, self.incarnation
        self.state, self.revision, self._stamp = disk, statefile.revision_of(disk), stamp
        self.platform = Platform.from_json(disk.get("platform"))
        self.pipeline = Pipeline.from_json(disk.get("supabase", {}).get("pipeline"))
        self.dirty = self.changed = False
        if changed:
            raise statefile.reset_error(self.sandbox_dir or Path("."), old, self.incarnation)

    @property
    def incarnation(self) -> str:
        """Which world this is: new at every load of a scenario into a directory and at every reset ("" unsaved)."""
        return statefile.incarnation_of(self.state)

    def dumps(self) -> str:
        """The state as canonical JSON (same state, same bytes)."""
        return json.dumps(self.state, sort_keys=True, indent=1, ensure_ascii=False) + "\n"

    def touch(self) -> None:
        """Mark the state changed so that the next save writes it."""
        self.version += 1
        self.dirty = True
        if not self._clock_only:
            self.changed = True

    # ------------------------------------------------------------------ helpers
    @property
    def scenario_name(self) -> str:
        return self.state["scenario"]["name"]

    @property
    def now_ms(self) -> int:
        return self.state["now_ms"]

    @property
    def credentials(self) -> dict[str, str]:
        return {
            **credentials_for(self.scenario_name, self.platform),
            "project_ref": self.state["supabase"]["project_ref"],
        }

    # ------------------------------------------------------------------ ids (the rule modules' too)
    def stable_hash(self, *parts: Any) -> str:
        """Deterministic hex from the scenario's name and ``parts``: same scenario, same ids."""
        return hashlib.sha256(":".join([self.scenario_name, *map(str, parts)]).encode()).hexdigest()

    def next_hash(self, kind: str) -> str:
        """A fresh deterministic hex for a new ``kind`` of thing (counts the world's sequence)."""
        self.state["seq"] += 1
        return self.stable_hash(kind, self.state["seq"])

    def new_ulid(self, kind: str, at_ms: int) -> str:
        """A fresh ULID stamped ``at_ms`` (Fly's event and machine-version ids)."""
        h = int(self.next_hash(kind), 16)
        t = "".join(_CROCKFORD[(at_ms >> (5 * i)) & 31] for i in reversed(range(10)))
        r = "".join(_CROCKFORD[(h >> (5 * i)) & 31] for i in range(16))
        return t + r

    def new_uuid(self, kind: str) -> str:
        """A fresh deterministic version-4 UUID (Supabase's ids)."""
        h = self.next_hash(kind)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"

    def pg_now(self, offset_ms: int = 0) -> str:
        """The clock (plus ``offset_ms``) as PostgREST renders a timestamptz."""
        return pg_time(self.now_ms + offset_ms)

    def app(self, name: str) -> dict[str, Any] | None:
        return self.state["fly"]["apps"].get(name)

    def machine(self, app: str, machine_id: str) -> dict[str, Any] | None:
        a = self.app(app)
        return a["machines"].get(machine_id) if a else None

    # ------------------------------------------------------------------ clock
    def advance_to(self, ms: int) -> None:
        """Move the virtual clock to ``ms``, applying every pending event due by then, in order.

        What it changes is the clock's doing (the events were scheduled already), so it
        does not count as this process's own change when another process saved meanwhile.
        """
        outer, self._clock_only = self._clock_only, True
        try:
            self._advance(ms)
        finally:
            self._clock_only = outer

    def _advance(self, ms: int) -> None:
        pending = self.state["pending"]
        while True:
            due = [p for p in pending if p["at_ms"] <= ms]
            if not due:
                break
            nxt = min(due, key=lambda p: (p["at_ms"], p["seq"]))
            pending.remove(nxt)
            self.state["now_ms"] = max(self.state["now_ms"], nxt["at_ms"])
            self._apply_pending(nxt)
        if ms > self.state["now_ms"]:
            self.state["now_ms"] = ms
        self.touch()

    def sleep(self, seconds: float) -> None:
        """The in-process client clock: time passes only when the session waits."""
        self.advance_to(self.now_ms + max(0, int(seconds * 1000)))

    def schedule(self, at_ms: int, kind: str, **data: Any) -> None:
        """Apply a pending event of ``kind`` when the clock reaches ``at_ms`` (:meth:`advance_to`)."""
        self.state["seq"] += 1
        self.state["pending"].append({"at_ms": at_ms, "seq": self.state["seq"], "kind": kind, **data})

    def cancel_pending(self, mid: str) -> None:
        """Drop everything scheduled for machine ``mid`` (its events, logs and its app's DB reports)."""
        self.state["pending"] = [
            p
            for p in self.state["pending"]
            if not (p.get("machine_id") == mid or p.get("instance") == mid or p.get("fly_machine_id") == mid)
        ]

    def _apply_pending(self, p: dict[str, Any]) -> None:
        kind = p["kind"]
        if kind in machines.MACHINE_KINDS:
            machines.apply_pending(self, p)
        elif kind == "fly_log":
            self.fly_log(
                p["app"],
                p["at_ms"],
                p["message"],
                p["instance"],
                p["region"],
                p.get("level", "info"),
                p.get("provider", "app"),
            )
        elif kind == "db_report":
            self.db_report(p["table"], p["fly_machine_id"], p["status"], p["at_ms"])
        elif kind == "release_done":
            self._finish_release(p["app"], p["release_id"], p["status"])

    # ------------------------------------------------------------------ steps
    def apply_step(self, kind: str, args: dict[str, Any]) -> None:
        """Carry out one validated scenario step at the current clock."""
        if kind == "deploy":
            self.deploy(
                args["app"],
                args["image"],
                tag_latest=bool(args.get("tag_latest", False)),
                user=args.get("user"),
                release_command=args.get("release_command"),
                image_ref=args.get("image_ref", True),
                interrupted=bool(args.get("interrupted", False)),
            )
        elif kind == "set_secret":
            self.set_secrets([{"name": args["name"], "value": str(args["value"])}])
        elif kind == "unset_secret":
            self.unset_secrets([args["name"]])
        elif kind == "invoke":
            self.invoke_function(args["function"], dict(args["body"]), machine_id=args.get("machine_id"))
        elif kind == "create_machine":
            self._create_machine_step(args)
        elif kind == "push_image":
            self._push(args["ref"], {**args, "pushed_at_ms": args.get("pushed_at_ms", self.now_ms)})
        elif kind == "delete_tag":
            self.delete_tag(args["ref"])
        elif kind == "db_update":
            self._db_update_step(args["table"], args["match"], args["set"])
        elif kind in ("stop_machine", "destroy_machine"):
            self._asked_step(kind, args["app"], args["machine_id"])
        elif kind in _REFUSAL_STEPS:
            self._refusal_step(kind, args)
        else:  # validated by the scenario reader
            raise InputError("step", f"unknown kind {kind!r}")

    def _create_machine_step(self, args: dict[str, Any]) -> None:
        """Like `fly machine run`: --rm means auto_destroy with restart `no`; no policy otherwise (flyd's default)."""
        config: dict[str, Any] = {"image": args["image"], "auto_destroy": bool(args.get("auto_destroy", False))}
        if "restart" in args:
            config["restart"] = dict(args["restart"])
        elif config["auto_destroy"]:
            config["restart"] = {"policy": "no"}  # flyctl machine run: auto_destroy needs policy no
        if args.get("metadata"):
            config["metadata"] = dict(args["metadata"])
        config["guest"] = {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256}
        try:
            self.create_machine(
                args["app"],
                config,
                region=args.get("region", "sjc"),
                machine_id=args.get("machine_id"),
                name=args.get("name"),
                session_s=args.get("session_s"),
            )
        except (ManifestUnknown, CreateRefused):
            pass  # like `fly machines run`: refused, nothing made; the person saw the error

    def _db_update_step(self, table: str, match: dict[str, Any], values: dict[str, Any]) -> None:
        """A person's UPDATE: a table or column the database lacks is refused, as Postgres would (nothing changes)."""
        t = self.table(table)
        if t is None:
            raise StepRefused(f"no table {table!r} in the project", list(self.state["supabase"]["tables"]))
        unknown = sorted((set(match) | set(values)) - set(t["columns"]))
        if unknown:
            raise StepRefused(f"table {table!r} has no column {', '.join(map(repr, unknown))}", t["columns"])
        self.db_update(table, match, values)

    def _refusal_step(self, kind: str, args: dict[str, Any]) -> None:
        """``revoke_fly_token``, ``fly_rate_limit`` and ``fly_capacity`` (rules in refusals.py)."""
        if kind == "revoke_fly_token":
            refusals.revoke_token(self, int(args["status"]))
        elif kind == "fly_rate_limit":
            # On the function's app (its FLY_APP_NAME, the scenario's first app at load): Fly limits per app.
            named = self.state["supabase"]["secrets"].get("FLY_APP_NAME", {}).get("value")
            refusals.limit_rate(self, str(named or next(iter(self.state["fly"]["apps"]))), args.get("until_ms"))
        else:
            refusals.limit_capacity(self, args["region"], args.get("until_ms"))

    def _asked_step(self, kind: str, app: str, mid: str) -> None:
        m = self.machine(app, mid)
        if m is None:
            raise MachineRefused(f"no machine {mid} in app {app} (a create that was refused makes none)")
        if kind == "stop_machine":
            if not self.stop_machine(app, mid):
                raise MachineRefused(f"machine {mid} is {m['state']}, not started: there is nothing to stop")
            return
        if m["state"] == "destroyed":
            raise MachineRefused(f"machine {mid} is already destroyed")
        self.destroy_machine(app, mid, force=True)

    # ------------------------------------------------------------------ registry
    def _push(self, ref: str, spec: dict[str, Any]) -> str:
        """Push an image whose process behaves as ``spec`` says (behaviour, exit_code, after_s, …)."""
        registry, repo, tag, digest = parse_image_ref(ref)
        meta = {k: v for k, v in spec.items() if k in _MANIFEST_META}
        if spec.get("index") or spec.get("attestations"):
            index, children = image_index.index_manifests(
                self.stable_hash,
                ref,
                multi_platform=bool(spec.get("index")),
                attestations=bool(spec.get("attestations")),
            )
            for child in children:
                self.put_manifest(repo, image_index.digest_of(child), child, image_index.OCI_MANIFEST, **meta)
            return self.put_manifest(repo, tag or digest or "latest", index, image_index.OCI_INDEX, **meta)
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_V2,
                "config": {
                    "mediaType": IMAGE_CONFIG,
                    "size": 1000 + int(self.stable_hash("cfg", ref)[:3], 16),
                    "digest": "sha256:" + self.stable_hash("config", ref),
                },
                "layers": [
                    {
                        "mediaType": LAYER,
                        "size": 3_000_000 + int(self.stable_hash("lsz", ref)[:5], 16),
                        "digest": "sha256:" + self.stable_hash("layer", ref, i),
                    }
                    for i in range(2)
                ],
            },
            separators=(",", ":"),
        )
        return self.put_manifest(repo, tag or digest or "latest", body, MANIFEST_V2, **meta)

    def put_manifest(self, repo: str, reference: str, body: str, media_type: str, **meta: Any) -> str:
        """Store a manifest's raw bytes under a tag (the registry's PUT); returns its digest.

        Pushing the same bytes under another tag (a retag) keeps the image's behaviour,
        because the behaviour belongs to the content, not the name.
        """
        digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
        r = self.state["registry"].setdefault(repo, {"tags": {}, "manifests": {}})
        known = r["manifests"].get(digest)
        if known is None:
            r["manifests"][digest] = {
                "media_type": media_type,
                "body": body,
                "behaviour": meta.get("behaviour", "serve"),
                "exit_code": meta.get("exit_code", 0),
                "after_s": meta.get("after_s", 2),
                "pushed_at": iso(meta.get("pushed_at_ms", self.now_ms)),
                # the wider world's keys, stored only when a scenario sets them
                **{k: meta[k] for k in ("session_s", "reports_running", "oom_killed") if meta.get(k) is not None},
            }
        if not reference.startswith("sha256:"):
            r["tags"][reference] = digest
        self.touch()
        return digest

    def resolve_image(self, ref: str) -> tuple[str, str | None, str, dict[str, Any]] | None:
        """(repo, tag, digest, manifest) of an image reference, or None when the registry lacks it."""
        registry, repo, tag, digest = parse_image_ref(ref)
        if registry != FLY_REGISTRY:
            return None  # the sandbox's registry holds only registry.fly.io images
        r = self.state["registry"].get(repo)
        if r is None:
            return None
        if digest is None:
            digest = r["tags"].get(tag or "latest")
        if digest is None or digest not in r["manifests"]:
            return None
        return repo, tag, digest, r["manifests"][digest]

    def runnable_image(self, ref: str) -> tuple[str, str | None, str, dict[str, Any]] | None:
        """:meth:`resolve_image` as a Fly host pulls it: an index resolves to its linux/amd64 child
        (image_index.runnable_child), whose digest the machine records; None when there is none."""
        resolved = self.resolve_image(ref)
        if resolved is None or resolved[3]["media_type"] != image_index.OCI_INDEX:
            return resolved
        repo, tag, _, index = resolved
        child = image_index.runnable_child(index["body"])
        manifest = self.state["registry"][repo]["manifests"].get(child) if child else None
        return None if child is None or manifest is None else (repo, tag, child, manifest)

    def delete_tag(self, ref: str) -> None:
        """Prune a tag; a manifest no tag points at any more is pruned with it."""
        _, repo, tag, _ = parse_image_ref(ref)
        r = self.state["registry"].get(repo)
        if not r or tag not in r["tags"]:
            return
        digest = r["tags"].pop(tag)
        if digest not in r["tags"].values():
            r["manifests"].pop(digest, None)
        self.touch()

    # ------------------------------------------------------------------ releases
    def deploy(
        self,
        app: str,
        image: str,
        *,
        tag_latest: bool = False,
        user: str | None = None,
        release_command: dict[str, Any] | None = None,
        image_ref: bool = True,
        interrupted: bool = False,
    ) -> dict[str, Any]:
        """`fly deploy`: push the image if new (behaviour serve), make release vN, maybe move :latest.

        With a ``release_command`` the release is ``running`` while a machine on the new
        image runs the command (process group ``fly_app_release_command``); it ends
        ``complete`` on exit 0 and ``failed`` otherwise. flyctl creates the release
        before the command and marks it failed after (internal/command/deploy/
        machines.go createReleaseInBackend, machines_deploymachinesapp.go
        updateReleaseInBackend), so a failed command leaves a failed release that is
        never current. ``image_ref=False`` records the release without an image
        (GraphQL ``imageRef: null``, which real releases can have).

        The app's current release (GraphQL ``currentReleaseUnprocessed``, REST
        ``…/releases/current``) moves to a release when its machines start to move: at
        once, or after a release command that succeeded. ``interrupted`` is a deploy
        cancelled during that rollout (Ctrl-C, a killed CI job): flyctl marks the release
        ``interrupted`` and undoes nothing (machines_deploymachinesapp.go: on
        context.Canceled it only sets the status), so the release stays current though
        it is not ``complete``. Fly's rule for "current" is server-side and not published;
        this is the reading of flyctl's deploy code and PLATFORM.md (third round).
        """
        a = self.app(app)
        if a is None:
            raise InputError("app", f"no app {app!r}", allowed=list(self.state["fly"]["apps"]))
        if self.resolve_image(image) is None:
            self._push(
                image, {"behaviour": "serve", "exit_code": 0, "after_s": 2, "pushed_at_ms": self.now_ms - 60_000}
            )
        email = user or "deployer@example.com"
        release = {
            "id": self.new_ulid("release", self.now_ms)[:14],
            "version": len(a["releases"]) + 1,
            "description": f"Deploy image {image}",
            "reason": "deploy",
            "status": "running" if release_command else "interrupted" if interrupted else "complete",
            "imageRef": image if image_ref else None,
            "stable": not release_command and not interrupted,
            "user": {"id": self.stable_hash("user", email)[:12], "email": email, "name": email.split("@")[0]},
            "createdAt": iso(self.now_ms),
        }
        a["releases"].insert(0, release)
        if tag_latest:
            repo, _, digest, manifest = self.resolve_image(image)  # type: ignore[misc]
            self.put_manifest(repo, "latest", manifest["body"], manifest["media_type"])
        if release_command:
            self._run_release_command(app, image, release, release_command, interrupted)
        else:
            a["current_release"] = release["id"]
        self.touch()
        return release

    def current_release(self, app: str) -> dict[str, Any] | None:
        """The release the platform calls current (see :meth:`deploy`); a state written before the
        sandbox tracked it has none recorded, and then it is the newest complete release."""
        a = self.app(app)
        if a is None:
            return None
        releases = a["releases"]  # newest first
        if "current_release" in a:
            return next((r for r in releases if r["id"] == a["current_release"]), None)
        return next((r for r in releases if r.get("status") == "complete"), None)

    def _run_release_command(
        self, app: str, image: str, release: dict[str, Any], command: dict[str, Any], interrupted: bool = False
    ) -> None:
        """The release-command machine, as flyctl builds it (appconfig/machines.go ToReleaseMachineConfig)."""
        config = {
            "image": image,
            "auto_destroy": True,
            "restart": {"policy": "no"},
            "init": {"cmd": ["/bin/sh", "-c", "release"]},
            "env": {"RELEASE_COMMAND": "1", "FLY_PROCESS_GROUP": "fly_app_release_command"},
            "metadata": {
                "fly_flyctl_version": FLYCTL_VERSION,
                "fly_platform_version": "v2",
                "fly_process_group": "fly_app_release_command",
                "fly_release_id": release["id"],
                "fly_release_version": str(release["version"]),
            },
            "dns": {"skip_registration": True},
            "guest": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 512},  # flyctl's shared-cpu-2x default
        }
        run: dict[str, Any] = {
            "behaviour": "exit",
            "exit_code": int(command["exit_code"]),
            "after_ms": int(float(command["after_s"]) * 1000),
            "reports_running": False,
            "oom_killed": False,
            "session_ms": None,
        }
        try:
            m = machines.create(self, app, config, region="sjc", machine_id=None, name=None, run=run)
        except CreateRefused:
            # No capacity (or a rate limit) for the release command's machine: flyctl's deploy fails
            # and marks the release failed (the same updateReleaseInBackend path as a failed command).
            self.schedule(self.now_ms + 200, "release_done", app=app, release_id=release["id"], status="failed")
            return
        if m["_run"]["behaviour"] == "pull_fail":
            done, ok = self.now_ms + machines.PULL_FAIL_MS + DESTROY_AFTER_EXIT_MS, False
        else:
            done = self.now_ms + START_MS + run["after_ms"] + machines.EXIT_EVENT_MS + DESTROY_AFTER_EXIT_MS
            ok = run["exit_code"] == 0
        # flyctl waits for the machine to be destroyed, then reads its exit code and sets the release status.
        status = ("interrupted" if interrupted else "complete") if ok else "failed"
        self.schedule(done + 200, "release_done", app=app, release_id=release["id"], status=status)

    def _finish_release(self, app: str, release_id: str, status: str) -> None:
        a = self.app(app)
        release = next((r for r in a["releases"] if r["id"] == release_id), None) if a else None
        if release is not None:
            release["status"] = status
            release["stable"] = status == "complete"
            if status != "failed":  # the command succeeded: machines start to move to this release
                a["current_release"] = release_id  # type: ignore[index]

    # ------------------------------------------------------------------ machines (rules in machines.py)
    def create_machine(
        self,
        app: str,
        config: dict[str, Any],
        *,
        region: str = "sjc",
        machine_id: str | None = None,
        name: str | None = None,
        session_s: float | None = None,
    ) -> dict[str, Any]:
        """Create a machine like the Machines API: the image is checked now, the lifecycle scheduled.

        Raises :class:`ManifestUnknown` (no machine is made) when the image does not
        resolve, :class:`DuplicateMachine` when ``machine_id`` is taken.
        """
        return machines.create(self, app, config, region=region, machine_id=machine_id, name=name, session_s=session_s)

    def stop_machine(self, app: str, mid: str) -> bool:
        """Stop a started machine (a requested stop); auto_destroy then destroys it."""
        return machines.stop(self, app, mid)

    def destroy_machine(self, app: str, mid: str, force: bool = False) -> tuple[int, dict[str, Any]]:
        """DELETE a machine: refused while it runs unless ``force``; destroyed machines stay readable."""
        return machines.destroy(self, app, mid, force)

    def wait_machine(self, app: str, mid: str, state: str, timeout_s: float) -> tuple[int, dict[str, Any] | None]:
        """GET …/wait: jump the clock to the modelled event, or answer 408 after ``timeout_s``."""
        return machines.wait(self, app, mid, state, timeout_s)

    # ------------------------------------------------------------------ fly logs
    def fly_log(
        self, app: str, at_ms: int, message: str, instance: str, region: str, level: str, provider: str
    ) -> None:
        """Append a line to ``app``'s Fly logs at ``at_ms`` (the logs endpoint serves them)."""
        a = self.app(app)
        if a is not None:
            a["logs"].append(
                {
                    "ts_ns": at_ms * 1_000_000 + int(self.next_hash("log")[:6], 16) % 1000,
                    "message": message,
                    "level": level,
                    "instance": instance,
                    "region": region,
                    "provider": provider,
                }
            )

    # ------------------------------------------------------------------ supabase: secrets
    def _set_secret(self, name: str, value: str) -> None:
        # updated_at is always kept; the secrets API leaves it out under `secrets_updated_at: false`.
        self.state["supabase"]["secrets"][name] = {"value": value, "updated_at": iso(self.now_ms)}
        if name == self.pipeline.fly_token_secret and self.pipeline.token_modelled:
            refusals.restore_token(self)  # a new token for the function: Fly takes its calls again

    def set_secrets(self, items: list[dict[str, str]]) -> None:
        """Upsert secrets (POST /v1/projects/{ref}/secrets); every deployed function restarts with them."""
        for item in items:
            self._set_secret(item["name"], item["value"])
        self._restart_functions()
        self.touch()

    def unset_secrets(self, names: list[str]) -> None:
        """Delete the named secrets only (DELETE takes a list of names); every function restarts without them."""
        secrets = self.state["supabase"]["secrets"]
        if [secrets.pop(name) for name in names if name in secrets]:
            self._restart_functions()
        self.touch()

    def _restart_functions(self) -> None:
        """A secret write invalidates every deployed function's isolates and increments its version (PLATFORM.md;
        Supabase knowledge base "Edge Function versions increment across all functions after updating secrets").
        It is not a redeploy: the code stays; the new version shows in the functions list and in later
        invocations' edge logs. The article speaks of updates; that a delete does the same is assumed (a
        deleted variable needs new isolates as much as a changed one), and it shows more, not less."""
        ref = self.state["supabase"]["project_ref"]
        for fn in self.state["supabase"]["functions"]:
            fn["version"] = int(fn["version"]) + 1
            fn["updated_at"] = self.now_ms
            fn["entrypoint_path"] = f"file:///tmp/user_fn_{ref}_{fn['id']}_{fn['version']}/source/index.ts"

    # ------------------------------------------------------------------ supabase: tables
    def table(self, name: str) -> dict[str, Any] | None:
        return self.state["supabase"]["tables"].get(name)

    def db_update(self, table: str, match: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
        """Update rows equal to ``match`` on every key; the table's ``updated_at`` column follows unless set."""
        t = self.table(table)
        if t is None:
            return []
        changed = []
        for row in t["rows"]:
            if all(str(row.get(k)) == str(v) for k, v in match.items()):
                update_row(t, row, values, pg_time(self.now_ms))
                changed.append(copy.deepcopy(row))
        self.touch()
        return changed

    def db_report(self, table: str, fly_machine_id: str, status: str, at_ms: int) -> None:
        """The app on machine ``fly_machine_id`` writes ``status`` into its row of the team's ``table``."""
        # The app on the machine reports its own status, as the real app does, into the team's
        # table and columns: the row whose machine-id column names it. Its row is almost always
        # among the newest, so look from the end (fleets have many rows).
        t = self.table(table)
        if t is None:
            return
        p = self.pipeline
        mid_column, status_column = p.columns["machine_id"], p.columns["status"]
        for row in reversed(t["rows"]):
            if row.get(mid_column) == fly_machine_id:
                update_row(t, row, {status_column: status}, pg_time(self.now_ms))
                self.touch()
                return

    # ------------------------------------------------------------------ supabase: functions (rules in functions.py)
    def function(self, slug: str) -> dict[str, Any] | None:
        return next((f for f in self.state["supabase"]["functions"] if f["slug"] == slug), None)

    def invoke_function(
        self, slug: str, body: dict[str, Any], *, machine_id: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST /functions/v1/<slug> past the relay: the pipeline's provisioning function (functions.py)."""
        answer = functions.invoke(self, slug, body, machine_id=machine_id)
        if self.function(slug) is not None:
            # An invocation always leaves a trace (its logs, maybe a row) even when it creates no machine
            # and so touched nothing itself: it is this process's change, saved as the request answers.
            self.touch()
        return answer


_REFUSAL_STEPS = ("revoke_fly_token", "fly_rate_limit", "fly_capacity")
_MANIFEST_META = ("behaviour", "exit_code", "after_s", "pushed_at_ms", "session_s", "reports_running", "oom_killed")


def _same_file(world: World, scenario: str | Path) -> bool:
    """Whether ``scenario``'s file holds byte for byte the text ``world`` was replayed from (its sha256).

    The same text is the same name and the same checks passed; a busy day's YAML takes seconds to parse.
    """
    try:
        data = resolve_scenario_path(scenario).read_bytes()
    except OSError:
        return False  # load_scenario names what is wrong with it
    return hashlib.sha256(data).hexdigest() == world.state["scenario"]["sha256"]


def _empty_state(scenario: Scenario, start_ms: int) -> dict[str, Any]:
    """The state before the first step: apps, registry and project empty, the clock an hour before.

    The project's one table is the pipeline's (the seed's nine-column ``machines`` by default),
    its column types beside its rows; the pipeline block is kept here and never served.
    """
    pipeline = scenario.pipeline
    return {
        "schema": SCHEMA,
        "scenario": {
            "name": scenario.name,
            "title": scenario.title,
            "now": iso(scenario.now_ms),
            "sha256": scenario.sha256,
        },
        "platform": scenario.platform.as_json(),
        "now_ms": start_ms,
        "seq": 0,
        "fly": {"org": scenario.org, "apps": {}, "refusals": {}},
        "registry": {},
        "supabase": {
            "project_ref": scenario.project_ref,
            "machines_table": pipeline.table,
            "pipeline": pipeline.as_json(),
            "enums": enums(pipeline),
            "tables": {pipeline.table: {**table_schema(pipeline), "rows": []}},
            "secrets": {},
            "functions": [],
            "logs": [],
        },
        "pending": [],
    }

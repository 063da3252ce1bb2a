"""The sandbox's models of Fly.io and Supabase, and the state they keep.

Everything the sandbox serves is read from ``World.state``; everything that
changes it goes through a ``World`` method, so each platform rule lives in one
place. The state is plain JSON, persisted under the sandbox directory, and the
same scenario file always replays to the same bytes.

Where the real platform's behaviour is unknown the model says so in a comment
and picks the behaviour that loses no evidence (PLATFORM.md).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vyxops.errors import InputError
from vyxops.images import FLY_REGISTRY, secret_digest
from vyxops.images import parse_image_ref as _parse_ref
from vyxops.timeutil import iso
from vyxops_sandbox.scenario import Scenario, load_scenario

SCHEMA = "vyxops.sandbox/1"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
IMAGE_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# Offsets of the machine lifecycle model, in ms after create. Realistic, not measured:
# Fly pulls, then boots a Firecracker VM in about 1-2 s.
PULL_MS = 1400
START_MS = 1800
APP_REPORT_MS = 2500  # a serving app calls back to the DB this long after start
DESTROY_AFTER_EXIT_MS = 400
PULL_FAIL_MS = 9000
FUNCTION_CREATE_MS = 300  # provision-machine calls the Machines API this far into its run
FUNCTION_DONE_MS = 850

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ADJ = [
    "aged",
    "billowing",
    "bitter",
    "cold",
    "damp",
    "falling",
    "frosty",
    "lingering",
    "misty",
    "red",
    "snowy",
    "summer",
    "wild",
]
_NOUN = ["wind", "sun", "thunder", "sea", "frost", "dust", "leaf", "field", "brook", "moon", "pond", "shadow", "star"]


class ManifestUnknown(Exception):
    """An image reference that the registry does not hold (the Machines API answers 400)."""

    def __init__(self, ref: str, tag: str | None) -> None:
        self.ref = ref
        self.tag = tag
        super().__init__(f"failed to get manifest {ref}: MANIFEST_UNKNOWN")


def credentials_for(scenario_name: str) -> dict[str, str]:
    """The sandbox's own credentials for a scenario: fixed per scenario, never real."""
    h = hashlib.sha256(f"vyxops-sandbox:{scenario_name}".encode()).hexdigest()
    return {
        "fly_api_token": f"fm2_sandbox{h[:40]}",
        "supabase_service_role_key": f"sb_secret_sandbox{h[8:48]}",
        "supabase_anon_key": f"sb_publishable_sandbox{h[16:56]}",
        "supabase_access_token": f"sbp_sandbox{h[24:64]}",
    }


sha256_hex = secret_digest


def parse_image_ref(ref: str) -> tuple[str, str, str | None, str | None]:
    """Split an image reference into (registry, repo, tag, digest)."""
    r = _parse_ref(ref)
    return r.registry, r.repository, r.tag, r.digest


def pg_time(ms: int) -> str:
    """A timestamptz as PostgREST renders it: ``2025-10-02T16:18:40.912+00:00``."""
    text = iso(ms)
    return text[:-1] + "+00:00"


class World:
    """The state of both platforms, with the only methods allowed to change it."""

    def __init__(self, state: dict[str, Any], sandbox_dir: Path | None = None) -> None:
        self.state = state
        self.sandbox_dir = Path(sandbox_dir) if sandbox_dir else None
        self.dirty = False

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def from_scenario(cls, scenario: Scenario, sandbox_dir: Path | None = None) -> World:
        """Replay ``scenario`` from nothing up to its ``now``."""
        first = min([s["at_ms"] for s in scenario.steps] + [scenario.now_ms])
        state: dict[str, Any] = {
            "schema": SCHEMA,
            "scenario": {
                "name": scenario.name,
                "title": scenario.title,
                "now": iso(scenario.now_ms),
                "sha256": scenario.sha256,
            },
            "now_ms": first - 3_600_000,
            "seq": 0,
            "fly": {"org": scenario.org, "apps": {}},
            "registry": {},
            "supabase": {
                "project_ref": scenario.project_ref,
                "machines_table": scenario.machines_table,
                "tables": {
                    scenario.machines_table: {
                        "columns": [
                            "id",
                            "user_id",
                            "fly_machine_id",
                            "fly_app",
                            "region",
                            "image",
                            "status",
                            "error",
                            "created_at",
                            "updated_at",
                        ],
                        "rows": [],
                    }
                },
                "secrets": {},
                "functions": [],
                "logs": [],
            },
            "pending": [],
        }
        world = cls(state, sandbox_dir)
        for app in scenario.apps:
            state["fly"]["apps"][app] = {
                "id": world._hash("app", app)[:16],
                "name": app,
                "status": "deployed",
                "org": scenario.org,
                "machines": {},
                "releases": [],
                "logs": [],
            }
        world._set_secret("FLY_APP_NAME", scenario.apps[0])
        world._set_secret("SUPABASE_URL", f"https://{scenario.project_ref}.supabase.co")
        world._add_function("provision-machine")
        for ref, spec in scenario.images.items():
            pushed = spec.get("pushed_at_ms", state["now_ms"])
            world._push(ref, spec["behaviour"], spec["exit_code"], spec["after_s"], pushed)
        for step in scenario.steps:
            world.advance_to(step["at_ms"])
            world.apply_step(step["kind"], step["args"])
        world.advance_to(scenario.now_ms)
        world.dirty = True
        return world

    @classmethod
    def open(cls, sandbox_dir: Path) -> World | None:
        """The world persisted in ``sandbox_dir``, or None when it holds none."""
        path = Path(sandbox_dir) / "state.json"
        if not path.is_file():
            return None
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("schema") != SCHEMA:
            return None
        return cls(state, Path(sandbox_dir))

    @classmethod
    def load(cls, scenario: str | Path | Scenario | None, sandbox_dir: Path) -> World:
        """The sandbox's world: kept when it already holds ``scenario``, replayed otherwise.

        With ``scenario=None`` the persisted world is used, and the seed incident
        (``stub-image``) is loaded when the sandbox holds none.
        """
        existing = cls.open(sandbox_dir)
        if scenario is None:
            if existing is not None:
                return existing
            scenario = "stub-image"
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if (
            existing is not None
            and existing.state["scenario"]["name"] == sc.name
            and existing.state["scenario"]["sha256"] == sc.sha256
        ):
            return existing
        world = cls.from_scenario(sc, Path(sandbox_dir))
        world.save()
        return world

    def save(self) -> None:
        """Write the state atomically to ``<sandbox_dir>/state.json``."""
        if self.sandbox_dir is None:
            return
        self.sandbox_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.sandbox_dir / f"state.json.{os.getpid()}.tmp"
        tmp.write_text(self.dumps(), encoding="utf-8")
        os.replace(tmp, self.sandbox_dir / "state.json")
        self.dirty = False

    def dumps(self) -> str:
        """The state as canonical JSON (same state, same bytes)."""
        return json.dumps(self.state, sort_keys=True, indent=1, ensure_ascii=False) + "\n"

    def touch(self) -> None:
        """Mark the state changed so that the next save writes it."""
        self.dirty = True

    # ------------------------------------------------------------------ helpers
    @property
    def scenario_name(self) -> str:
        return self.state["scenario"]["name"]

    @property
    def now_ms(self) -> int:
        return self.state["now_ms"]

    @property
    def credentials(self) -> dict[str, str]:
        return {**credentials_for(self.scenario_name), "project_ref": self.state["supabase"]["project_ref"]}

    def _hash(self, *parts: Any) -> str:
        return hashlib.sha256(":".join([self.scenario_name, *map(str, parts)]).encode()).hexdigest()

    def _next(self, kind: str) -> str:
        self.state["seq"] += 1
        return self._hash(kind, self.state["seq"])

    def _ulid(self, kind: str, at_ms: int) -> str:
        h = int(self._next(kind), 16)
        t = "".join(_CROCKFORD[(at_ms >> (5 * i)) & 31] for i in reversed(range(10)))
        r = "".join(_CROCKFORD[(h >> (5 * i)) & 31] for i in range(16))
        return t + r

    def _uuid(self, kind: str) -> str:
        h = self._next(kind)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"

    def app(self, name: str) -> dict[str, Any] | None:
        return self.state["fly"]["apps"].get(name)

    def machine(self, app: str, machine_id: str) -> dict[str, Any] | None:
        a = self.app(app)
        return a["machines"].get(machine_id) if a else None

    # ------------------------------------------------------------------ clock
    def advance_to(self, ms: int) -> None:
        """Move the virtual clock to ``ms``, applying every pending event due by then, in order."""
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

    def _schedule(self, at_ms: int, kind: str, **data: Any) -> None:
        self.state["seq"] += 1
        self.state["pending"].append({"at_ms": at_ms, "seq": self.state["seq"], "kind": kind, **data})

    def _apply_pending(self, p: dict[str, Any]) -> None:
        if p["kind"] == "machine_event":
            m = self.machine(p["app"], p["machine_id"])
            if m is not None:
                self._add_event(m, p["event"], p["at_ms"])
        elif p["kind"] == "fly_log":
            self._fly_log(
                p["app"],
                p["at_ms"],
                p["message"],
                p["instance"],
                p["region"],
                p.get("level", "info"),
                p.get("provider", "app"),
            )
        elif p["kind"] == "db_report":
            self._db_report(p["table"], p["fly_machine_id"], p["status"], p["at_ms"])

    # ------------------------------------------------------------------ steps
    def apply_step(self, kind: str, args: dict[str, Any]) -> None:
        """Carry out one scenario step at the current clock."""
        if kind == "deploy":
            self.deploy(
                args["app"], args["image"], tag_latest=bool(args.get("tag_latest", False)), user=args.get("user")
            )
        elif kind == "set_secret":
            self.set_secrets([{"name": args["name"], "value": str(args["value"])}])
        elif kind == "unset_secret":
            self.unset_secrets([args["name"]])
        elif kind == "invoke":
            self.invoke_function(args["function"], dict(args["body"]), machine_id=args.get("machine_id"))
        elif kind == "create_machine":
            config = {
                "image": args["image"],
                "auto_destroy": bool(args.get("auto_destroy", False)),
                "restart": {"policy": "no" if args.get("auto_destroy") else "always"},
                "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
            }
            try:
                self.create_machine(
                    args["app"],
                    config,
                    region=args.get("region", "sjc"),
                    machine_id=args.get("machine_id"),
                    name=args.get("name"),
                )
            except ManifestUnknown:
                pass  # like `fly machines run`: refused, nothing made; the person saw the error
        elif kind == "push_image":
            self._push(
                args["ref"],
                args["behaviour"],
                args["exit_code"],
                args["after_s"],
                args.get("pushed_at_ms", self.now_ms),
            )
        elif kind == "delete_tag":
            self.delete_tag(args["ref"])
        elif kind == "db_update":
            self.db_update(args["table"], args["match"], args["set"])
        else:  # validated by the scenario reader
            raise InputError("step", f"unknown kind {kind!r}")

    # ------------------------------------------------------------------ registry
    def _push(self, ref: str, behaviour: str, exit_code: int, after_s: float, pushed_at_ms: int) -> str:
        registry, repo, tag, digest = parse_image_ref(ref)
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_V2,
                "config": {
                    "mediaType": IMAGE_CONFIG,
                    "size": 1000 + int(self._hash("cfg", ref)[:3], 16),
                    "digest": "sha256:" + self._hash("config", ref),
                },
                "layers": [
                    {
                        "mediaType": LAYER,
                        "size": 3_000_000 + int(self._hash("lsz", ref)[:5], 16),
                        "digest": "sha256:" + self._hash("layer", ref, i),
                    }
                    for i in range(2)
                ],
            },
            separators=(",", ":"),
        )
        return self.put_manifest(
            repo,
            tag or digest or "latest",
            body,
            MANIFEST_V2,
            behaviour=behaviour,
            exit_code=exit_code,
            after_s=after_s,
            pushed_at_ms=pushed_at_ms,
        )

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
    def deploy(self, app: str, image: str, *, tag_latest: bool = False, user: str | None = None) -> dict[str, Any]:
        """`fly deploy`: push the image if new (behaviour serve), make release vN, maybe move :latest."""
        a = self.app(app)
        if a is None:
            raise InputError("app", f"no app {app!r}", allowed=list(self.state["fly"]["apps"]))
        if self.resolve_image(image) is None:
            self._push(image, "serve", 0, 2, self.now_ms - 60_000)
        email = user or "deployer@example.com"
        version = len(a["releases"]) + 1
        release = {
            "id": self._ulid("release", self.now_ms)[:14],
            "version": version,
            "description": f"Deploy image {image}",
            "reason": "deploy",
            "status": "complete",
            "imageRef": image,
            "stable": True,
            "user": {"id": self._hash("user", email)[:12], "email": email, "name": email.split("@")[0]},
            "createdAt": iso(self.now_ms),
        }
        a["releases"].insert(0, release)
        if tag_latest:
            repo, _, digest, manifest = self.resolve_image(image)  # type: ignore[misc]
            self.put_manifest(repo, "latest", manifest["body"], manifest["media_type"])
        self.touch()
        return release

    # ------------------------------------------------------------------ machines
    def create_machine(
        self,
        app: str,
        config: dict[str, Any],
        *,
        region: str = "sjc",
        machine_id: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Create a machine like the Machines API: the image is checked now, the lifecycle scheduled.

        Raises :class:`ManifestUnknown` (no machine is made) when the image does not resolve.
        """
        a = self.app(app)
        if a is None:
            raise KeyError(app)
        image = str(config.get("image", ""))
        resolved = self.resolve_image(image)
        if resolved is None:
            _, _, tag, _ = parse_image_ref(image) if "/" in image else ("", "", image, None)
            raise ManifestUnknown(image, tag)
        repo, tag, digest, manifest = resolved
        t0 = self.now_ms
        mid = machine_id or self._next("machine")[:14]
        h = self._hash("machine-name", mid)
        m = {
            "id": mid,
            "name": name
            or f"{_ADJ[int(h[0:2], 16) % len(_ADJ)]}-{_NOUN[int(h[2:4], 16) % len(_NOUN)]}-{int(h[4:8], 16) % 10000}",
            "state": "created",
            "region": region,
            "image_ref": {"registry": FLY_REGISTRY, "repository": repo, "tag": tag, "digest": digest, "labels": {}},
            "instance_id": self._ulid("instance", t0),
            "private_ip": f"fdaa:0:{h[8:12]}:a7b:{h[12:15]}:{h[15:19]}:{h[19:23]}:2",
            "created_at": iso(t0 - t0 % 1000),
            "updated_at": iso(t0 - t0 % 1000),
            "config": copy.deepcopy(config),
            "events": [],
        }
        a["machines"][mid] = m
        self._add_event(m, {"type": "launch", "status": "created", "source": "user"}, t0)
        behaviour = manifest["behaviour"]
        log = lambda at, msg, provider="runner", level="info": self._schedule(  # noqa: E731
            at, "fly_log", app=app, instance=mid, region=region, message=msg, provider=provider, level=level
        )
        log(t0 + 100, f"Pulling container image {image}")
        if behaviour == "pull_fail":
            # The real event for a failed pull is not documented (machine-states-and-events.json):
            # the model records it as a launch_failed event carrying the pull error, then destroys.
            err = f"failed to pull image {image}: unexpected status from registry: 500 Internal Server Error"
            log(t0 + PULL_FAIL_MS - 50, f"Error: {err}", level="error")
            self._event_later(
                app,
                mid,
                t0 + PULL_FAIL_MS,
                {"type": "launch_failed", "status": "launch_failed", "source": "flyd", "request": {"error": err}},
            )
            self._event_later(
                app,
                mid,
                t0 + PULL_FAIL_MS + DESTROY_AFTER_EXIT_MS,
                {"type": "destroy", "status": "destroyed", "source": "flyd"},
            )
            self.touch()
            return copy.deepcopy(m)
        log(t0 + PULL_MS, f"Successfully prepared image {image} ({PULL_MS / 1000:.1f}s)")
        log(t0 + START_MS - 100, "Configuring firecracker")
        start = t0 + START_MS
        self._event_later(app, mid, start, {"type": "start", "status": "started", "source": "flyd"})
        log(start + 20, f"Machine started in {(START_MS - PULL_MS) / 1000:.3f}s", provider="app")
        if behaviour in ("serve", "no_callback"):
            log(start + 600, "Listening on 0.0.0.0:8080", provider="app")
            if behaviour == "serve":
                self._schedule(
                    start + APP_REPORT_MS,
                    "db_report",
                    table=self.state["supabase"]["machines_table"],
                    fly_machine_id=mid,
                    status="running",
                )
        else:  # exit / crash
            code = int(manifest["exit_code"])
            exit_at = start + int(float(manifest["after_s"]) * 1000)
            log(exit_at - 5, f"INFO Main child exited normally with code: {code}", provider="app")
            log(exit_at + 10, "INFO Starting clean up.", provider="app")
            self._event_later(app, mid, exit_at + 30, _exit_event(code, exit_at, requested=False))
            if config.get("auto_destroy"):
                self._event_later(
                    app,
                    mid,
                    exit_at + 30 + DESTROY_AFTER_EXIT_MS,
                    {"type": "destroy", "status": "destroyed", "source": "flyd"},
                )
        self.touch()
        return copy.deepcopy(m)

    def _event_later(self, app: str, mid: str, at: int, event: dict[str, Any]) -> None:
        self._schedule(at, "machine_event", app=app, machine_id=mid, event=event)

    def _add_event(self, m: dict[str, Any], event: dict[str, Any], at: int) -> None:
        event = {"id": self._ulid("event", at), **event, "timestamp": at}
        m["events"].insert(0, event)  # newest first, like the API
        m["state"] = event["status"]
        m["updated_at"] = iso(at - at % 1000)

    def _cancel_pending(self, mid: str) -> None:
        self.state["pending"] = [
            p
            for p in self.state["pending"]
            if not (p.get("machine_id") == mid or p.get("instance") == mid or p.get("fly_machine_id") == mid)
        ]

    def stop_machine(self, app: str, mid: str) -> bool:
        """Stop a started machine (requested stop); auto_destroy then destroys it."""
        m = self.machine(app, mid)
        if m is None or m["state"] != "started":
            return False
        self._cancel_pending(mid)
        now = self.now_ms
        self._add_event(m, _exit_event(0, now, requested=True) | {"type": "exit"}, now)
        if m["config"].get("auto_destroy"):
            self._add_event(m, {"type": "destroy", "status": "destroyed", "source": "flyd"}, now + 1)
        self.touch()
        return True

    def destroy_machine(self, app: str, mid: str, force: bool = False) -> tuple[int, dict[str, Any]]:
        """DELETE a machine: refused while it runs unless ``force``; destroyed machines stay readable."""
        m = self.machine(app, mid)
        if m is None:
            return 404, {"error": "machine not found"}
        if m["state"] == "destroyed":
            return 200, {"ok": True}
        if m["state"] == "started" and not force:
            return 412, {"error": "failed_precondition: unable to destroy machine, not currently stopped or suspended"}
        self._cancel_pending(mid)
        self._add_event(m, {"type": "destroy", "status": "destroyed", "source": "user"}, self.now_ms)
        self.touch()
        return 200, {"ok": True}

    def wait_machine(self, app: str, mid: str, state: str, timeout_s: float) -> tuple[int, dict[str, Any] | None]:
        """GET …/wait: jump the clock to the modelled event, or answer 408 after ``timeout_s``."""
        m = self.machine(app, mid)
        if m is None:
            return 404, {"error": "not_found: machine not found"}

        wanted = set(state.split(","))  # the API takes comma-separated states: any one of them will do

        def reached() -> bool:
            if "settled" in wanted and m["state"] in ("started", "stopped", "suspended", "failed", "destroyed"):
                return True
            return m["state"] in wanted

        deadline = self.now_ms + int(timeout_s * 1000)
        while not reached():
            upcoming = sorted(
                (p for p in self.state["pending"] if p.get("machine_id") == mid and p["kind"] == "machine_event"),
                key=lambda p: (p["at_ms"], p["seq"]),
            )
            if not upcoming or upcoming[0]["at_ms"] > deadline:
                break
            self.advance_to(upcoming[0]["at_ms"])
            m = self.machine(app, mid) or m
        if reached():
            ev = m["events"][0]
            return 200, {"ok": True, "state": m["state"], "event_id": ev.get("id"), "version": m["instance_id"]}
        self.advance_to(deadline)
        if m["state"] == "destroyed":
            return 404, {"error": "not_found: machine not found"}
        return 408, None

    # ------------------------------------------------------------------ fly logs
    def _fly_log(
        self, app: str, at_ms: int, message: str, instance: str, region: str, level: str, provider: str
    ) -> None:
        a = self.app(app)
        if a is not None:
            a["logs"].append(
                {
                    "ts_ns": at_ms * 1_000_000 + int(self._next("log")[:6], 16) % 1000,
                    "message": message,
                    "level": level,
                    "instance": instance,
                    "region": region,
                    "provider": provider,
                }
            )

    # ------------------------------------------------------------------ supabase: secrets
    def _set_secret(self, name: str, value: str) -> None:
        self.state["supabase"]["secrets"][name] = {"value": value, "updated_at": iso(self.now_ms)}

    def set_secrets(self, items: list[dict[str, str]]) -> None:
        """Upsert secrets (POST /v1/projects/{ref}/secrets)."""
        for item in items:
            self._set_secret(item["name"], item["value"])
        self.touch()

    def unset_secrets(self, names: list[str]) -> None:
        """Delete the named secrets only (DELETE takes a list of names)."""
        for name in names:
            self.state["supabase"]["secrets"].pop(name, None)
        self.touch()

    # ------------------------------------------------------------------ supabase: tables
    def table(self, name: str) -> dict[str, Any] | None:
        return self.state["supabase"]["tables"].get(name)

    def db_update(self, table: str, match: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
        """Update rows equal to ``match`` on every key; ``updated_at`` follows unless set."""
        t = self.table(table)
        if t is None:
            return []
        changed = []
        for row in t["rows"]:
            if all(str(row.get(k)) == str(v) for k, v in match.items()):
                row.update(values)
                if "updated_at" in t["columns"] and "updated_at" not in values:
                    row["updated_at"] = pg_time(self.now_ms)
                changed.append(copy.deepcopy(row))
        self.touch()
        return changed

    def _db_report(self, table: str, fly_machine_id: str, status: str, at_ms: int) -> None:
        # The app on the machine reports its own status, as the real app does. Its row
        # is almost always among the newest, so look from the end (fleets have many rows).
        t = self.table(table)
        if t is None:
            return
        for row in reversed(t["rows"]):
            if row.get("fly_machine_id") == fly_machine_id:
                row["status"] = status
                row["updated_at"] = pg_time(self.now_ms)
                self.touch()
                return

    # ------------------------------------------------------------------ supabase: functions
    def _add_function(self, slug: str) -> None:
        fid = self._uuid(f"function:{slug}")
        ms = self.now_ms
        self.state["supabase"]["functions"].append(
            {
                "id": fid,
                "slug": slug,
                "name": slug,
                "status": "ACTIVE",
                "version": 1,
                "created_at": ms,
                "updated_at": ms,
                "verify_jwt": True,
                "import_map": False,
                "entrypoint_path": f"file:///tmp/user_fn_{self.state['supabase']['project_ref']}_{fid}_1/source/index.ts",
                "ezbr_sha256": self._hash("ezbr", slug),
            }
        )

    def function(self, slug: str) -> dict[str, Any] | None:
        return next((f for f in self.state["supabase"]["functions"] if f["slug"] == slug), None)

    def _fn_log(
        self, fn: dict[str, Any], exec_id: str, at_ms: int, message: str, level: str, event_type: str = "Log"
    ) -> None:
        self.state["supabase"]["logs"].append(
            {
                "id": self._uuid("fnlog"),
                "timestamp_us": at_ms * 1000 + int(self._next("us")[:4], 16) % 1000,
                "source": "function_logs",
                "event_message": message + "\n",
                "severity_text": {"error": "ERROR", "info": "INFO", "warn": "WARN"}.get(level, ""),
                "log_attributes": {
                    "level": level,
                    "event_type": event_type,
                    "function_id": fn["id"],
                    "execution_id": exec_id,
                },
            }
        )

    def invoke_function(
        self, slug: str, body: dict[str, Any], *, machine_id: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST /functions/v1/<slug>. Models provision-machine as SPEC.md describes it.

        image = secret DOCKER_IMAGE or registry.fly.io/<app>:latest; on an API error it
        logs the error and answers 500 with no row; on success it inserts a `starting`
        row, logs the machine id and image, answers 200 at once and never looks again.
        ``body["app"]`` may override the FLY_APP_NAME secret (several-app scenarios).
        """
        fn = self.function(slug)
        if fn is None:
            return 404, {"code": "NOT_FOUND", "message": "Requested function was not found"}
        sup = self.state["supabase"]
        t0 = self.now_ms
        exec_id = self._uuid("execution")
        self._fn_log(fn, "", t0, "booted (time: 31ms)", "log", "Boot")
        user_id, region = body.get("user_id"), body.get("region", "sjc")
        secrets = sup["secrets"]
        app = str(body.get("app") or secrets.get("FLY_APP_NAME", {}).get("value", ""))
        status, answer = 200, {}
        if not user_id:
            status, answer = 400, {"error": "user_id is required"}
            self._fn_log(fn, exec_id, t0 + 5, "Missing user_id in request body", "error")
        elif self.app(app) is None:
            status, answer = 500, {"error": f"Fly API error (404): app {app!r} not found"}
            self._fn_log(fn, exec_id, t0 + 5, answer["error"], "error")
        else:
            image = secrets["DOCKER_IMAGE"]["value"] if "DOCKER_IMAGE" in secrets else f"{FLY_REGISTRY}/{app}:latest"
            self._fn_log(
                fn, exec_id, t0 + 40, f"Provisioning machine for user {user_id} in {region} with image {image}", "info"
            )
            self.advance_to(t0 + FUNCTION_CREATE_MS)
            config = {
                "image": image,
                "auto_destroy": True,
                "restart": {"policy": "no"},
                "metadata": {"user_id": str(user_id)},
                "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 1024},
            }
            try:
                m = self.create_machine(app, config, region=region, machine_id=machine_id)
            except ManifestUnknown as exc:
                err = json.dumps({"error": str(exc)})
                self._fn_log(fn, exec_id, self.now_ms + 120, f"Fly API error (400): {err}", "error")
                status, answer = 500, {"error": f"Failed to create machine: Fly API error (400): {err}"}
            else:
                row_time = pg_time(self.now_ms + 200)
                table = self.table(sup["machines_table"])
                row = {
                    "id": self._uuid("row"),
                    "user_id": str(user_id),
                    "fly_machine_id": m["id"],
                    "fly_app": app,
                    "region": region,
                    "image": image,
                    "status": "starting",
                    "error": None,
                    "created_at": row_time,
                    "updated_at": row_time,
                }
                assert table is not None
                table["rows"].append(row)
                self._fn_log(fn, exec_id, self.now_ms + 210, f"Created machine {m['id']} with image {image}", "info")
                answer = {"machine_id": m["id"], "status": "starting", "row_id": row["id"], "image": image}
        done = t0 + FUNCTION_DONE_MS
        sup["logs"].append(
            {
                "id": self._uuid("edgelog"),
                "timestamp_us": done * 1000,
                "source": "function_edge_logs",
                "event_message": f"POST | {status} | https://{sup['project_ref']}.supabase.co/functions/v1/{slug}",
                "severity_text": "",
                "log_attributes": {
                    "response.status_code": str(status),
                    "request.method": "POST",
                    "request.pathname": f"/functions/v1/{slug}",
                    "function_id": fn["id"],
                    "execution_id": exec_id,
                    "execution_time_ms": str(FUNCTION_DONE_MS),
                    "deployment_id": f"{sup['project_ref']}_{fn['id']}_{fn['version']}",
                    "version": str(fn["version"]),
                },
            }
        )
        self.advance_to(done)
        return status, answer


def _exit_event(code: int, exited_at_ms: int, *, requested: bool) -> dict[str, Any]:
    return {
        "type": "exit",
        "status": "stopped",
        "source": "flyd",
        "request": {
            "exit_event": {
                "exit_code": code,
                "exited_at": iso(exited_at_ms),  # RFC 3339, as newer flyd writes it
                "guest_exit_code": code,
                "guest_signal": -1,
                "oom_killed": False,
                "requested_stop": requested,
                "restarting": False,
                "signal": -1,
            },
            "restart_count": 0,
        },
    }

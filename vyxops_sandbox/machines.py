"""The Fly machine lifecycle: create, pull, start, run, exit, restart, stop, destroy.

Functions over a :class:`~vyxops_sandbox.world.World` (whose thin methods call
them), so that the world module keeps state and clock while this one keeps the
rules of one machine's life. A run is scheduled as pending steps on the virtual
clock — ``machine_start``, ``machine_exit``, ``machine_event``, ``db_report``,
``fly_log`` — and each start schedules the run that follows it, which is how a
restarting machine's history grows one run at a time.

Facts modelled, and where they come from:

- exit events carry ``request.exit_event`` and ``request.restart_count``;
  ``restarting`` says a restart follows (flyctl ``isConstantlyRestarting`` reads
  exactly these: not requested_stop, restarting, restart_count > 1, exit code != 0);
- ``on-failure`` restarts a non-zero exit up to ``max_retries`` times (10 when
  unset, Fly's restart-policy guide; unverified here), then the machine stays
  ``stopped``; ``always`` restarts on any exit, with a delay that doubles up to
  5 minutes (flyd's real backoff is not documented); ``no`` never restarts. A
  machine created without a policy gets ``on-failure`` (fly-go ``MachineRestart``:
  "Default when no explicit policy is set");
- an exit the user asked for (stop, destroy) says ``requested_stop: true``, is
  never restarted, and the app marks its DB row ``stopped`` before it exits;
- with the platform's ``exit_events: omitempty`` the zero values are left out
  (fly-go ``MachineExitEvent``: every field ``omitempty`` but ``exited_at``).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from vyxops.core.images import FLY_REGISTRY
from vyxops.core.images import parse_image_ref as _parse_ref
from vyxops.core.timeutil import GO_ZERO_TIME, iso
from vyxops_sandbox.refusals import capacity_refusal, rate_refusal

if TYPE_CHECKING:
    from vyxops_sandbox.world import World

# Offsets of the machine lifecycle model, in ms after create. Realistic, not measured:
# Fly pulls, then boots a Firecracker VM in about 1-2 s.
PULL_MS = 1400
START_MS = 1800
APP_REPORT_MS = 2500  # a serving app calls back to the DB this long after start
DESTROY_AFTER_EXIT_MS = 400
PULL_FAIL_MS = 9000
EXIT_EVENT_MS = 30  # flyd records the exit this long after the process is gone
SESSION_STOP_MS = 150  # an ending session marks its row `stopped` this long before it exits
RESTART_DELAY_MS = 1000
MAX_RESTART_DELAY_MS = 5 * 60 * 1000
DEFAULT_MAX_RETRIES = 10
MACHINE_KINDS = ("machine_event", "machine_start", "machine_exit")

_ADJ = "aged billowing bitter cold damp falling frosty lingering misty red snowy summer wild".split()
_NOUN = "wind sun thunder sea frost dust leaf field brook moon pond shadow star".split()


class ManifestUnknown(Exception):
    """An image the Machines API cannot resolve: the create is refused (400) and no machine is made.

    ``code`` is the registry's error code the API passes on: MANIFEST_UNKNOWN for a
    missing tag, NAME_UNKNOWN for a repository no app has (a typo'd repository).
    """

    def __init__(self, ref: str, tag: str | None, code: str = "MANIFEST_UNKNOWN") -> None:
        self.ref = ref
        self.tag = tag
        self.code = code
        super().__init__(f"failed to get manifest {ref}: {code}")


class DuplicateMachine(Exception):
    """A machine id that already names a machine of the app (its history must not be overwritten)."""


class MachineRefused(Exception):
    """A stop or destroy the machine's state does not allow (the scenario step is wrong)."""


# --------------------------------------------------------------------------- create


def create(
    world: World,
    app: str,
    config: dict[str, Any],
    *,
    region: str,
    machine_id: str | None,
    name: str | None,
    session_s: float | None = None,
    run: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create a machine: the image is resolved now, the launch recorded and the rest scheduled.

    ``run`` overrides what the process does (a release command runs its own command
    on the image); ``session_s`` ends a serving app's session after that long. Raises
    :class:`~vyxops_sandbox.refusals.CreateRefused` (429) while a rate limit holds on the app,
    then :class:`ManifestUnknown` for an image the registry lacks, then ``CreateRefused`` when
    the region has no capacity (the platform checks the image before placing the machine):
    either way no machine is made. Every create goes through here (the function's, the served
    Machines API's, steps', release commands'), so these rules hold for all of them. The machine
    returned is the state's own: read it, never change it.
    """
    a = world.app(app)
    if a is None:
        raise KeyError(app)
    if machine_id is not None and machine_id in a["machines"]:
        raise DuplicateMachine(f"machine {machine_id} already exists in app {app}")
    limited = rate_refusal(world, app)
    if limited is not None:
        raise limited
    image = str(config.get("image", ""))
    resolved = world.runnable_image(image)
    if resolved is None:
        ref = _parse_ref(image) if "/" in image else None
        known = ref is not None and (ref.repository in world.state["registry"] or world.app(ref.repository) is not None)
        raise ManifestUnknown(
            image, ref.tag if ref else image, "MANIFEST_UNKNOWN" if known or ref is None else "NAME_UNKNOWN"
        )
    refused = capacity_refusal(world, region)
    if refused is not None:
        raise refused
    repo, tag, digest, manifest = resolved
    t0 = world.now_ms
    mid = machine_id or world.next_hash("machine")[:14]
    m = _new_machine(world, mid, name, region, config, (repo, tag, digest), t0)
    m["_run"] = _run_spec(manifest, run, session_s)
    a["machines"][mid] = m
    add_event(world, m, {"type": "launch", "status": "created", "source": "user"}, t0)
    log(world, app, m, t0 + 100, f"Pulling container image {image}")
    if m["_run"]["behaviour"] == "pull_fail":
        _schedule_pull_failure(world, app, m, image, t0)
    else:
        log(world, app, m, t0 + PULL_MS, f"Successfully prepared image {image} ({PULL_MS / 1000:.1f}s)")
        log(world, app, m, t0 + START_MS - 100, "Configuring firecracker")
        world.schedule(t0 + START_MS, "machine_start", app=app, machine_id=mid)
    world.touch()
    # The world's own record, not a copy: every caller reads its id or run, or serialises it at once.
    # Copying the new machine (config, events) was a third of a busy day's replay.
    return m


def _new_machine(
    world: World,
    mid: str,
    name: str | None,
    region: str,
    config: dict[str, Any],
    image: tuple[str, str | None, str],
    t0: int,
) -> dict[str, Any]:
    h = world.stable_hash("machine-name", mid)
    repo, tag, digest = image
    labels: dict[str, str] | None = {} if not world.platform.fly.empty_as_null else None
    config = copy.deepcopy(config)
    if world.platform.fly.empty_as_null and not config.get("metadata"):
        config["metadata"] = None  # Go's nil map
    return {
        "id": mid,
        "name": name
        or f"{_ADJ[int(h[0:2], 16) % len(_ADJ)]}-{_NOUN[int(h[2:4], 16) % len(_NOUN)]}-{int(h[4:8], 16) % 10000}",
        "state": "created",
        "region": region,
        "image_ref": {"registry": FLY_REGISTRY, "repository": repo, "tag": tag, "digest": digest, "labels": labels},
        "instance_id": world.new_ulid("instance", t0),
        "private_ip": f"fdaa:0:{h[8:12]}:a7b:{h[12:15]}:{h[15:19]}:{h[19:23]}:2",
        "created_at": iso(t0 - t0 % 1000),
        "updated_at": iso(t0 - t0 % 1000),
        "config": config,
        "events": [],
    }


def _run_spec(manifest: dict[str, Any], run: dict[str, Any] | None, session_s: float | None) -> dict[str, Any]:
    """What the machine's process does, kept beside it (``_run``, never served): behaviour, timings, restarts."""
    spec = {
        "behaviour": manifest["behaviour"],
        "exit_code": int(manifest.get("exit_code", 0)),
        "after_ms": int(float(manifest.get("after_s", 2)) * 1000),
        "reports_running": bool(manifest.get("reports_running")),
        "oom_killed": bool(manifest.get("oom_killed")),
        "session_ms": None,
        "restart_count": 0,
    }
    session = session_s if session_s is not None else manifest.get("session_s")
    if session is not None:
        spec["session_ms"] = int(float(session) * 1000)
    if run is not None and spec["behaviour"] != "pull_fail":
        spec.update(run)
    return spec


def _schedule_pull_failure(world: World, app: str, m: dict[str, Any], image: str, t0: int) -> None:
    # The real event for a failed pull is not documented (machine-states-and-events.json):
    # the model records it as a launch_failed event carrying the pull error, then destroys.
    err = f"failed to pull image {image}: unexpected status from registry: 500 Internal Server Error"
    log(world, app, m, t0 + PULL_FAIL_MS - 50, f"Error: {err}", level="error")
    event = {"type": "launch_failed", "status": "launch_failed", "source": "flyd", "request": {"error": err}}
    event_later(world, app, m["id"], t0 + PULL_FAIL_MS, event)
    event_later(world, app, m["id"], t0 + PULL_FAIL_MS + DESTROY_AFTER_EXIT_MS, destroy_event("flyd"))


# --------------------------------------------------------------------------- one run


def apply_pending(world: World, p: dict[str, Any]) -> None:
    """Carry out a due machine step (``machine_event``, ``machine_start`` or ``machine_exit``)."""
    m = world.machine(p["app"], p["machine_id"])
    if m is None:
        return
    if p["kind"] == "machine_event":
        add_event(world, m, p["event"], p["at_ms"])
    elif p["kind"] == "machine_start":
        add_event(world, m, {"type": "start", "status": "started", "source": "flyd"}, p["at_ms"])
        _schedule_run(world, p["app"], m, p["at_ms"])
    else:
        _exit(world, p["app"], m, p["at_ms"], p["exited_at_ms"], p["code"])


def _schedule_run(world: World, app: str, m: dict[str, Any], start: int) -> None:
    """What happens between a start and the next exit, by the process's behaviour."""
    run = m["_run"]
    log(world, app, m, start + 20, f"Machine started in {(START_MS - PULL_MS) / 1000:.3f}s", provider="app")
    if run["behaviour"] in ("serve", "no_callback"):
        log(world, app, m, start + 600, "Listening on 0.0.0.0:8080", provider="app")
        if run["behaviour"] == "serve":
            _report(world, m, start + APP_REPORT_MS, "running")
        if run["session_ms"] is not None:
            end = start + max(run["session_ms"], APP_REPORT_MS + SESSION_STOP_MS + 100)
            if run["behaviour"] == "serve":
                _report(world, m, end - SESSION_STOP_MS, "stopped")
            log(world, app, m, end - 100, "Session ended; shutting down", provider="app")
            _exit_later(world, app, m, end, 0)
        return
    exit_at = start + run["after_ms"]
    if run["reports_running"]:
        _report(world, m, start + min(APP_REPORT_MS, run["after_ms"] // 2), "running")
    if run["oom_killed"]:
        log(world, app, m, exit_at - 10, "Out of memory: Killed process 513 (node) total-vm:1348256kB", level="error")
        log(world, app, m, exit_at + 5, "INFO Process appears to have been OOM killed!", provider="app")
    else:
        log(
            world, app, m, exit_at - 5, f"INFO Main child exited normally with code: {run['exit_code']}", provider="app"
        )
    log(world, app, m, exit_at + 10, "INFO Starting clean up.", provider="app")
    _exit_later(world, app, m, exit_at, run["exit_code"])


def _exit_later(world: World, app: str, m: dict[str, Any], exited_at: int, code: int) -> None:
    world.schedule(
        exited_at + EXIT_EVENT_MS, "machine_exit", app=app, machine_id=m["id"], exited_at_ms=exited_at, code=code
    )


def _exit(world: World, app: str, m: dict[str, Any], at: int, exited_at: int, code: int) -> None:
    """The process is gone: record the exit, then restart, destroy or stay stopped."""
    run = m["_run"]
    restart = _restarts(m, code)
    event = exit_event(
        world, code, exited_at, requested=False, oom=run["oom_killed"], restarting=restart, count=run["restart_count"]
    )
    add_event(world, m, event, at)
    if restart:
        run["restart_count"] += 1
        delay = RESTART_DELAY_MS
        if _policy(m)[0] == "always":
            delay = min(MAX_RESTART_DELAY_MS, RESTART_DELAY_MS * 2 ** min(run["restart_count"] - 1, 20))
        log(world, app, m, at + 50, "Machine exited, restarting per its restart policy")
        world.schedule(at + delay, "machine_start", app=app, machine_id=m["id"])
    elif m["config"].get("auto_destroy"):
        event_later(world, app, m["id"], at + DESTROY_AFTER_EXIT_MS, destroy_event("flyd"))


def _policy(m: dict[str, Any]) -> tuple[str, int]:
    """(policy, max_retries) of a machine; no policy set means flyd's default, on-failure."""
    restart = m["config"].get("restart") or {}
    return str(restart.get("policy") or "on-failure"), int(restart.get("max_retries") or DEFAULT_MAX_RETRIES)


def _restarts(m: dict[str, Any], code: int) -> bool:
    """Whether flyd restarts the machine after an exit it did not ask for, with exit ``code``."""
    policy, max_retries = _policy(m)
    if policy == "always":
        return True
    return policy == "on-failure" and code != 0 and m["_run"]["restart_count"] < max_retries


def _report(world: World, m: dict[str, Any], at: int, role: str) -> None:
    """The app on the machine writes its own row's status, as the real app does: the team's word for ``role``.

    ``role`` is ``running`` or ``stopped``; the row is the one whose machine-id column
    names this machine, in the team's table (``World.db_report``).
    """
    p = world.pipeline
    world.schedule(at, "db_report", table=p.table, fly_machine_id=m["id"], status=p.word(role))


def _reports(m: dict[str, Any]) -> bool:
    """Whether the machine's app talks to the DB (a broken callback never does)."""
    run = m["_run"]
    return run["behaviour"] == "serve" or run["reports_running"]


# --------------------------------------------------------------------------- events


def exit_event(
    world: World,
    code: int,
    exited_at_ms: int,
    *,
    requested: bool,
    oom: bool = False,
    restarting: bool = False,
    count: int = 0,
) -> dict[str, Any]:
    """An ``exit`` event as flyd records it; zero values left out under ``exit_events: omitempty``."""
    exit_ev: dict[str, Any] = {
        "exit_code": code,
        # RFC 3339, as newer flyd writes it; or Go's zero time, an unset time.Time (platform `exited_at: zero`)
        "exited_at": GO_ZERO_TIME if world.platform.fly.exited_at == "zero" else iso(exited_at_ms),
        "guest_exit_code": code,
        "guest_signal": 9 if oom else -1,
        "oom_killed": oom,
        "requested_stop": requested,
        "restarting": restarting,
        "signal": -1,
    }
    request: dict[str, Any] = {"exit_event": exit_ev, "restart_count": count}
    if world.platform.fly.exit_events == "omitempty":
        # fly-go machine_types.go MachineExitEvent: every field `json:",omitempty"` except exited_at,
        # and MachineRequest.RestartCount is omitempty too.
        exit_ev = {k: v for k, v in exit_ev.items() if k == "exited_at" or v not in (0, False)}
        request = {"exit_event": exit_ev} | ({"restart_count": count} if count else {})
    return {"type": "exit", "status": "stopped", "source": "flyd", "request": request}


def destroy_event(source: str) -> dict[str, Any]:
    return {"type": "destroy", "status": "destroyed", "source": source}


def add_event(world: World, m: dict[str, Any], event: dict[str, Any], at: int) -> None:
    """Record ``event`` on ``m`` (newest first, like the API) and move the machine's state.

    Under ``destroy_events: false`` a destroy changes the state only: the record then
    says ``destroyed`` with no ``destroy`` event, as some real records do.
    """
    m["state"] = event["status"]
    m["updated_at"] = iso(at - at % 1000)
    if event["status"] == "destroyed":
        m["_destroyed_at_ms"] = at
        if not world.platform.fly.destroy_events:
            return
    m["events"].insert(0, {"id": world.new_ulid("event", at), **event, "timestamp": at})


def event_later(world: World, app: str, mid: str, at: int, event: dict[str, Any]) -> None:
    world.schedule(at, "machine_event", app=app, machine_id=mid, event=event)


def log(
    world: World, app: str, m: dict[str, Any], at: int, message: str, *, provider: str = "runner", level: str = "info"
) -> None:
    world.schedule(
        at, "fly_log", app=app, instance=m["id"], region=m["region"], message=message, provider=provider, level=level
    )


# --------------------------------------------------------------------------- someone asks


def stop(world: World, app: str, mid: str) -> bool:
    """A requested stop of a started machine: its app marks the row ``stopped``, exits, auto_destroy follows."""
    m = world.machine(app, mid)
    if m is None or m["state"] != "started":
        return False
    _requested_exit(world, app, m)
    if m["config"].get("auto_destroy"):
        add_event(world, m, destroy_event("flyd"), world.now_ms + 1)
    world.touch()
    return True


def _requested_exit(world: World, app: str, m: dict[str, Any]) -> None:
    world.cancel_pending(m["id"])
    now = world.now_ms
    if _reports(m):
        p = world.pipeline
        world.db_report(p.table, m["id"], p.word("stopped"), now)
    world.fly_log(app, now, "Sending signal SIGINT to main child", m["id"], m["region"], "info", "runner")
    add_event(world, m, exit_event(world, 0, now, requested=True, count=m["_run"]["restart_count"]), now)


def destroy(world: World, app: str, mid: str, force: bool = False) -> tuple[int, dict[str, Any]]:
    """DELETE a machine: refused while it runs unless ``force`` (then it is stopped first, as asked)."""
    m = world.machine(app, mid)
    if m is None or not visible(world, m):
        return 404, {"error": "machine not found"}
    if m["state"] == "destroyed":
        return 200, {"ok": True}
    if m["state"] == "started" and not force:
        return 412, {"error": "failed_precondition: unable to destroy machine, not currently stopped or suspended"}
    if m["state"] == "started":
        _requested_exit(world, app, m)
    world.cancel_pending(mid)
    add_event(world, m, destroy_event("user"), world.now_ms)
    world.touch()
    return 200, {"ok": True}


def visible(world: World, m: dict[str, Any]) -> bool:
    """Whether the API still shows ``m``: a destroyed machine vanishes after the platform's retention, if any."""
    hours = world.platform.fly.destroyed_retention_h
    destroyed_at = m.get("_destroyed_at_ms")
    return hours is None or destroyed_at is None or world.now_ms - destroyed_at <= hours * 3_600_000


def wait(world: World, app: str, mid: str, state: str, timeout_s: float) -> tuple[int, dict[str, Any] | None]:
    """GET …/wait: jump the clock to the modelled event, or answer 408 after ``timeout_s``."""
    m = world.machine(app, mid)
    if m is None or not visible(world, m):
        return 404, {"error": "not_found: machine not found"}
    wanted = set(state.split(","))  # the API takes comma-separated states: any one of them will do

    def reached(machine: dict[str, Any]) -> bool:
        settled = ("started", "stopped", "suspended", "failed", "destroyed")
        return machine["state"] in wanted or ("settled" in wanted and machine["state"] in settled)

    deadline = world.now_ms + int(timeout_s * 1000)
    while not reached(m):
        upcoming = sorted(
            (p for p in world.state["pending"] if p.get("machine_id") == mid and p["kind"] in MACHINE_KINDS),
            key=lambda p: (p["at_ms"], p["seq"]),
        )
        if not upcoming or upcoming[0]["at_ms"] > deadline:
            break
        world.advance_to(upcoming[0]["at_ms"])
        m = world.machine(app, mid) or m
    if reached(m):
        ev = m["events"][0] if m["events"] else {}
        return 200, {"ok": True, "state": m["state"], "event_id": ev.get("id"), "version": m["instance_id"]}
    world.advance_to(deadline)
    if m["state"] == "destroyed":
        return 404, {"error": "not_found: machine not found"}
    return 408, None

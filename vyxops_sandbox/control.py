"""What the ``vyxops`` CLI asks of the sandbox: load and check it, host it for a kernel, the ``sandbox`` verb.

Light to import (the world and the server load inside the functions), because the
CLI reserves the hosted sandbox's port before it starts a kernel.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from vyxops_sandbox.hosted import HostedSandbox

if TYPE_CHECKING:
    from vyxops_sandbox.world import World

__all__ = ["HostedSandbox", "load_world", "command"]


def load_world(scenario: str | None, apps: list[str]) -> World:
    """The sandbox's world for ``scenario`` (kept when it already holds it); InputError for an unknown app.

    Nothing is written: a replayed world stays unsaved until :func:`keep_world`, once every input has passed.
    The fault rules are read too, so that a bad ``faults.json`` is refused before any work.
    """
    from vyxops.config import sandbox_dir
    from vyxops.errors import InputError
    from vyxops_sandbox.faults import Faults
    from vyxops_sandbox.world import World

    directory = sandbox_dir()
    Faults.load(directory)
    world = World.load(scenario, directory, save=False)
    known = list(world.state["fly"]["apps"])
    for app in apps:
        if app not in known:
            raise InputError("--app", f"no app {app!r} in sandbox scenario {world.scenario_name}", allowed=known)
    return world


def keep_world(world: World) -> None:
    """Save a world :func:`load_world` replayed (the CLI calls it after its last check)."""
    if world.dirty:
        world.save()


def command(action: str, scenario: str | None, port: int, as_json: bool) -> int:
    """``vyxops sandbox reset | serve | status``."""
    from vyxops.config import sandbox_dir
    from vyxops.timeutil import iso
    from vyxops_sandbox.world import World

    directory = sandbox_dir()
    if action == "reset":
        state = directory / "state.json"
        if state.is_file() or state.is_symlink():
            state.unlink()
        World.open(directory, scenario)  # anything else there (a directory) is refused, named, not removed
        world = World.load(scenario, directory)
        print(f"sandbox reset: {world.scenario_name} at {world.state['scenario']['now']} in {directory}")
        return 0
    world = World.load(scenario, directory)
    if action == "status":
        info = {
            "base_url": f"http://127.0.0.1:{port}",
            "scenario": world.scenario_name,
            "incarnation": world.incarnation,
            "now": iso(world.now_ms),
            "sandbox_dir": str(directory),
            **world.credentials,
        }
        if as_json:
            print(json.dumps(info, indent=1))
        else:
            for k in ("scenario", "incarnation", "now", "sandbox_dir", "base_url"):
                print(f"{k:<12} {info[k]}")
            print("credentials  vyxops sandbox status --json")
        return 0
    from vyxops_sandbox.server import serve

    serve(world, port=port)
    return 0


def check_machine(world: World, app: str, machine_id: str, until: str | None) -> None:
    """``--machine`` names one of the app's machines that existed by the window's end (InputError, exit 2)."""
    from vyxops.errors import InputError
    from vyxops.timeutil import iso, parse_rfc3339_ms

    a = world.app(app) or {}
    m = (a.get("machines") or {}).get(machine_id)
    if m is None:
        known = sorted(a.get("machines") or {})
        raise InputError(
            "--machine",
            f"machine {machine_id} is not one of app {app}'s machines in sandbox scenario {world.scenario_name}",
            allowed=known[:20] or "none: the app has no machines",
        )
    end = parse_rfc3339_ms(until) if until else world.now_ms
    if parse_rfc3339_ms(m["created_at"]) > end:
        raise InputError(
            "--machine", f"machine {machine_id} was created at {m['created_at']}, after the window ({iso(end)})"
        )


def scenarios() -> list[dict[str, object]]:
    """The shipped scenarios: name, apps, title and the story (the file's opening comment)."""
    from vyxops_sandbox.scenario import SCENARIO_DIR, load_scenario, scenario_names

    out: list[dict[str, object]] = []
    for name in scenario_names():
        sc = load_scenario(name)
        text = (SCENARIO_DIR / f"{name}.yaml").read_text(encoding="utf-8")
        story = " ".join(line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#"))
        out.append({"name": name, "apps": list(sc.apps), "title": sc.title, "story": story or sc.title})
    return out

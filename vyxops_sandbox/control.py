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
    from vyxops.core.config import sandbox_dir
    from vyxops.core.errors import InputError
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


def command(action: str, scenario: str | None, port: int, as_json: bool, postgres: bool = False) -> int:
    """``vyxops sandbox reset | serve | status``."""
    from vyxops.core.config import sandbox_dir
    from vyxops.core.timeutil import iso
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
    from vyxops_sandbox.pg_server import PostgresFailed, PostgresMissing
    from vyxops_sandbox.server import serve

    try:
        serve(world, port=port, postgres=postgres)
    except (PostgresMissing, PostgresFailed) as exc:  # before anything was served: a setup problem, said plainly
        from vyxops.core.errors import ConfigError

        raise ConfigError(f"sandbox serve --postgres: {exc}", hint="or serve without --postgres") from None
    return 0


def check_machine(world: World, app: str, machine_id: str, until: str | None) -> None:
    """``--machine`` names one of the app's machines by the window's end (InputError, exit 2), by the rule the
    investigation applies (:func:`vyxops.core.checks.check_machine_of_app`): a machine the Machines API still shows
    for the app, or one the app's rows name."""
    from vyxops.core.checks import check_machine_of_app
    from vyxops.core.timeutil import parse_rfc3339_ms
    from vyxops_sandbox.machines import visible

    a = world.app(app) or {}
    fly = {mid: parse_rfc3339_ms(m["created_at"]) for mid, m in (a.get("machines") or {}).items() if visible(world, m)}
    check_machine_of_app(
        machine_id,
        app,
        fly=fly,
        rows=_row_machines(world, app, set(a.get("machines") or {})),
        end_ms=parse_rfc3339_ms(until) if until else world.now_ms,
        where=f" in sandbox scenario {world.scenario_name}",
    )


def _row_machines(world: World, app: str, apps_machines: set[str]) -> dict[str, int | None]:
    """Machine id → the earliest created_at of the app's rows in the pipeline's table that name it.

    The app's rows as the investigation reads them (vyxops.analysis.evidence._rows_of_app): by the app column when the
    table has one; otherwise a row naming one of the app's machines or an image in the app's repository.
    """
    from vyxops.core.images import parse_image_ref
    from vyxops.core.timeutil import to_ms

    p = world.pipeline
    table = world.table(p.table) or {"rows": []}
    mid_col, app_col, image_col, created_col = (p.column(r) for r in ("machine_id", "app", "image", "created_at"))
    out: dict[str, int | None] = {}
    for row in table["rows"] if mid_col else []:
        mid, image = row.get(mid_col), row.get(image_col) if image_col else None
        if not isinstance(mid, str) or not mid:
            continue
        if app_col:
            ours = row.get(app_col) == app
        else:
            ours = mid in apps_machines or (
                isinstance(image, str) and parse_image_ref(image).repository.split("/", 1)[0] == app
            )
        if not ours:
            continue
        created = row.get(created_col) if created_col else None
        ms = to_ms(created) if created else None
        before = out.get(mid)
        out[mid] = ms if before is None else before if ms is None else min(before, ms)
    return out


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

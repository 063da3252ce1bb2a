"""The ``sandbox`` opener: the simulator in this process, reached through an httpx transport."""

from __future__ import annotations

from pathlib import Path

from vyxops.core import config
from vyxops.fetch.targets import Credentials, Opened, OpenRequest
from vyxops_sandbox.faults import Faults
from vyxops_sandbox.router import SandboxApp, SandboxTransport
from vyxops_sandbox.world import World

#: Where a session's handles keep the world (read by :func:`vyxops_sandbox.testing.world_of`).
WORLD_HANDLE = "sandbox.world"


class SandboxClock:
    """The in-process sandbox's virtual clock: sleeping moves it, no wall time passes."""

    def __init__(self, world: World) -> None:
        self.world = world
        # Every session on this world shares one rate budget (vyxops.fetch.budget), as the
        # world's own rate limits are per world, not per session.
        self.budget_scope: object = world

    def now(self) -> float:
        return self.world.now_ms / 1000

    def sleep(self, seconds: float) -> None:
        self.world.sleep(seconds)


def open_in_process(request: OpenRequest) -> Opened:
    """Load (or keep) the scenario's world under the sandbox directory and serve it in-process."""
    directory = Path(request.sandbox_dir) if request.sandbox_dir else config.sandbox_dir(request.environ)
    world = World.load(request.scenario, directory)
    faults = request.faults if isinstance(request.faults, Faults) else Faults.load(directory)
    creds = world.credentials
    ref = creds["project_ref"]

    def save() -> None:
        if world.dirty:
            world.save()

    return Opened(
        opener="sandbox",
        label=f"sandbox:{world.scenario_name}",
        description=f"sandbox in-process: scenario {world.scenario_name} in {directory}",
        credentials=Credentials(
            creds["fly_api_token"], creds["supabase_service_role_key"], creds["supabase_access_token"], ref
        ),
        clock=SandboxClock(world),
        supabase_url=f"https://{ref}.supabase.co",
        transport=SandboxTransport(SandboxApp(world, faults)),
        org=world.state["fly"]["org"],
        closers=[save],
        handles={WORLD_HANDLE: world},
        incarnation=world.incarnation,
    )

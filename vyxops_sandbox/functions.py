"""Supabase Edge Functions in the sandbox: the functions list and provision-machine's model.

provision-machine is the function of the incident (SPEC.md "Models the sandbox must
follow"): image = secret ``DOCKER_IMAGE`` or ``registry.fly.io/<app>:latest``; it
POSTs a machine with ``auto_destroy: true``, ``restart: {policy: no}`` and metadata
``user_id``; on an API error it logs the error and answers 500 with no row; on
success it inserts a ``starting`` row, logs the machine id and image, answers 200 at
once and never looks at the machine again. Whether a caller may invoke it at all
(``verify_jwt``) is the relay's business: :mod:`vyxops_sandbox.supabase_api`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from vyxops.images import FLY_REGISTRY
from vyxops_sandbox.machines import ManifestUnknown

if TYPE_CHECKING:
    from vyxops_sandbox.world import World

FUNCTION_CREATE_MS = 300  # provision-machine calls the Machines API this far into its run
FUNCTION_DONE_MS = 850
PROVISION = "provision-machine"
PROVISIONING_LINE = "Provisioning machine for user {user_id} in {region} with image {image}"
CREATED_LINE = "Created machine {machine_id} with image {image}"
API_ERROR_LINE = "Fly API error ({status}): {body}"


def add_function(world: World, slug: str) -> None:
    """Deploy a function (FunctionResponse shape, mgmt-functions-list.sample.json); ``verify_jwt`` per platform."""
    fid = world._uuid(f"function:{slug}")
    ms = world.now_ms
    ref = world.state["supabase"]["project_ref"]
    world.state["supabase"]["functions"].append(
        {
            "id": fid,
            "slug": slug,
            "name": slug,
            "status": "ACTIVE",
            "version": 1,
            "created_at": ms,
            "updated_at": ms,
            "verify_jwt": world.platform.supabase.verify_jwt,
            "import_map": False,
            "entrypoint_path": f"file:///tmp/user_fn_{ref}_{fid}_1/source/index.ts",
            "ezbr_sha256": world._hash("ezbr", slug),
        }
    )


def function_log(
    world: World, fn: dict[str, Any], exec_id: str, at_ms: int, message: str, level: str, event_type: str = "Log"
) -> None:
    """One ``function_logs`` row (console output) of the logs endpoint's ``logs`` table."""
    world.state["supabase"]["logs"].append(
        {
            "id": world._uuid("fnlog"),
            "timestamp_us": at_ms * 1000 + int(world._next("us")[:4], 16) % 1000,
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


def invoke(
    world: World, slug: str, body: dict[str, Any], *, machine_id: str | None = None
) -> tuple[int, dict[str, Any]]:
    """POST /functions/v1/<slug> once the relay let it through; ``body["app"]`` may name the app."""
    fn = world.function(slug)
    if fn is None:
        return 404, {"code": "NOT_FOUND", "message": "Requested function was not found"}
    sup = world.state["supabase"]
    t0 = world.now_ms
    exec_id = world._uuid("execution")
    function_log(world, fn, "", t0, "booted (time: 31ms)", "log", "Boot")
    secrets = sup["secrets"]
    app = str(body.get("app") or secrets.get("FLY_APP_NAME", {}).get("value", ""))
    if not body.get("user_id"):
        status, answer = 400, {"error": "user_id is required"}
        function_log(world, fn, exec_id, t0 + 5, "Missing user_id in request body", "error")
    elif world.app(app) is None:
        status, answer = 500, {"error": f"Fly API error (404): app {app!r} not found"}
        function_log(world, fn, exec_id, t0 + 5, answer["error"], "error")
    else:
        image = secrets["DOCKER_IMAGE"]["value"] if "DOCKER_IMAGE" in secrets else f"{FLY_REGISTRY}/{app}:latest"
        status, answer = _provision(world, fn, exec_id, app, image, body, machine_id)
    _edge_log(world, fn, exec_id, slug, status, t0 + FUNCTION_DONE_MS)
    world.advance_to(t0 + FUNCTION_DONE_MS)
    return status, answer


def _provision(
    world: World, fn: dict[str, Any], exec_id: str, app: str, image: str, body: dict[str, Any], machine_id: str | None
) -> tuple[int, dict[str, Any]]:
    user_id, region = str(body["user_id"]), str(body.get("region", "sjc"))
    t0 = world.now_ms
    function_log(
        world, fn, exec_id, t0 + 40, PROVISIONING_LINE.format(user_id=user_id, region=region, image=image), "info"
    )
    world.advance_to(t0 + FUNCTION_CREATE_MS)
    config = {
        "image": image,
        "auto_destroy": True,
        "restart": {"policy": "no"},
        "metadata": {"user_id": user_id},
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 1024},
    }
    try:
        m = world.create_machine(app, config, region=region, machine_id=machine_id)
    except ManifestUnknown as exc:
        err = json.dumps({"error": str(exc)})
        function_log(world, fn, exec_id, world.now_ms + 120, API_ERROR_LINE.format(status=400, body=err), "error")
        return 500, {"error": f"Failed to create machine: Fly API error (400): {err}"}
    row_time = world.pg_now(200)
    row = {
        "id": world._uuid("row"),
        "user_id": user_id,
        "fly_machine_id": m["id"],
        "fly_app": app,
        "region": region,
        "image": image,
        "status": "starting",
        "error": None,
        "created_at": row_time,
        "updated_at": row_time,
    }
    table = world.table(world.state["supabase"]["machines_table"])
    assert table is not None
    table["rows"].append(row)
    created = CREATED_LINE.format(machine_id=m["id"], image=image)
    function_log(world, fn, exec_id, world.now_ms + 210, created, "info")
    return 200, {"machine_id": m["id"], "status": "starting", "row_id": row["id"], "image": image}


def _edge_log(world: World, fn: dict[str, Any], exec_id: str, slug: str, status: int, done_ms: int) -> None:
    """The invocation's ``function_edge_logs`` row (one per request that reached the function)."""
    sup = world.state["supabase"]
    sup["logs"].append(
        {
            "id": world._uuid("edgelog"),
            "timestamp_us": done_ms * 1000,
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

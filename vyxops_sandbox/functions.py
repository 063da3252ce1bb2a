"""Supabase Edge Functions in the sandbox: the functions list and the provisioning function's model.

The provisioning function follows the scenario's pipeline (:mod:`vyxops_sandbox.pipeline`;
without a ``pipeline:`` block, the seed team's provision-machine of SPEC.md "Models the
sandbox must follow"). Its image is the image secret, else the fallback (``{app}`` filled),
else it answers 500 in its own words without calling Fly. It POSTs a machine with
``auto_destroy: true``, ``restart: {policy: no}`` and the user in metadata; on success it
inserts a row with the team's columns and first ``starting`` word, logs the team's
``created`` line and answers 200 at once with the machine id, never looking at the machine
again. On any Fly error (a missing image, a refused token, a rate limit, no capacity) it
logs the team's ``failed`` line (or nothing) and answers 500 ``{"error": …}``, inserting a
row only when the team's function does (``row_on_failure``). Every invocation that reaches
it leaves a ``function_edge_logs`` row with its HTTP status, the one signal every function
shares; the runtime's boot line stays. Whether a caller may invoke it at all
(``verify_jwt``) is the relay's business: :mod:`vyxops_sandbox.supabase_api`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vyxops_sandbox.machines import ManifestUnknown
from vyxops_sandbox.refusals import APP_NOT_FOUND, CreateRefused, function_refusal

if TYPE_CHECKING:
    from vyxops_sandbox.pipeline import Pipeline
    from vyxops_sandbox.world import World

FUNCTION_CREATE_MS = 300  # the function calls the Machines API this far into its run
FUNCTION_DONE_MS = 850
DEFAULT_REGION = "sjc"  # the function's region when the body names none (the sandbox's default region)
#: The seed team's function (SPEC.md) and its log wording, the defaults of a scenario without a
#: ``pipeline:`` block. Live functions word things as their authors please: the product must not
#: rely on these (they used to live in vyxops.core.facts; the sandbox owns them now).
PROVISION = "provision-machine"
PROVISIONING_LINE = "Provisioning machine for user {user_id} in {region} with image {image}"
CREATED_LINE = "Created machine {machine_id} with image {image}"
API_ERROR_LINE = "Fly API error ({status}): {body}"
SILENT_ERROR = "Internal Server Error"  # what a function that logs nothing answers on failure (its own words)


def add_function(world: World, slug: str) -> None:
    """Deploy a function (FunctionResponse shape, mgmt-functions-list.sample.json); ``verify_jwt`` per platform."""
    fid = world.new_uuid(f"function:{slug}")
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
            "ezbr_sha256": world.stable_hash("ezbr", slug),
        }
    )


def function_log(
    world: World, fn: dict[str, Any], exec_id: str, at_ms: int, message: str, level: str, event_type: str = "Log"
) -> None:
    """One ``function_logs`` row (console output) of the logs endpoint's ``logs`` table."""
    world.state["supabase"]["logs"].append(
        {
            "id": world.new_uuid("fnlog"),
            "timestamp_us": at_ms * 1000 + int(world.next_hash("us")[:4], 16) % 1000,
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


@dataclass
class _Call:
    """One invocation as the function's code holds it: who asked, where, and with which image."""

    fn: dict[str, Any]
    exec_id: str
    app: str
    user: str
    region: str
    image: str | None

    def fill(self, template: str, **more: Any) -> str:
        """A log template filled (``{user_id}`` too: the seed's own lines name the user so)."""
        values = {"user": self.user, "user_id": self.user, "region": self.region, "image": self.image or ""}
        return template.format_map({**values, "machine_id": "", "status": "", "body": "", **more})


def invoke(
    world: World, slug: str, body: dict[str, Any], *, machine_id: str | None = None
) -> tuple[int, dict[str, Any]]:
    """POST /functions/v1/<slug> once the relay let it through; ``body["app"]`` may name the app.

    The user and region come from the body keys the pipeline's ``invoke.body`` marks
    ``{canary_user}`` and ``{region}``; a missing user is a 400 and no call to Fly.
    """
    fn = world.function(slug)
    if fn is None:
        return 404, {"code": "NOT_FOUND", "message": "Requested function was not found"}
    p = world.pipeline
    t0 = world.now_ms
    exec_id = world.new_uuid("execution")
    function_log(world, fn, "", t0, "booted (time: 31ms)", "log", "Boot")
    secrets = world.state["supabase"]["secrets"]
    app = str(body.get("app") or secrets.get("FLY_APP_NAME", {}).get("value", ""))
    if not body.get(p.user_key):
        status, answer = 400, {"error": f"{p.user_key} is required"}
        if p.log_failed is not None:
            function_log(world, fn, exec_id, t0 + 5, f"Missing {p.user_key} in request body", "error")
    else:
        region = str(body.get(p.region_key, DEFAULT_REGION)) if p.region_key else DEFAULT_REGION
        call = _Call(fn, exec_id, app, str(body[p.user_key]), region, _image(world, p, app))
        status, answer = _provision(world, p, call, machine_id)
    _edge_log(world, fn, exec_id, slug, status, t0 + FUNCTION_DONE_MS)
    world.advance_to(t0 + FUNCTION_DONE_MS)
    return status, answer


def _image(world: World, p: Pipeline, app: str) -> str | None:
    """The image secret's value, else the fallback with ``{app}`` filled, else None (the function has none)."""
    secrets = world.state["supabase"]["secrets"]
    if p.image_secret and p.image_secret in secrets:
        return str(secrets[p.image_secret]["value"])
    return p.image_fallback.replace("{app}", app) if p.image_fallback else None


def _provision(world: World, p: Pipeline, call: _Call, machine_id: str | None) -> tuple[int, dict[str, Any]]:
    """Create the machine and record it, or answer the failure in the team's words."""
    t0 = world.now_ms
    if call.image is None:
        return _unset(world, p, call, t0)
    if p.log_before is not None:
        function_log(world, call.fn, call.exec_id, t0 + 40, call.fill(p.log_before), "info")
    world.advance_to(t0 + FUNCTION_CREATE_MS)
    config = {
        "image": call.image,
        "auto_destroy": True,
        "restart": {"policy": "no"},
        "metadata": {p.user_key: call.user},  # the seed's `user_id`; another team names its user its own way
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 1024},
    }
    try:
        m = _create(world, p, call, config, machine_id)
    except ManifestUnknown as exc:
        return _failed(world, p, call, 400, {"error": str(exc)})
    except CreateRefused as exc:
        return _failed(world, p, call, exc.status, exc.body)
    starting = p.word("starting")
    row = _insert_row(world, p, call, m["id"], starting)
    if p.log_created is not None:
        line = call.fill(p.log_created, machine_id=m["id"], status=200)
        function_log(world, call.fn, call.exec_id, world.now_ms + 210, line, "info")
    answer: dict[str, Any] = {p.invoke_machine_id: m["id"]}  # the machine id under the team's key wins any clash
    for key, value in (("status", starting), ("row_id", row["id"]), ("image", call.image)):
        answer.setdefault(key, value)
    return 200, answer


def _create(world: World, p: Pipeline, call: _Call, config: dict[str, Any], machine_id: str | None) -> dict[str, Any]:
    """The function's POST /v1/apps/{app}/machines, refused in the platform's order (refusals.py)."""
    token_set = not p.token_modelled or p.fly_token_secret in world.state["supabase"]["secrets"]
    refused = function_refusal(world, token_set)
    if refused is not None:
        raise refused
    if world.app(call.app) is None:
        raise CreateRefused(404, APP_NOT_FOUND)
    return world.create_machine(call.app, config, region=call.region, machine_id=machine_id)


def _failed(world: World, p: Pipeline, call: _Call, status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A Fly error: the team's ``failed`` line (or nothing), a row when its function writes one, 500."""
    if p.log_failed is None:
        error = SILENT_ERROR
    else:
        line = call.fill(p.log_failed, status=status, body=json.dumps(body))
        function_log(world, call.fn, call.exec_id, world.now_ms + 120, line, "error")
        error = f"Failed to create machine: {line}" if p.log_failed == API_ERROR_LINE else line
    if p.row_on_failure is not None:
        _insert_row(world, p, call, None, p.row_on_failure, error)
    return 500, {"error": error}


def _unset(world: World, p: Pipeline, call: _Call, t0: int) -> tuple[int, dict[str, Any]]:
    """No image secret and no fallback: the function cannot provision, says so and never calls Fly.

    The wording is the sandbox's (a function checking its env var first); a team whose
    function logs nothing on failure (``logs.failed: null``) stays silent here too.
    """
    error = f"{p.image_secret} is not set"
    if p.log_failed is not None:
        function_log(world, call.fn, call.exec_id, t0 + 40, error, "error")
    if p.row_on_failure is not None:
        _insert_row(world, p, call, None, p.row_on_failure, error)
    return 500, {"error": error}


def _insert_row(
    world: World, p: Pipeline, call: _Call, machine: str | None, status: str, error: str | None = None
) -> dict[str, Any]:
    """The function's INSERT into the team's table, with the team's column names (absent roles skipped)."""
    table = world.table(p.table)
    assert table is not None
    stamp = world.pg_now(200)
    row: dict[str, Any] = {c: None for c in table["columns"]}
    row["id"] = world.new_uuid("row")
    row["region"] = call.region
    values = {"user": call.user, "machine_id": machine, "app": call.app, "image": call.image, "status": status,
              "error": error, "created_at": stamp, "updated_at": stamp}  # fmt: skip
    for role, value in values.items():
        column = p.column(role)
        if column:
            row[column] = value
    table["rows"].append(row)
    return row


def _edge_log(world: World, fn: dict[str, Any], exec_id: str, slug: str, status: int, done_ms: int) -> None:
    """The invocation's ``function_edge_logs`` row (one per request that reached the function)."""
    sup = world.state["supabase"]
    sup["logs"].append(
        {
            "id": world.new_uuid("edgelog"),
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

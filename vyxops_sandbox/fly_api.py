"""The sandbox's Fly.io HTTP APIs: the Machines API, GraphQL releases, REST releases and logs.

Every answer is read from :class:`~vyxops_sandbox.world.World` state and every change
goes through a ``World`` method; this module only speaks the wire formats. Shapes
follow the files in ``shared/reference/fly/`` (named beside each one). Where the real
answer is unknown the code says so and picks the answer that loses no evidence.

Requests arrive with their real paths: ``/v1/apps/…`` (Machines API, served at
``https://api.machines.dev``), ``/graphql`` and ``/api/v1/apps/…`` (``https://api.fly.io``).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import itertools
import json
import re
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx

from vyxops.core.facts import FLY_LOG_DEFAULT_REACH_NS, FLY_LOG_PAGE, FLY_LOG_RETENTION_NS
from vyxops_sandbox import limits
from vyxops_sandbox.machines import visible
from vyxops_sandbox.ordered import sorted_view
from vyxops_sandbox.refusals import APP_NOT_FOUND, RATE_LIMITED, UNAUTHENTICATED, CreateRefused
from vyxops_sandbox.world import ManifestUnknown, World

__all__ = [
    "handle_machines",
    "handle_graphql",
    "handle_fly_rest",
    "request_id",
    "go_not_found",
    "json_response",
]

JSON_TYPE = "application/json; charset=utf-8"  # what the Machines API sends (machines-api-error-bodies.observed.json)

# Machine states (machine-states-and-events.json): the list filter documents four, but
# every state word is accepted so that a filter never hides a machine by a typo's luck.
MACHINE_STATES = frozenset(
    "created started stopped suspended failed creating starting stopping restarting suspending destroying "
    "launch_failed updating replacing destroyed replaced migrated".split()
)
WAIT_STATES = ("started", "stopped", "suspended", "destroyed", "failed", "settled")  # spec enum of …/wait?state=
DELETED_STATES = frozenset({"destroyed"})  # left out of a list unless include_deleted=true
SUMMARY_DROPS = (
    "config",
    "incomplete_config",
    "checks",
    "events",
    "host_status",
    "nonce",
)  # spec: summary "omit config, checks, events, host_status, nonce, etc."
MAX_MACHINE_PAGE = 1000  # newer spec: limit "must be between 1 and 1000"
MAX_APP_PAGE = 5000  # newer spec: apps limit "must be between 1 and 5000"
CURSOR_TTL_MS = 30 * 60 * 1000  # newer spec: "Cursor expires 30 minutes after the first page was requested."
EVENTS_DEFAULT, EVENTS_MAX = 20, 50  # spec: events limit "max of 50 … 20 by default"
WAIT_DEFAULT_S, WAIT_MAX_S = 60, 60  # spec: wait "will block for up to 60 seconds"
LOG_PAGE = FLY_LOG_PAGE  # the logs endpoint's facts (superfly/docs monitoring/logs-api-options.mdx)
LOG_WINDOW_NS = FLY_LOG_DEFAULT_REACH_NS
LOG_RETENTION_NS = FLY_LOG_RETENTION_NS

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_REQUEST_SEQ: weakref.WeakKeyDictionary[World, int] = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------- shared wire helpers
def request_id(world: World) -> str:
    """A ``fly-request-id`` like ``01JNRQ9VVKJ7HZFMJWJB3M3RYN-yyz``: a ULID at the virtual clock plus an edge region.

    Deterministic: the n-th answer a world gives always carries the same id. The counter
    lives beside the world, not in its state, so reading never changes platform state.
    """
    n = _REQUEST_SEQ.get(world, 0) + 1
    _REQUEST_SEQ[world] = n
    ms = world.now_ms
    h = int(hashlib.sha256(f"{world.scenario_name}:fly-request:{n}".encode()).hexdigest(), 16)
    t = "".join(_CROCKFORD[(ms >> (5 * i)) & 31] for i in reversed(range(10)))
    r = "".join(_CROCKFORD[(h >> (5 * i)) & 31] for i in range(16))
    return f"{t}{r}-sjc"


def json_response(
    world: World, status: int, body: Any, headers: dict[str, str] | None = None, *, null: bool = False
) -> httpx.Response:
    """A JSON answer with Fly's headers; ``body=None`` sends no body at all, unless ``null`` (a JSON ``null``)."""
    all_headers = {"fly-request-id": request_id(world), **(headers or {})}
    if body is None and not null:
        return httpx.Response(status, content=b"", headers=all_headers)
    all_headers.setdefault("content-type", JSON_TYPE)
    # Go's json.Encoder ends a body with a newline; keep that so byte-level clients see the same.
    content = (json.dumps(body, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    return httpx.Response(status, content=content, headers=all_headers)


def go_not_found(world: World) -> httpx.Response:
    """Go's default mux answer for a path no route matches: plain text, not JSON."""
    return httpx.Response(
        404,
        content=b"404 page not found\n",
        headers={
            "content-type": "text/plain; charset=utf-8",
            "x-content-type-options": "nosniff",
            "fly-request-id": request_id(world),
        },
    )


def _method_not_allowed(world: World, allowed: set[str]) -> httpx.Response:
    # Go 1.22's ServeMux answer for a known path with another method; the real mux is unknown.
    return httpx.Response(
        405,
        content=b"Method Not Allowed\n",
        headers={
            "content-type": "text/plain; charset=utf-8",
            "allow": ", ".join(sorted(allowed)),
            "fly-request-id": request_id(world),
        },
    )


def fly_token_ok(world: World, request: httpx.Request) -> bool:
    """Whether the request carries the sandbox's Fly token, as Fly's services read an Authorization header.

    A legacy token is compared whole, after ``Bearer``. A macaroon token is read as
    superfly/macaroon's ``Parse`` (format.go at 8578343, the parser of ``FlyV1``
    headers) reads one: any leading ``Bearer``/``FlyV1`` schemes are stripped (so
    ``Bearer FlyV1 <bundle>``, the docs' curl with a pasted token, is accepted), the
    rest is split on commas without trimming, ``fo1_`` user tokens are *skipped*, and
    any other part that is not ``fm1r_``/``fm1a_``/``fm2_`` refuses the header. So a
    ``~/.fly/config.yml`` bundle sent whole (macaroons plus ``fo1_…``) is accepted by
    the Machines API here. That is an inference: flaps' source is not public, but
    superfly/macaroon is the token library Fly publishes and its ``Parse`` has a case
    for exactly this (``oauthTokenLabel = "fo1"``: skipped), and fly-go's own comment
    says only that for services other than GraphQL "macaroons are preferred". So fly-go
    dropping the user token (``tokens.Flaps()``) keeps it off services that do not need
    it; it is not a refusal to model. GraphQL accepts both kinds together. A header of
    user tokens only under ``FlyV1`` holds no macaroon and is refused ("no valid tokens
    found"). Macaroons are matched in any order (verification does not depend on it).
    """
    header = request.headers.get("authorization", "").strip()
    if header.partition(" ")[0].lower() not in _FLY_SCHEMES:
        return False
    presented = _strip_fly_schemes(header)
    expected = world.credentials["fly_registry_password"]  # the token without its scheme
    if not _macaroon_label(expected.partition(",")[0]):
        return hmac.compare_digest(presented, expected)  # a legacy personal token
    macaroons = _macaroon_parts(presented)
    return macaroons is not None and hmac.compare_digest(
        ",".join(sorted(macaroons)), ",".join(sorted(expected.split(",")))
    )


_FLY_SCHEMES = ("bearer", "flyv1")


def _strip_fly_schemes(header: str) -> str:
    """``header`` without leading ``Bearer``/``FlyV1`` schemes, case-insensitive and repeated (macaroon's rule)."""
    while True:
        scheme, sep, rest = header.partition(" ")
        if not sep or scheme.lower() not in _FLY_SCHEMES:
            return header
        header = rest.strip()


def _macaroon_label(part: str) -> bool:
    return part.partition("_")[0] in ("fm1r", "fm1a", "fm2")


def _macaroon_parts(token: str) -> list[str] | None:
    """The macaroons of a comma-joined token, ``fo1_`` parts skipped; None when a part is not a Fly token."""
    kept = []
    for part in token.split(","):
        label, sep, body = part.partition("_")
        if sep and label == "fo1":
            continue
        if not sep or not body or not _macaroon_label(part):
            return None
        kept.append(part)
    return kept or None


def _empty_as(world: World, items: list[Any]) -> list[Any] | None:
    """``items``, or None for an empty list when the scenario says Fly sends Go's nil slices (``null``)."""
    return None if not items and world.platform.fly.empty_as_null else items


def _parse_bool(value: str | None) -> bool | None:
    """Go's strconv.ParseBool; ``None`` when the text is not a boolean. An empty value reads as false."""
    if value is None or value == "":
        return False
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def _parse_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without the sandbox's internal keys (those starting with ``_``), for an answer serialised at once.

    Nested values are the state's own, not copies: every caller hands the result straight to
    :func:`json_response`, which writes it out before the state can change, and nothing
    changes it in between. Deep-copying a whole list page (config, events) cost more than
    serialising it.
    """
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _public_machine(m: dict[str, Any], *, summary: bool = False, nil_lists: bool = False) -> dict[str, Any]:
    out = _public(m)
    if "events" in out:
        out["events"] = [_public(e) for e in out["events"]] or (None if nil_lists else [])
    if summary:
        for key in SUMMARY_DROPS:
            out.pop(key, None)
    return out


def _is_deleted(m: dict[str, Any]) -> bool:
    return bool(m.get("_deleted")) or m.get("state") in DELETED_STATES


def _machine_order(m: dict[str, Any]) -> tuple[str, str]:
    # World writes created_at second-aligned as YYYY-MM-DDTHH:MM:SSZ, so text order is time order.
    return (str(m.get("created_at", "")), str(m["id"]))


def _encode_cursor(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _json_body(request: httpx.Request, go_type: str) -> tuple[Any, str | None]:
    """The request's JSON body and, when it does not decode, a Go-like decode error."""
    raw = request.content
    if not raw.strip():
        return None, None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        # Go's wording differs in detail ("invalid character … looking for beginning of value").
        return None, f"invalid character in request body: {exc}"
    if body is not None and not isinstance(body, dict):
        kind = {list: "array", str: "string", bool: "bool"}.get(type(body), "number")
        # Verbatim pattern of machines-api-error-bodies.observed.json (POST …/stop, 400).
        return None, f"json: cannot unmarshal {kind} into Go value of type {go_type}"
    return body, None


# ---------------------------------------------------------------------------- Machines API
Params = dict[str, str]
Route = Callable[[World, httpx.Request, Params], httpx.Response]


def _list_apps(world: World, request: httpx.Request, p: Params) -> httpx.Response:
    """GET /v1/apps?org_slug= (apps-list.response.docs.json); newer spec's limit/cursor with next_cursor in the body."""
    q = request.url.params
    org = q.get("org_slug")
    if not org:
        # The spec marks org_slug required; the real error text is unknown.
        return json_response(world, 400, {"error": "org_slug is required"})
    apps = sorted(
        (a for a in world.state["fly"]["apps"].values() if a.get("org", world.state["fly"]["org"]) == org),
        key=lambda a: a["name"],
    )
    if not apps and org != world.state["fly"]["org"]:
        # Unknown org: the real answer is unknown; an error says more than an empty list.
        return json_response(world, 404, {"error": "organization not found"})
    body: dict[str, Any] = {"total_apps": len(apps)}
    limit_text, cursor = q.get("limit"), q.get("cursor")
    start = 0
    if cursor and not limit_text:
        return json_response(world, 400, {"error": "cursor requires limit"})
    if limit_text:
        limit = _parse_int(limit_text)
        if limit is None or not 1 <= limit <= MAX_APP_PAGE:
            return json_response(world, 400, {"error": f"limit must be between 1 and {MAX_APP_PAGE}"})
        if cursor:
            data = _decode_cursor(cursor)
            if data is None or not isinstance(data.get("after"), str):
                return json_response(world, 400, {"error": "invalid cursor"})
            start = sum(1 for a in apps if a["name"] <= data["after"])
        page = apps[start : start + limit]
        if start + limit < len(apps):
            body["next_cursor"] = _encode_cursor({"after": page[-1]["name"]})
    else:
        page = apps
    body["apps"] = [
        {
            "id": a["id"],
            "name": a["name"],
            "machine_count": sum(1 for m in a["machines"].values() if not _is_deleted(m)),
            "volume_count": 0,  # the sandbox models no volumes
            "network": "default",
        }
        for a in page
    ]
    return json_response(world, 200, body)


def _get_app(world: World, request: httpx.Request, p: Params) -> httpx.Response:
    """GET /v1/apps/{app} (apps-get.response.docs.json)."""
    a = world.app(p["app"])
    if a is None:
        return _app_not_found(world)
    org = a.get("org", world.state["fly"]["org"])
    # The org's display name is not in the world; its slug stands in for it.
    return json_response(
        world,
        200,
        {"id": a["id"], "name": a["name"], "status": a["status"], "organization": {"name": org, "slug": org}},
    )


def _app_not_found(world: World) -> httpx.Response:
    # Not in the spec (Get App documents only 200); body text as the brief and flyctl reports have it.
    return json_response(world, 404, APP_NOT_FOUND)


def _machine_not_found(world: World) -> httpx.Response:
    return json_response(world, 404, {"error": "machine not found"})


def _list_machines(world: World, request: httpx.Request, p: Params) -> httpx.Response:
    """GET /v1/apps/{app}/machines with include_deleted, summary, state, region, metadata.{key}, limit and cursor.

    Destroyed machines only with include_deleted=true (why the seed's machine "disappeared").
    Order is (created_at, id); with ``limit`` the next page's cursor is in ``fly-next-cursor``.
    """
    a = world.app(p["app"])
    if a is None:
        return _app_not_found(world)
    q = request.url.params
    flags: dict[str, bool] = {}
    for name in ("include_deleted", "summary", "include_leases"):
        value = _parse_bool(q.get(name))
        if value is None:
            # Real answer unknown; refusing beats silently hiding destroyed machines.
            return json_response(world, 400, {"error": f"invalid {name}: {q.get(name)!r} is not a boolean"})
        flags[name] = value
    states: set[str] = set()
    for raw in q.get_list("state"):
        states.update(s.strip() for s in raw.split(",") if s.strip())
    unknown = sorted(states - MACHINE_STATES)
    if unknown:
        return json_response(world, 400, {"error": f"invalid state filter: {', '.join(unknown)}"})
    shown = _machine_filter(world, q, states, flags["include_deleted"])
    keys, ordered = sorted_view(a["machines"], "machines", _machine_order)

    headers: dict[str, str] = {}
    limit_text, cursor = q.get("limit"), q.get("cursor")
    if cursor and not limit_text:
        return json_response(world, 400, {"error": "cursor requires limit"})
    if limit_text:
        limit = _parse_int(limit_text)
        if limit is None or not 1 <= limit <= MAX_MACHINE_PAGE:
            return json_response(world, 400, {"error": f"limit must be between 1 and {MAX_MACHINE_PAGE}"})
        first_ms = world.now_ms
        if cursor:
            data = _decode_cursor(cursor)
            if data is None or not isinstance(data.get("after"), list) or not isinstance(data.get("t"), int):
                return json_response(world, 400, {"error": "invalid cursor"})
            first_ms = data["t"]
            if world.now_ms - first_ms > CURSOR_TTL_MS:
                # Expiry is documented; its error text is not.
                return json_response(world, 400, {"error": "cursor expired"})
            start = bisect.bisect_right(keys, tuple(data["after"]))  # the first machine after the cursor
        else:
            start = 0
        # Walk from the cursor only as far as this page and one more shown machine (is there a next page?).
        page = list(itertools.islice((m for m in itertools.islice(ordered, start, None) if shown(m)), limit + 1))
        if len(page) > limit:
            page = page[:limit]
            headers["fly-next-cursor"] = _encode_cursor({"after": list(_machine_order(page[-1])), "t": first_ms})
        machines = page
    else:
        machines = [m for m in ordered if shown(m)]
    body = _empty_as(
        world,
        [_public_machine(m, summary=flags["summary"], nil_lists=world.platform.fly.empty_as_null) for m in machines],
    )
    return json_response(world, 200, body, headers, null=True)


def _machine_filter(
    world: World, q: httpx.QueryParams, states: set[str], include_deleted: bool
) -> Callable[[dict[str, Any]], bool]:
    """Whether a list with these filters shows a machine."""
    region = q.get("region") or None
    metadata = {k[len("metadata.") :]: v for k, v in q.multi_items() if k.startswith("metadata.")}

    def shown(m: dict[str, Any]) -> bool:
        if not visible(world, m):
            return False  # destroyed longer ago than the platform keeps machines
        # A state filter applies after the deleted ones are left out: state=destroyed needs include_deleted too
        # (real behaviour unknown; this way one flag decides whether destroyed machines show).
        if _is_deleted(m) and not include_deleted:
            return False
        if states and m.get("state") not in states:
            return False
        if region and m.get("region") != region:
            return False
        meta = (m.get("config") or {}).get("metadata") or {}
        return not any(str(meta.get(k)) != v or k not in meta for k, v in metadata.items())

    return shown


def _create_machine(world: World, request: httpx.Request, p: Params) -> httpx.Response:
    """POST /v1/apps/{app}/machines: the image is checked now; a missing tag is 400 MANIFEST_UNKNOWN and no machine.

    A region out of capacity (a scenario's ``fly_capacity``) refuses the create too, probes and
    canaries alike: 412 with ``status: insufficient_capacity`` (refusals.py says where it comes from).
    """
    if world.app(p["app"]) is None:
        return _app_not_found(world)
    body, error = _json_body(request, "main.createMachineRequest")
    if error:
        return json_response(world, 400, {"error": error})
    body = body or {}
    config = body.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("image"), str) or not config["image"].strip():
        # Real wording unknown.
        return json_response(world, 400, {"error": "invalid config.image: an image is required"})
    if body.get("skip_launch"):
        # The world always launches what it creates: refuse rather than start a machine asked not to start.
        return json_response(world, 501, {"error": "vyxops sandbox: skip_launch is not modelled"})
    kwargs: dict[str, Any] = {}
    if isinstance(body.get("region"), str) and body["region"]:
        kwargs["region"] = body["region"]  # omitted: the world's default region stands for "near you"
    if isinstance(body.get("name"), str) and body["name"]:
        kwargs["name"] = body["name"]
    try:
        machine = world.create_machine(p["app"], config, **kwargs)
    except ManifestUnknown as exc:
        # machines-api-error-bodies.observed.json: the wording of the vyx-app incident. For a repository
        # no app has, the code is NAME_UNKNOWN (the registry's, as pushes report it); the wording is unverified.
        return json_response(world, 400, {"error": str(exc)})
    except CreateRefused as exc:
        return json_response(world, exc.status, exc.body)
    world.touch()
    return json_response(
        world, 200, _public_machine(machine, nil_lists=world.platform.fly.empty_as_null)
    )  # machines-create.response.docs.json


def _get_machine(world: World, request: httpx.Request, p: Params) -> httpx.Response:
    """GET /v1/apps/{app}/machines/{id}: destroyed machines stay readable by id."""
    if world.app(p["app"]) is None:
        return _app_not_found(world)
    m = world.machine(p["app"], p["id"])
    if m is None or not visible(world, m):
        return _machine_not_found(world)
    return json_response(world, 200, _public_machine(m, nil_lists=world.platform.fly.empty_as_null))


def _machine_events(world: World, request: httpx.Request, p: Params) -> httpx.Response:
    """GET …/{id}/events?limit=: newest first, 20 by default, at most 50."""
    if world.app(p["app"]) is None:
        return _app_not_found(world)
    m = world.machine(p["app"], p["id"])
    if m is None or not visible(world, m):
        return _machine_not_found(world)
    limit = EVENTS_DEFAULT
    text = request.url.params.get("limit")
    if text:
        parsed = _parse_int(text)
        if parsed is None:
            return json_response(world, 400, {"error": f"invalid limit: {text!r}"})
        # "max of 50": whether a larger value is clamped or refused is unknown; clamped here.
        limit = min(parsed, EVENTS_MAX) if parsed > 0 else EVENTS_DEFAULT
    events = sorted(m["events"], key=lambda e: e["timestamp"], reverse=True)[:limit]
    return json_response(world, 200, _empty_as(world, [_public(e) for e in events]), null=True)


def _wait_machine(world: World, request: httpx.Request, p: Params) -> httpx.Response:
    """GET …/{id}/wait?state=&timeout=: jumps the virtual clock; 200 WaitMachineResponse, 408 on timeout, 404 when gone.

    ``instance_id``/``version``/``from_event_id`` are accepted but not modelled: the wait
    looks at the machine's current state only.
    """
    if world.app(p["app"]) is None:
        return _app_not_found(world)
    q = request.url.params
    states: list[str] = []
    for raw in q.get_list("state") or ["started"]:
        states.extend(s.strip() for s in raw.split(",") if s.strip())
    states = states or ["started"]
    bad = [s for s in states if s not in WAIT_STATES]
    if bad:
        return json_response(
            world, 400, {"error": f"invalid state: {', '.join(bad)} (one of {', '.join(WAIT_STATES)})"}
        )
    timeout_s = WAIT_DEFAULT_S
    text = q.get("timeout")
    if text:
        parsed = _parse_int(text[:-1] if text.endswith("s") else text)
        if parsed is None or not 1 <= parsed <= WAIT_MAX_S:
            return json_response(world, 400, {"error": f"invalid timeout: {text!r} (1 to {WAIT_MAX_S} seconds)"})
        timeout_s = parsed
    if world.machine(p["app"], p["id"]) is None:
        return json_response(
            world, 404, {"error": "not_found: machine not found"}
        )  # machines-api-error-bodies.observed.json
    status, body = world.wait_machine(p["app"], p["id"], ",".join(dict.fromkeys(states)), timeout_s)
    world.touch()
    # 408: the body is not documented (machines-api-error-bodies.observed.json), so none is sent.
    return json_response(world, status, body)


def _stop_machine(world: World, request: httpx.Request, p: Params) -> httpx.Response:
    """POST …/{id}/stop: a started machine stops (auto_destroy then destroys it); 200 ``{"ok": true}``."""
    if world.app(p["app"]) is None:
        return _app_not_found(world)
    _, error = _json_body(request, "main.stopRequest")
    if error:
        return json_response(world, 400, {"error": error})
    m = world.machine(p["app"], p["id"])
    if m is None or not visible(world, m):
        return _machine_not_found(world)
    if not world.stop_machine(p["app"], p["id"]):
        # Real answer for a machine that is not running is unknown; this follows the wording
        # of Fly's destroy precondition error (world.destroy_machine) rather than claim success.
        return json_response(
            world,
            412,
            {"error": f"failed_precondition: unable to stop machine, not currently started (state: {m['state']})"},
        )
    world.touch()
    return json_response(world, 200, {"ok": True})


def _destroy_machine(world: World, request: httpx.Request, p: Params) -> httpx.Response:
    """DELETE …/{id}?force=: refused while running unless forced; the machine stays readable by id."""
    if world.app(p["app"]) is None:
        return _app_not_found(world)
    force = _parse_bool(request.url.params.get("force"))
    if force is None:
        return json_response(
            world, 400, {"error": f"invalid force: {request.url.params.get('force')!r} is not a boolean"}
        )
    status, body = world.destroy_machine(p["app"], p["id"], force)
    world.touch()
    return json_response(world, status, body)


# Route table: path templates below /v1/apps with the methods the real API has (the
# 2026-05-07 spec). A handler of None is a real endpoint the sandbox does not model: it
# answers 501 so nobody mistakes it for a real 404.
_ROUTES: list[tuple[tuple[str, ...], dict[str, Route | None]]] = [
    ((), {"GET": _list_apps, "POST": None}),
    (("{app}",), {"GET": _get_app, "DELETE": None}),
    (("{app}", "machines"), {"GET": _list_machines, "POST": _create_machine}),
    (("{app}", "machines", "{id}"), {"GET": _get_machine, "POST": None, "DELETE": _destroy_machine}),
    (("{app}", "machines", "{id}", "events"), {"GET": _machine_events}),
    (("{app}", "machines", "{id}", "wait"), {"GET": _wait_machine}),
    (("{app}", "machines", "{id}", "stop"), {"POST": _stop_machine}),
    *[
        (("{app}", "machines", "{id}", action), dict.fromkeys(methods))
        for action, methods in [
            ("cordon", ["POST"]),
            ("uncordon", ["POST"]),
            ("exec", ["POST"]),
            ("lease", ["GET", "POST", "DELETE"]),
            ("memory", ["GET", "PUT"]),
            ("metadata", ["GET", "PUT", "PATCH"]),
            ("ps", ["GET"]),
            ("restart", ["POST"]),
            ("signal", ["POST"]),
            ("start", ["POST"]),
            ("suspend", ["POST"]),
            ("versions", ["GET"]),
        ]
    ],
    (("{app}", "machines", "{id}", "memory", "reclaim"), {"POST": None}),
    (("{app}", "machines", "{id}", "metadata", "{key}"), {"GET": None, "POST": None, "DELETE": None}),
    (("{app}", "certificates"), {"GET": None}),
    (("{app}", "certificates", "acme"), {"POST": None}),
    (("{app}", "certificates", "custom"), {"POST": None}),
    (("{app}", "certificates", "{host}"), {"GET": None, "DELETE": None}),
    (("{app}", "certificates", "{host}", "acme"), {"DELETE": None}),
    (("{app}", "certificates", "{host}", "check"), {"POST": None}),
    (("{app}", "certificates", "{host}", "custom"), {"DELETE": None}),
    (("{app}", "deploy_token"), {"POST": None}),
    (("{app}", "ip_assignments"), {"GET": None, "POST": None}),
    (("{app}", "ip_assignments", "{ip}"), {"DELETE": None}),
    (("{app}", "secretkeys"), {"GET": None}),
    (("{app}", "secretkeys", "{name}"), {"GET": None, "POST": None, "DELETE": None}),
    *[
        (("{app}", "secretkeys", "{name}", op), {"POST": None})
        for op in ("decrypt", "encrypt", "generate", "sign", "verify")
    ],
    (("{app}", "secrets"), {"GET": None, "POST": None}),
    (("{app}", "secrets", "{name}"), {"GET": None, "POST": None, "DELETE": None}),
    (("{app}", "volumes"), {"GET": None, "POST": None}),
    (("{app}", "volumes", "{vol}"), {"GET": None, "PUT": None, "DELETE": None}),
    (("{app}", "volumes", "{vol}", "extend"), {"PUT": None}),
    (("{app}", "volumes", "{vol}", "snapshots"), {"GET": None, "POST": None}),
]


def _match(template: tuple[str, ...], segments: list[str]) -> Params | None:
    if len(template) != len(segments):
        return None
    params: Params = {}
    for t, s in zip(template, segments):
        if t.startswith("{"):
            params[t[1:-1]] = s
        elif t != s:
            return None
    return params


def _rate_limited(world: World, wait_s: int) -> httpx.Response:
    # What the real Machines API sends with its 429 is not known: Fly's docs give the limits
    # but no body or headers (superfly/docs machines/api/working-with-machines-api.html.markerb
    # "Rate Limits", at 045d1a60), and neither client reads one: fly-go (flaps/flaps.go handleAPIError, at
    # 22d6e518) only decodes {"error"}/{"message"} from any 4xx, and flyctl (internal/flapsutil/
    # retry.go IsTransientFlapsError, internal/command/machine/wait.go isRetryableWaitError, at
    # ad0172fa) retries 429 on its own backoff without looking for Retry-After. The reference
    # file machines-api-error-bodies.observed.json records the same ("Body and Retry-After header
    # are NOT documented"). So the sandbox answers in Fly's error shape, {"error": ...}, and sends
    # Retry-After in whole seconds until the bucket holds a request again (an assumption, not Fly).
    return json_response(world, 429, RATE_LIMITED, {"retry-after": str(wait_s)})


def handle_machines(world: World, request: httpx.Request) -> httpx.Response | None:
    """Serve the Machines API below ``/v1/apps``; None for paths outside it.

    A path no route matches gets Go's plain-text ``404 page not found`` — so a machine
    id containing ``/`` (``fly image show registry.fly.io/vyx-app:stub``) gets exactly
    the 404 of the seed incident. Routing happens before authentication (which order
    the real API uses is unknown); every other answer needs the Fly token. An
    authenticated call then spends from its rate bucket (:mod:`vyxops_sandbox.limits`)
    and is answered 429 when that is empty.
    """
    path = request.url.path  # decoded: an escaped '/' in an id still splits, as Go's mux sees it
    if path != "/v1/apps" and not path.startswith("/v1/apps/"):
        return None
    segments = path.split("/")[3:]
    if any(s == "" for s in segments):
        return go_not_found(world)
    allowed: set[str] = set()
    for template, methods in _ROUTES:
        params = _match(template, segments)
        if params is None:
            continue
        if request.method not in methods:
            allowed.update(methods)
            continue
        if not fly_token_ok(world, request):
            return json_response(world, 401, UNAUTHENTICATED)
        pattern = "/v1/apps" + "".join("/" + t for t in template)
        key, limit = limits.fly_machines_bucket(request.method, pattern, params, request.url.params.get("org_slug", ""))
        wait_s = limits.take(world, key, limit)
        if wait_s is not None:
            return _rate_limited(world, wait_s)
        handler = methods[request.method]
        if handler is None:
            return json_response(world, 501, {"error": f"vyxops sandbox: {request.method} {pattern} is not modelled"})
        return handler(world, request, params)
    if allowed:
        return _method_not_allowed(world, allowed)
    return go_not_found(world)


# ---------------------------------------------------------------------------- GraphQL
_SUPPORTED_GRAPHQL = (
    "query { app(name: String!) { id name status organization { id slug name } "
    "releasesUnprocessed(first: Int) { nodes { id version description reason status imageRef stable inProgress "
    "user { id email name } createdAt } totalCount } "
    "currentReleaseUnprocessed { <the same fields as nodes> } } }"
)
_TOKEN = re.compile(
    r'\s+|,|#[^\n]*|(\.\.\.|[{}()\[\]:!$=@]|[_A-Za-z][_0-9A-Za-z]*|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"(?:\\.|[^"\\])*")'
)


class _Unsupported(Exception):
    """The query uses something the sandbox's tiny GraphQL reader does not model."""


class _Field:
    """One selected field: its response key, name, arguments and sub-selection."""

    def __init__(self, alias: str, name: str, args: dict[str, Any], selections: list[_Field] | None) -> None:
        self.alias, self.name, self.args, self.selections = alias, name, args, selections


class _QueryReader:
    """Reads one query operation's selection sets: fields, aliases and literal or $variable arguments.

    Deliberately small (no fragments, directives, lists or input objects): enough to
    tell which fields a client asked for, so the answer holds exactly those.
    """

    def __init__(self, text: str, variables: dict[str, Any]) -> None:
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise _Unsupported(f"unexpected character {text[pos]!r} at offset {pos}")
            if m.group(1):
                self.tokens.append(m.group(1))
            pos = m.end()
        self.i = 0
        self.variables = variables

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _Unsupported(f"expected {expected or 'more'} but found {tok or 'the end'}")
        self.i += 1
        return tok

    def operation(self) -> list[_Field]:
        tok = self.peek()
        if tok in ("mutation", "subscription", "fragment"):
            raise _Unsupported(f"{tok} operations")
        if tok == "query":
            self.take()
            if self.peek() not in ("(", "{"):
                self.take()  # operation name
            if self.peek() == "(":  # variable definitions: values come from "variables"
                depth = 0
                while True:
                    t = self.take()
                    depth += t == "("
                    depth -= t == ")"
                    if depth == 0:
                        break
        fields = self.selection_set()
        if self.peek() is not None:
            raise _Unsupported("more than one operation in a document")
        return fields

    def selection_set(self) -> list[_Field]:
        self.take("{")
        fields = []
        while self.peek() != "}":
            if self.peek() in ("...", "@"):
                raise _Unsupported("fragments and directives")
            name = self.take()
            alias = name
            if self.peek() == ":":
                self.take()
                name = self.take()
            args: dict[str, Any] = {}
            if self.peek() == "(":
                self.take()
                while self.peek() != ")":
                    key = self.take()
                    self.take(":")
                    args[key] = self.value()
                self.take(")")
            if self.peek() == "@":
                raise _Unsupported("directives")
            sub = self.selection_set() if self.peek() == "{" else None
            fields.append(_Field(alias, name, args, sub))
        self.take("}")
        return fields

    def value(self) -> Any:
        tok = self.take()
        if tok == "$":
            name = self.take()
            if name not in self.variables:
                raise _Unsupported(f'variable ${name} has no value in "variables"')
            return self.variables[name]
        if tok.startswith('"'):
            return json.loads(tok)
        if tok in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok]
        if re.fullmatch(r"-?\d+", tok):
            return int(tok)
        if tok in ("[", "{"):
            raise _Unsupported("list and object arguments")
        return tok  # a float or an enum value, kept as text


def _release_node(r: dict[str, Any], fields: list[_Field]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        if f.name == "user":
            user = r.get("user")
            out[f.alias] = None if user is None else _select(user, f, ("id", "email", "name"), "User")
        elif f.name == "inProgress":
            out[f.alias] = r.get("status") == "running"
        elif f.name in ("id", "version", "description", "reason", "status", "imageRef", "stable", "createdAt"):
            out[f.alias] = r.get(f.name)
        else:
            raise _Unsupported(f"field {f.name!r} on ReleaseUnprocessed")
    return out


def _select(obj: dict[str, Any], field: _Field, allowed: tuple[str, ...], type_name: str) -> dict[str, Any]:
    if not field.selections:
        raise _Unsupported(f"{field.name} needs a selection of fields")
    out = {}
    for f in field.selections:
        if f.name not in allowed:
            raise _Unsupported(f"field {f.name!r} on {type_name}")
        out[f.alias] = obj.get(f.name)
    return out


def _resolve_app(world: World, a: dict[str, Any], field: _Field) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in field.selections or []:
        if f.name in ("id", "name", "status"):
            out[f.alias] = a[f.name]
        elif f.name == "organization":
            org = a.get("org", world.state["fly"]["org"])
            out[f.alias] = _select({"id": org, "slug": org, "name": org}, f, ("id", "slug", "name"), "Organization")
        elif f.name == "releasesUnprocessed":
            unknown_args = set(f.args) - {"first"}
            if unknown_args:
                raise _Unsupported(f"arguments {sorted(unknown_args)} of releasesUnprocessed")
            first = f.args.get("first")
            if first is not None and (not isinstance(first, int) or first < 0):
                raise _Unsupported("first must be a non-negative Int")
            releases = a["releases"]  # newest first, as the world keeps them
            page = releases if first is None else releases[:first]
            conn: dict[str, Any] = {}
            for sub in f.selections or []:
                if sub.name == "nodes":
                    conn[sub.alias] = _empty_as(world, [_release_node(r, sub.selections or []) for r in page])
                elif sub.name == "totalCount":
                    conn[sub.alias] = len(releases)
                else:
                    raise _Unsupported(f"field {sub.name!r} on ReleaseUnprocessedConnection")
            out[f.alias] = conn
        elif f.name == "currentReleaseUnprocessed":
            # schema.graphql (fly-go): `currentReleaseUnprocessed: ReleaseUnprocessed`, null when the
            # app has no current release; which release is current: World.deploy.
            if f.args or not f.selections:
                raise _Unsupported("currentReleaseUnprocessed takes no arguments and needs a selection")
            current = world.current_release(a["name"])
            out[f.alias] = None if current is None else _release_node(current, f.selections)
        else:
            raise _Unsupported(f"field {f.name!r} on App")
    return out


def _graphql_answer(world: World, body: dict[str, Any]) -> dict[str, Any]:
    query = body.get("query")
    variables = body.get("variables") or {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        raise _Unsupported('a body of {"query": "...", "variables": {...}}')
    fields = _QueryReader(query, variables).operation()
    data: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for f in fields:
        if f.name == "__typename":
            data[f.alias] = "Queries"
            continue
        if f.name != "app":
            raise _Unsupported(f"root field {f.name!r}")
        name = f.args.get("name")
        a = world.app(name) if isinstance(name, str) else None
        if a is None:
            # graphql-error.app-not-found.constructed.json: HTTP 200, data null, the message flyctl matches.
            errors.append({"message": "Could not find App", "path": [f.alias]})
            continue
        data[f.alias] = _resolve_app(world, a, f)
    if errors:
        return {"data": None, "errors": errors}
    return {"data": data}


def handle_graphql(world: World, request: httpx.Request) -> httpx.Response | None:
    """POST /graphql: the ``fly releases`` query and a minimal ``app(name:)``; errors are HTTP 200 with ``errors[]``.

    Not a GraphQL engine: a query using anything else gets 200 with an ``errors[]``
    message naming what the sandbox supports. Without the Fly token the answer is
    HTTP 200 with ``errors[{"message": "You must be authenticated to view this.",
    "extensions": {"code": "UNAUTHORIZED"}}]`` — the error flyctl's own tests use
    (its HTTP status on the real API is not documented).
    """
    if request.url.path != "/graphql":
        return None
    if request.method != "POST":
        return None  # what api.fly.io answers to GET /graphql is unknown: the router's plain 404
    if not fly_token_ok(world, request):
        return json_response(
            world,
            200,
            {
                "data": None,
                "errors": [
                    {"message": "You must be authenticated to view this.", "extensions": {"code": "UNAUTHORIZED"}}
                ],
            },
        )
    try:
        body = json.loads(request.content or b"null")
    except (ValueError, UnicodeDecodeError):
        # Real status for an undecodable body is unknown; 400 with GraphQL-shaped errors.
        return json_response(world, 400, {"errors": [{"message": "request body is not JSON"}]})
    if not isinstance(body, dict):
        return json_response(
            world, 400, {"errors": [{"message": 'request body must be {"query": ..., "variables": ...}'}]}
        )
    try:
        answer = _graphql_answer(world, body)
    except _Unsupported as exc:
        answer = {
            "data": None,
            "errors": [
                {"message": f"vyxops sandbox: unsupported GraphQL ({exc}); the sandbox supports {_SUPPORTED_GRAPHQL}"}
            ],
        }
    return json_response(world, 200, answer)


# ---------------------------------------------------------------------------- REST (api.fly.io/api/v1)
def _rest_release(r: dict[str, Any]) -> dict[str, Any]:
    """rest-releases.response.constructed.json: snake_case keys, ``user`` a plain e-mail string."""
    return {
        "id": r["id"],
        "version": r["version"],
        "stable": r.get("stable", False),
        "in_progress": r.get("status") == "running",
        "status": r.get("status"),
        # The world does not record a deploy strategy; flyctl's default for fly deploy is rolling.
        "strategy": r.get("strategy", "ROLLING"),
        "user": (r.get("user") or {}).get("email", ""),
        "created_at": r.get("createdAt"),
        "image_ref": r.get("imageRef") or "",  # uiex.Release.ImageRef is a plain string: null becomes ""
    }


def _ns_iso(ts_ns: int) -> str:
    """RFC 3339 with nanoseconds, like ``2025-10-02T16:20:01.123456789Z`` (logs.response.constructed.json)."""
    seconds, ns = divmod(ts_ns, 10**9)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"


def _log_entry(app: str, e: dict[str, Any]) -> dict[str, Any]:
    """One JSON:API resource of the logs endpoint (logs.response.constructed.json)."""
    digest = hashlib.sha256(f"{app}:{e['ts_ns']}:{e.get('instance')}:{e.get('message')}".encode()).hexdigest()
    return {
        "id": digest[:26],  # opaque in the reference; stable per entry here
        "attributes": {
            "timestamp": _ns_iso(e["ts_ns"]),
            "message": e.get("message", ""),
            "level": e.get("level", "info"),
            "instance": e.get("instance", ""),
            "region": e.get("region", ""),
            "meta": {
                "instance": e.get("instance", ""),
                "region": e.get("region", ""),
                "event": {"provider": e.get("provider", "app")},
                "http": {"request": {"id": "", "method": "", "version": ""}, "response": {"status_code": 0}},
                "error": {"code": 0, "message": ""},
                "url": {"full": ""},
            },
        },
    }


def _ts_ns(e: dict[str, Any]) -> int:
    return int(e["ts_ns"])


def _logs(world: World, request: httpx.Request, a: dict[str, Any]) -> httpx.Response:
    """GET /api/v1/apps/{app}/logs?next_token=&instance=&region=, as Fly's docs describe it
    (superfly/docs monitoring/logs-api-options.mdx, "HTTP API (same as `fly logs`)").

    Without next_token: "the most recent 100 logs from the last 24 hours". With it ("a
    nanosecond Unix timestamp … Returns logs after this time, used either as a paging
    cursor or to backfill from a specific moment"): up to 100 entries strictly after the
    token, oldest first, whether the token was returned or chosen, so paging forward
    from any moment reaches every entry after it. Entries older than the retention
    ("about 7 days", counted back from the sandbox's now) are not served, whatever the
    token. ``meta.next_token`` is the last entry's ns time; on an empty page it is the
    token asked with (nothing newer yet: ask again from there, as flyctl's poller keeps
    its token on an empty page, logs/polling.go), or "" when none was given.
    """
    q = request.url.params
    now_ns = world.now_ms * 1_000_000
    token_text = q.get("next_token") or ""
    token: int | None = None
    if token_text:
        token = _parse_int(token_text)
        if token is None:
            return json_response(world, 400, {"error": f"invalid next_token: {token_text!r}"})  # real answer unknown
    instance, region = q.get("instance") or None, q.get("region") or None

    def kept(e: dict[str, Any]) -> bool:
        return (instance is None or e.get("instance") == instance) and (region is None or e.get("region") == region)

    # The app's lines in time order, sorted once while no line is added (ordered.py); a page
    # bisects to its first line and reads only as far as it needs, however long the day was.
    keys, lines = sorted_view(a.get("logs", []), "ts_ns", _ts_ns)
    oldest = now_ns - LOG_RETENTION_NS  # older lines are gone, whatever the token
    if token is None:
        start = bisect.bisect_left(keys, max(oldest, now_ns - LOG_WINDOW_NS + 1))
        backwards = (lines[i] for i in range(len(lines) - 1, start - 1, -1))
        newest = itertools.islice((e for e in backwards if kept(e)), LOG_PAGE)
        page = list(newest)[::-1]
    else:
        start = bisect.bisect_left(keys, max(oldest, token + 1))
        page = list(itertools.islice((e for e in itertools.islice(lines, start, None) if kept(e)), LOG_PAGE))
    next_token = str(page[-1]["ts_ns"]) if page else token_text
    data = _empty_as(world, [_log_entry(a["name"], e) for e in page])
    return json_response(world, 200, {"data": data, "meta": {"next_token": next_token}})


def handle_fly_rest(world: World, request: httpx.Request) -> httpx.Response | None:
    """Serve ``/api/v1/apps/{app}/releases``, ``…/releases/current`` and ``…/logs``; None for other paths.

    Error bodies here are not documented: 401 ``{"error": "unauthorized"}``, 404
    ``{"error": "app not found"}`` / ``{"error": "release not found"}`` are the sandbox's choice.
    """
    path = request.url.path
    if not path.startswith("/api/v1/apps/"):
        return None
    segments = path.split("/")[4:]
    known = (
        len(segments) in (2, 3) and segments[0] and (segments[1:] in (["releases"], ["releases", "current"], ["logs"]))
    )
    if not known:
        return None
    if request.method != "GET":
        return _method_not_allowed(world, {"GET"})
    if not fly_token_ok(world, request):
        return json_response(world, 401, {"error": "unauthorized"})
    a = world.app(segments[0])
    if a is None:
        return json_response(world, 404, APP_NOT_FOUND)
    if segments[1] == "logs":
        return _logs(world, request, a)
    releases = a["releases"]  # newest first
    if segments[1:] == ["releases", "current"]:
        # The platform's current release, as GraphQL's currentReleaseUnprocessed (World.deploy);
        # flyctl treats 404 as "no current release" (internal/uiex/releases.go GetCurrentRelease).
        current = world.current_release(a["name"])
        if current is None:
            return json_response(world, 404, {"error": "release not found"})
        return json_response(world, 200, _rest_release(current))
    text = request.url.params.get("limit")
    page = releases
    if text:
        limit = _parse_int(text)
        if limit is None or limit < 0:
            return json_response(world, 400, {"error": f"invalid limit: {text!r}"})
        page = releases[:limit] if limit else releases  # flyctl omits limit<=0; unknown default: all releases
    return json_response(world, 200, {"releases": _empty_as(world, [_rest_release(r) for r in page])})

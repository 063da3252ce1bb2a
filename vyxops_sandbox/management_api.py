"""The sandbox's Supabase Management API (``api.supabase.com/v1``): projects, organizations, secrets,
functions, the PostgREST config and the logs endpoint.

Shapes come from ``reference/supabase/management-api-openapi.json`` and the samples
beside it. Per scenario (``platform.supabase``): the organization's ``plan`` and the
function-log retention it buys, ``updated_at`` on secrets (optional in
``SecretResponse``), and ``null`` for an empty list.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import math
import re
import weakref
from collections.abc import Callable
from typing import Any

import httpx

from vyxops.core.facts import SUPABASE_MGMT_PERMISSIONS, SUPABASE_MGMT_WINDOW, SUPABASE_MISSING_PERMISSION_MESSAGE
from vyxops_sandbox.function_body import MULTIPART, function_source, multipart_body
from vyxops_sandbox.supabase_api import EXPOSED_SCHEMAS, MAX_ROWS, _bearer, _read_json, _request_id, _response
from vyxops_sandbox.world import World, sha256_hex

__all__ = ["RATE_LIMIT", "handle_management", "organization_slug"]

# 120 requests/min per user, per project or organization, per endpoint, a fixed window
# (vyxops.core.facts.SUPABASE_MGMT_WINDOW; supabase/supabase apps/docs/content/_partials/api_rate_limits.mdx).
RATE_LIMIT = SUPABASE_MGMT_WINDOW.requests
RATE_WINDOW_MS = SUPABASE_MGMT_WINDOW.seconds * 1000
# The 429's body: @nestjs/throttler's ThrottlerException text, as users quote it whole from the
# Management API ("Too Many Requests (429): ThrottlerException: Too Many Requests", dyad-sh/dyad
# #2147, which prints the body as text), not the usual JSON (PLATFORM.md). A string handed to
# NestJS's default (Express) adapter goes out through res.send, which labels it text/html;
# which adapter Supabase runs is not public, so the content-type is unverified.
THROTTLED_BODY = b"ThrottlerException: Too Many Requests"
THROTTLED_CONTENT_TYPE = "text/html; charset=utf-8"
DAY_US = 86_400 * 1_000_000
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

_PATH_RE = re.compile(r"^/v1/(?P<kind>projects|organizations)/(?P<ref>[^/]+)(?P<rest>/.*)?$")
_budgets: weakref.WeakKeyDictionary[World, dict[tuple[str, ...], list[int]]] = weakref.WeakKeyDictionary()
Answer = Callable[..., httpx.Response]

# (kind, method, sub-path pattern, endpoint template); the template keys the rate budget.
_ROUTES: list[tuple[str, str, re.Pattern[str], str]] = [
    ("projects", "GET", re.compile(r"^$"), "/v1/projects/{ref}"),
    ("projects", "GET", re.compile(r"^/secrets$"), "/secrets"),
    ("projects", "POST", re.compile(r"^/secrets$"), "/secrets"),
    ("projects", "DELETE", re.compile(r"^/secrets$"), "/secrets"),
    ("projects", "GET", re.compile(r"^/functions$"), "/functions"),
    ("projects", "GET", re.compile(r"^/functions/(?P<slug>[A-Za-z0-9_-]+)$"), "/functions/{function_slug}"),
    ("projects", "GET", re.compile(r"^/functions/(?P<slug>[A-Za-z0-9_-]+)/body$"), "/functions/{function_slug}/body"),
    ("projects", "GET", re.compile(r"^/api-keys$"), "/api-keys"),
    ("projects", "GET", re.compile(r"^/postgrest$"), "/postgrest"),
    ("projects", "GET", re.compile(r"^/analytics/endpoints/logs$"), "/analytics/endpoints/logs"),
    ("organizations", "GET", re.compile(r"^$"), "/v1/organizations/{slug}"),
]


def organization_slug(world: World) -> str:
    """The Supabase organization the sandbox's project belongs to (its slug: ``^[\\w-]+$``)."""
    return "sandbox-org-" + hashlib.sha256(f"org:{world.scenario_name}".encode()).hexdigest()[:12]


def _rate(world: World, key: tuple[str, ...]) -> tuple[bool, dict[str, str]]:
    """Spend one request of ``key``'s window on the world's clock: (allowed, x-ratelimit-* headers).

    A fixed 60 s window opened by the first request, like the recorded fixtures
    (remaining 119 then 118, reset 60 then 59); past the 120th every call is refused
    until it ends. ``x-ratelimit-reset`` is the seconds until then (api_rate_limits.mdx:
    "the number of seconds remaining until your rate limit resets"). Kept in memory,
    not in the state: a new process starts with a fresh window, as after a quiet minute.
    """
    buckets = _budgets.setdefault(world, {})
    now = world.now_ms
    bucket = buckets.get(key)
    if bucket is None or now >= bucket[0] + RATE_WINDOW_MS:
        bucket = buckets[key] = [now, 0]
    allowed = bucket[1] < RATE_LIMIT
    if allowed:
        bucket[1] += 1
    reset = max(1, math.ceil((bucket[0] + RATE_WINDOW_MS - now) / 1000))
    headers = {
        "x-ratelimit-limit": str(RATE_LIMIT),
        "x-ratelimit-remaining": str(max(0, RATE_LIMIT - bucket[1])),
        "x-ratelimit-reset": str(reset),
    }
    return allowed, headers


def _owner(world: World, token: str) -> str:
    """Whom a request's window belongs to: the user who owns the token. api_rate_limits.mdx: "the
    limit applies to the user, so all tokens created by the same user share it"; an unauthenticated
    request is tracked by IP address (the sandbox has one caller, so one key). Every access token
    the world issues (``supabase_access_token*``) belongs to its one user."""
    mine = {v for k, v in world.credentials.items() if k.startswith("supabase_access_token")}
    return "user" if token in mine else "ip"


def _throttled(world: World, request: httpx.Request, rl: dict[str, str]) -> httpx.Response:
    """The 429 past a window's limit: the framework's text, the window's headers and ``retry-after``.

    @nestjs/throttler sets ``Retry-After`` on the requests it refuses; Studio retries 429s after it
    (supabase/supabase PR #35957).
    """
    headers = {
        "sb-request-id": _request_id(world, request),
        "content-type": THROTTLED_CONTENT_TYPE,
        **rl,
        "retry-after": rl["x-ratelimit-reset"],
    }
    return httpx.Response(429, headers=headers, content=THROTTLED_BODY, request=request)


def _nest_404(method: str, path: str) -> dict[str, Any]:
    # NestJS's answer for a route it does not have (the Management API answers with
    # NestJS's guard texts, e.g. "Forbidden resource"); the exact body is unverified.
    return {"statusCode": 404, "message": f"Cannot {method} {path}", "error": "Not Found"}


def handle_management(world: World, request: httpx.Request) -> httpx.Response | None:
    """Serve ``/v1/projects/{ref}[/…]`` and ``/v1/organizations/{slug}``; None for other paths.

    Promises: every response carries ``x-ratelimit-limit/-remaining/-reset``; over
    120 requests a minute (the world's clock) per user (every token of the world's
    one user shares it), ref and endpoint → 429 with a text body and ``retry-after``;
    a wrong or missing token → 401 ``{"message":"Unauthorized"}``;
    another project's ref or organization's slug → 403 ``{"message":"Forbidden
    resource"}``; secrets are listed as SHA-256 digests, never plaintext; DELETE
    secrets needs a non-empty list of names.
    """
    m = _PATH_RE.match(request.url.path)
    if not m:
        return None
    kind, ref, rest = m.group("kind"), m.group("ref"), m.group("rest") or ""
    method = request.method
    route = next(
        ((tmpl, rm) for k, meth, pat, tmpl in _ROUTES if k == kind and meth == method and (rm := pat.match(rest))),
        None,
    )
    token = _bearer(request) or ""
    allowed, rl = _rate(world, (_owner(world, token), ref, method, route[0] if route else rest))

    def answer(
        status: int, body: Any = None, headers: dict[str, str] | None = None, *, null: bool = False
    ) -> httpx.Response:
        return _response(world, request, status, body, headers={**rl, **(headers or {})}, null=null)

    if not allowed:
        return _throttled(world, request, rl)
    if route is None:
        # Includes logs.all, retired 2026-09-23 (PLATFORM.md): answered like a route that no
        # longer exists. Routing comes before the guards in NestJS, so before auth here too.
        return answer(404, _nest_404(method, request.url.path))
    if token != world.credentials["supabase_access_token"]:
        return answer(401, {"message": "Unauthorized"})
    mine = organization_slug(world) if kind == "organizations" else world.credentials["project_ref"]
    if ref != mine:
        # The spec documents 403 "Forbidden action" on every project route (no 404); the body
        # is the one users quote for a token/ref pair that does not match (supabase/cli #1819).
        return answer(403, {"message": "Forbidden resource"})
    tmpl, match = route
    if not _granted(world, method, tmpl):
        # A scoped access token without the endpoint's permission (platform.supabase.token_permissions).
        # Guards run before validation pipes in NestJS (docs.nestjs.com "Guards": "Guards are executed after
        # all middleware, but before any interceptor or pipe"), so this 403 comes before any 400 on the body.
        return answer(403, {"message": SUPABASE_MISSING_PERMISSION_MESSAGE})
    return _ENDPOINTS[tmpl](world, request, answer, match)


def _granted(world: World, method: str, tmpl: str) -> bool:
    """Whether the scenario's access token holds the permission the endpoint needs (vyxops.core.facts)."""
    granted = world.platform.supabase.token_permissions
    if granted is None:
        return True
    full = tmpl if tmpl.startswith("/v1/") else "/v1/projects/{ref}" + tmpl
    needed = SUPABASE_MGMT_PERMISSIONS.get((method, full))
    return needed is None or needed in granted


def _empty_as(world: World, items: list[Any]) -> list[Any] | None:
    """``items``, or None for an empty list under ``platform.supabase.empty_as_null``."""
    return None if not items and world.platform.supabase.empty_as_null else items


def _project(world: World, request: httpx.Request, answer: Answer, match: re.Match[str]) -> httpx.Response:
    """GET /v1/projects/{ref}: V1ProjectWithDatabaseResponse; ``organization_slug`` leads to the plan."""
    ref = world.state["supabase"]["project_ref"]
    slug = organization_slug(world)
    return answer(
        200,
        {
            "id": ref,
            "ref": ref,
            "organization_id": slug,
            "organization_slug": slug,
            "name": world.scenario_name,
            "region": "us-west-1",
            "created_at": "2025-01-01T00:00:00.000Z",
            "status": "ACTIVE_HEALTHY",
            "database": {
                "host": f"db.{ref}.supabase.co",
                "version": "17.6.1.054",
                "postgres_engine": "17",
                "release_channel": "ga",
            },
        },
    )


def _organization(world: World, request: httpx.Request, answer: Answer, match: re.Match[str]) -> httpx.Response:
    """GET /v1/organizations/{slug}: V1OrganizationSlugResponse, whose ``plan`` sets the log retention."""
    slug = organization_slug(world)
    body = {
        "id": slug,
        "name": f"{world.scenario_name} (sandbox)",
        "plan": world.platform.supabase.plan,
        "opt_in_tags": [],
        "allowed_release_channels": ["ga"],
    }
    return answer(200, body)


def _secrets(world: World, request: httpx.Request, answer: Answer, match: re.Match[str]) -> httpx.Response:
    """GET/POST/DELETE /secrets. GET lists SecretResponse {name, value: sha256 hex, updated_at?} by name.

    ``updated_at`` is optional in SecretResponse (only name and value are required);
    ``platform.supabase.secrets_updated_at: false`` leaves it out.
    """
    if request.method == "POST":
        return _post_secrets(world, request, answer)
    if request.method == "DELETE":
        return _delete_secrets(world, request, answer)
    with_time = world.platform.supabase.secrets_updated_at
    items = []
    for name, secret in sorted(world.state["supabase"]["secrets"].items()):
        item = {"name": name, "value": sha256_hex(secret["value"])}
        if with_time:
            item["updated_at"] = secret["updated_at"]
        items.append(item)
    return answer(200, items)


def _functions(world: World, request: httpx.Request, answer: Answer, match: re.Match[str]) -> httpx.Response:
    """GET /functions: FunctionResponse list, each with its ``verify_jwt``."""
    return answer(200, [copy.deepcopy(f) for f in world.state["supabase"]["functions"]])


def _function(world: World, request: httpx.Request, answer: Answer, match: re.Match[str]) -> httpx.Response:
    fn = world.function(match.group("slug"))
    if fn is None:
        # Not in the spec (which lists no 404 here); body unverified.
        return answer(404, {"message": "Function not found"})
    return answer(200, copy.deepcopy(fn))


def _postgrest(world: World, request: httpx.Request, answer: Answer, match: re.Match[str]) -> httpx.Response:
    # The recorded fixture's body (mgmt-api-recorded-cli-fixtures.json). jwt_secret is a
    # sandbox value: real ones are secrets, so a capture must drop this key.
    jwt = "sandbox-jwt-secret-" + hashlib.sha256(f"jwt:{world.scenario_name}".encode()).hexdigest()[:32]
    body = {
        "db_schema": ",".join(EXPOSED_SCHEMAS),
        "max_rows": MAX_ROWS,
        "db_extra_search_path": "public, extensions",
        "db_pool": None,
        "jwt_secret": jwt,
    }
    return answer(200, body)


def _logs(world: World, request: httpx.Request, answer: Answer, match: re.Match[str]) -> httpx.Response:
    """GET /analytics/endpoints/logs: ClickHouse SQL over the ``logs`` rows the plan still keeps, via logsql.

    Rows older than the plan's retention (free 1 day, pro 7, team 28, enterprise 90:
    PLATFORM.md) are gone: no query reaches them and nothing says they existed.
    200 ``{"result": [...], "error": null}``; a refused query answers the status the
    query engine chose with ``{"result": null, "error": message}`` — the
    AnalyticsResponse shape (logs-endpoint-errors.sample.json); the real body of a
    4xx is unverified there, so clients must read ``error`` whatever the status.
    """
    from vyxops_sandbox.logsql import LogQueryError, run_logs_query

    params = request.url.params
    oldest_us = world.now_ms * 1000 - world.platform.supabase.log_retention_days * DAY_US
    try:
        rows = run_logs_query(
            world.state["supabase"]["logs"],
            params.get("sql") or "",
            params.get("iso_timestamp_start"),
            params.get("iso_timestamp_end"),
            world.now_ms,
            oldest_us=oldest_us,
        )
    except LogQueryError as exc:
        return answer(exc.status, {"result": None, "error": exc.message})
    shape = world.platform.supabase.log_timestamps
    if shape != "text":
        rows = [r | {"timestamp": _unix_us(r["timestamp"], shape)} if "timestamp" in r else r for r in rows]
    return answer(200, {"result": _empty_as(world, rows), "error": None})


def _unix_us(text: Any, shape: str) -> Any:
    """A row's documented ``timestamp`` text as Unix µs: an integer (``us``) or its digits (``us_string``)."""
    from vyxops_sandbox.logsql import TIMESTAMP_FORMAT

    if not isinstance(text, str):
        return text
    at = datetime.datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=datetime.timezone.utc)
    us = (at - EPOCH) // datetime.timedelta(microseconds=1)
    return str(us) if shape == "us_string" else us


def _post_secrets(world: World, request: httpx.Request, answer: Answer) -> httpx.Response:
    """POST /secrets: CreateSecretBody (array of {name, value}) → world.set_secrets → 201, no body."""
    ok, body = _read_json(request)
    if not ok or not isinstance(body, list):
        return answer(400, {"message": "Invalid request body: expected an array of {name, value}"})
    for i, item in enumerate(body):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("value"), str)
        ):
            return answer(400, {"message": f"Invalid request body: item {i} needs string name and value"})
        name, value = item["name"], item["value"]
        # CreateSecretBody: name pattern ^(?!SUPABASE_).* maxLength 256, value maxLength 24576.
        # Message text: the spec's description, as users quote it (supabase/supabase #36390).
        if name.startswith("SUPABASE_"):
            return answer(400, {"message": "Secret name must not start with the SUPABASE_ prefix"})
        if not name or len(name) > 256:
            # The spec allows "", an env var cannot be empty: refused here (real answer unknown).
            return answer(400, {"message": f"Invalid request body: item {i} name must be 1-256 characters"})
        if len(value) > 24576:
            return answer(400, {"message": f"Invalid request body: item {i} value must be at most 24576 characters"})
    if body:
        world.set_secrets([{"name": it["name"], "value": it["value"]} for it in body])
    return answer(201)


def _delete_secrets(world: World, request: httpx.Request, answer: Answer) -> httpx.Response:
    """DELETE /secrets: DeleteSecretsBody (array of names) → world.unset_secrets → 200, no body.

    A missing body or an empty list is refused: what the real API does with `[]` is
    unknown, and `supabase secrets unset` with no names deletes everything — the
    sandbox refuses so that a test catches a caller that sends no names.
    """
    ok, body = _read_json(request)
    if not ok or not isinstance(body, list) or not all(isinstance(n, str) and n for n in body):
        return answer(400, {"message": "Invalid request body: expected a non-empty array of secret names"})
    if not body:
        return answer(400, {"message": "Invalid request body: expected a non-empty array of secret names"})
    if any(n.startswith("SUPABASE_") for n in body):
        # Studio mirrors an API check on delete too (supabase/supabase PR #29661).
        return answer(400, {"message": "Secret name must not start with the SUPABASE_ prefix"})
    world.unset_secrets(list(body))
    return answer(200)


def _function_body(world: World, request: httpx.Request, answer: Answer, match: re.Match[str]) -> httpx.Response:
    """GET /functions/{slug}/body: the function's files as multipart/form-data (see :mod:`.function_body`)."""
    fn = world.function(match.group("slug"))
    if fn is None:
        return answer(404, {"message": "Function not found"})  # as GET /functions/{slug}: body unverified
    if MULTIPART not in request.headers.get("accept", ""):
        # The eszip bundle the legacy and Docker downloads read is not modelled: the spec's documented 500.
        return answer(500, {"message": "Failed to retrieve function body with given slug"})
    boundary = "vyxops-" + sha256_hex(f"{fn['id']}:{fn['version']}")[:24]
    content = multipart_body(fn["entrypoint_path"], function_source(world, fn["slug"]), boundary)
    base = answer(200)  # the rate-limit and request-id headers every answer carries
    headers = {**base.headers, "content-type": f"{MULTIPART}; boundary={boundary}"}
    return httpx.Response(200, headers=headers, content=content, request=request)


def _api_keys(world: World, request: httpx.Request, answer: Answer, match: re.Match[str]) -> httpx.Response:
    """GET /api-keys: ApiKeyResponse list, shaped as the Supabase CLI's recorded answers.

    Source: supabase/cli ``apps/cli-e2e/fixtures/recorded/GET_v1_projects___PROJECT_REF___api_keys``.
    Legacy keys are ``{name, api_key, id: name, type: "legacy", hash, prefix, description}``;
    new keys ``{id: uuid, name: "default", type: publishable|secret, api_key, description: null,
    secret_jwt_template, hash, prefix, inserted_at, updated_at}``. The CLI sends no ``reveal``
    (``projects api-keys``); without ``reveal=true`` a secret key's ``api_key`` is its prefix
    followed by 26 ``·`` (recorded), while legacy JWTs and publishable keys are shown whole.
    The sandbox lists the keys it accepts: the legacy JWTs, or under ``api_key: sb_secret``
    the publishable and secret keys (credentials_for). ``hash`` is the key's SHA-256 in
    base64url (43 characters, as recorded); the prefix lengths are unverified.
    """
    creds = world.credentials
    reveal = request.url.params.get("reveal", "").lower() == "true"
    if world.platform.supabase.api_key == "jwt":
        keys = [
            _legacy_key("anon", creds["supabase_anon_key"]),
            _legacy_key("service_role", creds["supabase_service_role_key"]),
        ]
    else:
        keys = [
            _new_key(world, "publishable", creds["supabase_anon_key"], None, reveal=True),
            _new_key(world, "secret", creds["supabase_service_role_key"], {"role": "service_role"}, reveal=reveal),
        ]
    return answer(200, keys)


def _key_hash(key: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()).decode().rstrip("=")


def _legacy_key(name: str, key: str) -> dict[str, Any]:
    return {
        "name": name,
        "api_key": key,
        "id": name,
        "type": "legacy",
        "hash": _key_hash(key),
        "prefix": key.rsplit(".", 1)[-1][:5],
        "description": f"Legacy {name} API key",
    }


def _new_key(world: World, kind: str, key: str, template: dict[str, str] | None, *, reveal: bool) -> dict[str, Any]:
    prefix = key[: len(f"sb_{kind}_") + 4]
    h = sha256_hex(f"api-key:{world.scenario_name}:{kind}")
    at = "2025-01-01T00:00:00Z"  # the project's creation (GET /v1/projects/{ref})
    return {
        "id": f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}",
        "name": "default",
        "type": kind,
        "api_key": key if reveal else prefix + "·" * 26,
        "description": None,
        "secret_jwt_template": template,
        "hash": _key_hash(key),
        "prefix": prefix,
        "inserted_at": at,
        "updated_at": at,
    }


_ENDPOINTS: dict[str, Callable[[World, httpx.Request, Answer, re.Match[str]], httpx.Response]] = {
    "/v1/projects/{ref}": _project,
    "/v1/organizations/{slug}": _organization,
    "/secrets": _secrets,
    "/functions": _functions,
    "/functions/{function_slug}": _function,
    "/functions/{function_slug}/body": _function_body,
    "/api-keys": _api_keys,
    "/postgrest": _postgrest,
    "/analytics/endpoints/logs": _logs,
}

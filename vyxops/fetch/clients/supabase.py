"""Supabase: table rows through supabase-py's PostgREST client, Management API and Edge Functions through httpx.

Rows go through ``postgrest.SyncPostgrestClient``, the client supabase-py's
``Client.table()`` hands its builders from, built as ``create_client`` builds it
(``/rest/v1``, schema ``public``) except for the key: ``apikey`` always, and
``Authorization: Bearer`` only for a JWT-shaped key (an ``sb_secret_`` key as a
bearer is refused: :func:`vyxops.fetch.http.supabase_key_headers`).
vyxops uses nothing else of ``supabase.Client``, whose construction also sets up
the auth, realtime and storage clients: 0.15 s of imports in every notebook kernel.
It gets vyxops's own httpx client, so the transport, timeouts and redaction are
shared, and its own GET retries are off because vyxops retries in its transport
(PLATFORM.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from postgrest.types import CountMethod

from vyxops.core import answers
from vyxops.core.errors import (
    ApiError,
    AuthError,
    InputError,
    NotFoundError,
    RateLimitedError,
    TransportError,
    UnexpectedAnswer,
    redact,
)
from vyxops.core.function_auth import FunctionBearer, bearer_of
from vyxops.core.shapes import is_jwt
from vyxops.core.text import loads_answer, without_lone_surrogates
from vyxops.fetch.http import Api, supabase_key_headers

MAX_ROWS = 1000  # PostgREST on Supabase returns at most this many rows, silently
MAX_LOG_WINDOW_S = 24 * 3600
#: What a read of the Management API says when there is none to ask (self-hosted Supabase): no call is made.
NO_MANAGEMENT_CODE = "no-management-api"
NO_MANAGEMENT_API = (
    "no Management API (self-hosted Supabase, or SUPABASE_ACCESS_TOKEN and SUPABASE_PROJECT_REF unset): "
    "the project's secrets, functions and function logs cannot be read"
)


@dataclass
class _LastResponse:
    """The latest PostgREST response seen by the event hook: supabase-py's APIError has no status."""

    status: int | None = None
    request_id: str | None = None
    method: str = "GET"
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RowsPage:
    rows: list[dict[str, Any]]
    total: int | None
    complete: bool
    note: str = ""


class SupabaseClient:
    """Calls to one Supabase project: PostgREST (supabase-py), Management API, Edge Functions."""

    def __init__(
        self,
        url: str,
        service_key: str,
        rest_http: httpx.Client,
        mgmt: Api,
        functions: Api,
        project_ref: str,
        *,
        function_jwt: str | None = None,
        function_bearer: FunctionBearer | None = None,
    ) -> None:
        from postgrest import SyncPostgrestClient  # only when a session opens

        self.project_ref = project_ref
        self._service_key = service_key
        #: Whether the service key is a JWT: a function with verify_jwt refuses any other bearer.
        self.key_is_jwt = is_jwt(service_key)
        #: What ``functions`` sends as its bearer (``$VYXOPS_FUNCTION_JWT``, a JWT service key, or none):
        #: what :mod:`vyxops.core.function_auth` decides verify_jwt by. The session gave ``functions`` that auth.
        self.function_bearer: FunctionBearer = function_bearer or bearer_of(self.key_is_jwt, function_jwt)
        self.mgmt = mgmt
        #: Whether the Management API can be asked: not on self-hosted Supabase (no access token, no project ref),
        #: where secrets, functions and function logs are gaps, said before any call (:meth:`_management`).
        self.management = bool(project_ref)
        self.functions = functions
        self._last = _LastResponse()
        self._plan: str | None = None
        self._plan_read = False
        rest_http.event_hooks.setdefault("response", []).append(self._remember)
        self._rest_http = rest_http
        self.client = SyncPostgrestClient(
            f"{url.rstrip('/')}/rest/v1",
            headers=supabase_key_headers(service_key),
            schema="public",
            http_client=rest_http,
            retry_enabled=False,
        )

    def _remember(self, response: httpx.Response) -> None:
        self._last.status = response.status_code
        self._last.method = response.request.method
        self._last.path = response.request.url.path
        self._last.request_id = response.headers.get("sb-request-id") or response.headers.get("x-request-id")

    def _run(self, builder: Any) -> Any:
        """Execute a supabase-py query; every failure leaves as a typed vyxops error.

        supabase-py raises APIError (without the HTTP status: the response hook keeps it),
        lets httpx's own exceptions through, and hands back a non-JSON body as a string:
        each becomes an ApiError subclass or a TransportError, never an untyped exit.
        """
        from postgrest.exceptions import APIError

        failure: Exception | None = None
        try:
            result = builder.execute()
        except APIError as exc:
            failure = self._api_error(exc)
        except httpx.HTTPError as exc:
            failure = self._transport_error(exc)
        if failure is not None:
            raise failure  # outside the except block: the httpx exception holds the request, keys included
        data = getattr(result, "data", None)
        if isinstance(data, str):  # supabase-py hands back a body that is not JSON as its text
            raise TransportError(
                f"malformed response body ({self._last.status}, not a JSON list of rows)",
                platform="supabase-rest",
                method=self._last.method,
                path=self._last.path,
                hint="something other than PostgREST answered (proxy, wrong SUPABASE_URL?); retry later",
            )
        if data is not None and (mismatch := answers.mismatch("supabase.rows", data)) is not None:
            last = self._last
            raise UnexpectedAnswer(mismatch, platform="supabase-rest", method=last.method, path=last.path,
                                   status=last.status, request_id=last.request_id)  # fmt: skip
        if (
            data
        ):  # postgrest-py decoded it: a "\ud800" escape in a row is a lone surrogate until here (vyxops.core.text)
            result.data = without_lone_surrogates(data)
        return result

    def _api_error(self, exc: Any) -> ApiError:
        status = self._last.status
        cls: type[ApiError] = (
            AuthError
            if status in (401, 403)
            else NotFoundError
            if status == 404
            else RateLimitedError
            if status == 429
            else ApiError
        )
        hint = {
            "21000": "an update needs a filter; vyxops never updates a whole table",
            "42703": "the column does not exist in this table",
            "PGRST205": "the table does not exist or is not exposed; check the pipeline contract's table (vyxops.toml)",
        }.get(str(exc.code))
        if hint is None and status in (401, 403):
            hint = "check SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"
        elif hint is None and status == 429:
            hint = "rate limited after every retry; wait and run again"
        elif hint is None and status is not None and (status == 408 or status >= 500):
            hint = "the database API timed out or failed; retry later"
        message = exc.message if isinstance(exc.message, str) and exc.message else f"HTTP {status} with no message"
        return cls(
            message,
            platform="supabase-rest",
            method=self._last.method,
            path=self._last.path,
            status=status,
            request_id=self._last.request_id,
            code=str(exc.code) if exc.code else None,
            hint=hint,
        )

    def _transport_error(self, exc: httpx.HTTPError) -> TransportError:
        try:
            request: httpx.Request | None = exc.request
        except RuntimeError:  # httpx raises when the exception carries no request
            request = None
        method = request.method if request is not None else self._last.method
        path = request.url.path if request is not None else self._last.path
        idempotent = method in ("GET", "HEAD")
        hint = "the database API did not answer; retry later"
        if not idempotent:
            hint += "; the write may have been applied: read the row before writing again"
        detail = redact(str(exc) or "no detail")
        return TransportError(f"{type(exc).__name__}: {detail}", platform="supabase-rest", method=method,
                              path=path, hint=hint)  # fmt: skip

    # -- PostgREST
    def select_all(
        self,
        table: str,
        *,
        columns: str = "*",
        filters: list[tuple[str, str, Any]] | None = None,
        order: str = "id",
        page_size: int = MAX_ROWS,
        max_rows: int | None = None,
    ) -> RowsPage:
        """Every row matching ``filters``, paged with a stable order past the 1000-row cap.

        ``count="exact"`` gives the true total, so a short read is detected and said.
        """
        page_size = min(page_size, MAX_ROWS)
        rows: list[dict[str, Any]] = []
        total: int | None = None
        offset = 0
        while True:
            q = self.client.table(table).select(columns, count=CountMethod.exact)
            for column, op, value in filters or []:
                q = _apply_filter(q, column, op, value)
            q = q.order(order).range(offset, offset + page_size - 1)
            result = self._run(q)
            total = result.count if result.count is not None else total
            batch = result.data or []
            rows.extend(batch)
            offset += len(batch)
            if max_rows is not None and len(rows) >= max_rows:
                complete = total is not None and len(rows) >= total
                return RowsPage(
                    rows[:max_rows], total, complete, "" if complete else f"stopped at {max_rows} of {total} rows"
                )
            if not batch or (total is not None and offset >= total):
                break
        complete = total is None or len(rows) >= total
        return RowsPage(
            rows,
            total,
            complete,
            "" if complete else f"read {len(rows)} of {total} rows: the table changed while paging",
        )

    def newest_rows(self, table: str, order: str, limit: int = 200) -> list[dict[str, Any]]:
        """Up to ``limit`` rows of ``table``, newest first by ``order`` (what discovery reads of each table); an
        answer that is not a list of objects holds no rows."""
        q = self.client.table(table).select("*").order(order, desc=True).limit(min(limit, MAX_ROWS))
        data = self._run(q).data
        return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []

    def openapi(self) -> dict[str, Any]:
        """PostgREST's OpenAPI (Swagger 2.0) description of the exposed tables: ``GET /rest/v1/`` with the
        service key (PostgREST serves it at the API root; the anon key is refused it since March 2026,
        Supabase changelog 42949). Its ``definitions`` hold each table's columns, types, enum values and
        primary key (a column described ``<pk/>``)."""
        headers = {**supabase_key_headers(self._service_key), "Accept": "application/openapi+json, application/json"}
        try:
            response = self._rest_http.get("/rest/v1/", headers=headers)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            cls: type[ApiError] = AuthError if response.status_code in (401, 403) else ApiError
            raise cls(
                f"the API root answered {response.status_code}: {redact(response.text[:160])}",
                platform="supabase-rest",
                method="GET",
                path="/rest/v1/",
                status=response.status_code,
                hint="the service key (SUPABASE_SERVICE_ROLE_KEY) reads the table descriptions; declare the "
                "contract's table in vyxops.toml if it may not",
            )
        try:
            body = response.json()
        except ValueError:
            raise TransportError(
                f"malformed response body ({response.status_code}, not JSON)",
                platform="supabase-rest", method="GET", path="/rest/v1/",
                hint="something other than PostgREST answered (proxy, wrong SUPABASE_URL?)",
            ) from None  # fmt: skip
        if (mismatch := answers.mismatch("supabase.openapi", body)) is not None:
            raise UnexpectedAnswer(mismatch, platform="supabase-rest", method="GET", path="/rest/v1/",
                                   status=response.status_code)  # fmt: skip
        return cast(dict[str, Any], body)

    def update_rows(
        self, table: str, values: dict[str, Any], filters: list[tuple[str, str, Any]]
    ) -> list[dict[str, Any]]:
        """Update the rows matching ``filters`` and return the rows changed ([] when none matched).

        Refuses an update without a filter before sending it.
        """
        if not filters:
            raise InputError(
                "filters", "an update needs at least one filter", hint="vyxops never updates a whole table"
            )
        q = self.client.table(table).update(values)
        for column, op, value in filters:
            q = _apply_filter(q, column, op, value)
        return list(self._run(q).data or [])

    # -- Management API
    def _management(self, method: str, path: str) -> None:
        """An ApiError (no call made) when there is no Management API to ask."""
        if not self.management:
            raise ApiError(
                NO_MANAGEMENT_API,
                platform="supabase-mgmt",
                method=method,
                path=path,
                status=None,
                code=NO_MANAGEMENT_CODE,
                hint="on hosted Supabase, set SUPABASE_ACCESS_TOKEN and SUPABASE_PROJECT_REF; self-hosted has none",
            )

    def list_secrets(self) -> list[dict[str, Any]]:
        """Secrets as ``{name, value: sha256 digest, updated_at?}``: never plaintext; ``updated_at`` is optional.

        A ``null`` body is a wrong shape (vyxops.core.answers), never "no secrets".
        """
        self._management("GET", "/v1/projects/{ref}/secrets")
        secrets = self.mgmt.get_shaped("supabase.list_secrets", f"/v1/projects/{self.project_ref}/secrets")
        return cast(list[dict[str, Any]], secrets)

    def set_secrets(self, items: list[dict[str, str]]) -> None:
        if not items:
            raise InputError("secrets", "nothing to set")
        self._management("POST", "/v1/projects/{ref}/secrets")
        self.mgmt.request("POST", f"/v1/projects/{self.project_ref}/secrets", json=items, idempotent=True)

    def delete_secrets(self, names: list[str]) -> None:
        """Delete exactly the named secrets; an empty list is refused (it would mean every secret)."""
        if not names or not all(isinstance(n, str) and n for n in names):
            raise InputError(
                "secret names", "name at least one secret to delete", hint="vyxops never deletes every secret"
            )
        self._management("DELETE", "/v1/projects/{ref}/secrets")
        self.mgmt.request("DELETE", f"/v1/projects/{self.project_ref}/secrets", json=list(names))

    def list_functions(self) -> list[dict[str, Any]]:
        """Edge Functions (FunctionResponse, each with ``verify_jwt``); ``null`` is a wrong shape
        (vyxops.core.answers)."""
        self._management("GET", "/v1/projects/{ref}/functions")
        functions = self.mgmt.get_shaped("supabase.list_functions", f"/v1/projects/{self.project_ref}/functions")
        return cast(list[dict[str, Any]], functions)

    def organization_plan(self) -> str | None:
        """The plan of the project's organization (free | pro | team | enterprise | platform), None if unreadable.

        Two Management API reads, once per client: ``GET /v1/projects/{ref}`` names the
        ``organization_slug``, ``GET /v1/organizations/{slug}`` its ``plan`` (optional in
        the spec). A token that may not read the organization gets None, not an error:
        the plan only says how far back function logs reach.
        """
        if not self._plan_read:
            self._plan_read = True
            if not self.management:
                return None
            try:
                project = self.mgmt.get_shaped("supabase.get_project", f"/v1/projects/{self.project_ref}")
                slug = project.get("organization_slug")
                org = self.mgmt.get_shaped("supabase.get_organization", f"/v1/organizations/{slug}") if slug else None
                plan = org.get("plan") if isinstance(org, dict) else None
                self._plan = plan if isinstance(plan, str) else None
            except ApiError:
                self._plan = None
        return self._plan

    def query_logs(self, sql: str, start_iso: str, end_iso: str) -> list[dict[str, Any]]:
        """Run ClickHouse SQL on the logs endpoint over [start, end] (both always sent, ≤ 24 h)."""
        self._management("GET", "/v1/projects/{ref}/analytics/endpoints/logs")
        response = self.mgmt.request(
            "GET",
            f"/v1/projects/{self.project_ref}/analytics/endpoints/logs",
            params={"sql": sql, "iso_timestamp_start": start_iso, "iso_timestamp_end": end_iso},
        )
        body = self.mgmt.parse_json(response)
        if isinstance(body, dict) and body.get("error"):
            raise ApiError(
                str(body["error"])[:300],
                platform="supabase-mgmt",
                method="GET",
                path=f"/v1/projects/{self.project_ref}/analytics/endpoints/logs",
                status=200,
                hint="the logs backend refused the query; narrow the window or retry",
            )
        return list(self.mgmt.parse_shaped(response, "supabase.query_logs", body=body)["result"] or [])

    # -- Edge Functions
    def invoke(self, slug: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST a function once (never retried: it provisions). Returns (status, JSON body)."""
        response = self.functions.request(
            "POST", f"/functions/v1/{slug}", json=body, idempotent=False, ok=tuple(range(400, 600))
        )
        try:
            return response.status_code, loads_answer(response.content)
        except ValueError:
            return response.status_code, response.text[:300]


def _apply_filter(q: Any, column: str, op: str, value: Any) -> Any:
    if op == "in":
        return q.in_(column, list(value))
    if op == "is":
        return q.is_(column, value)
    if op not in ("eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike"):
        raise InputError(
            "filter",
            f"unknown operator {op!r}",
            allowed=["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is"],
        )
    return getattr(q, op)(column, value)

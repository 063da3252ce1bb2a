"""The one HTTP layer: httpx clients with auth, retries, typed errors and redaction.

Every platform call in vyxops goes through :class:`Api`, which wraps one
``httpx.Client`` (built by :func:`make_client`) for one platform. Retries live in one
place, :class:`RetryTransport`, under every client (Api's, and the one supabase-py's
PostgREST client sends through); Api maps what it returns to typed errors. Live and
sandbox differ only in the client's base URL and transport, and in the
:class:`Clock` that backoff sleeps on (wall time live, the world's virtual
clock in the sandbox), so nothing above this module knows which target it is on.

Promises kept here:

- 429, 408, 5xx and transport failures are retried with exponential backoff and
  jitter, honouring ``Retry-After``; a request that may already have been applied
  (non-idempotent, after a timeout/5xx/408) is never repeated blindly.
- Every failure ends as a typed :mod:`vyxops.core.errors` error with platform, method,
  path (query keys only), status, request id, body code and a hint.
- No credential reaches an exception, a repr or a log line: every token handed to
  an auth factory is registered with :func:`vyxops.core.errors.register_secret`.
"""

from __future__ import annotations

import base64
import logging
import random
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol
from urllib.parse import unquote_plus

import httpx

from vyxops import __version__
from vyxops.core import answers
from vyxops.core.errors import (
    ApiError,
    AuthError,
    ManifestUnknownError,
    NotFoundError,
    RateLimitedError,
    TransportError,
    UnexpectedAnswer,
    redact,
    register_secret,
)
from vyxops.core.facts import SUPABASE_MGMT_PER_MINUTE
from vyxops.core.flytokens import FlyTokens
from vyxops.core.shapes import is_jwt
from vyxops.core.text import loads_answer, one_line
from vyxops.fetch.budget import Budget, budget_for
from vyxops.fetch.pools import PooledTransport

__all__ = [
    "Clock",
    "WallClock",
    "RetryPolicy",
    "BearerAuth",
    "FlyAuth",
    "FlyService",
    "RegistryBasicAuth",
    "SupabaseKeyAuth",
    "bearer",
    "fly",
    "fly_authorization",
    "registry_basic",
    "supabase_key",
    "supabase_key_headers",
    "registry_password",
    "is_jwt",
    "make_client",
    "RetryTransport",
    "RetryTicket",
    "RETRY_TICKET",
    "Attempt",
    "AttemptHook",
    "log_attempt",
    "retry_layer",
    "with_retries",
    "Api",
    "REQUEST_ID_HEADERS",
    "IDEMPOTENT_METHODS",
]

log = logging.getLogger("vyxops.fetch.http")

#: Response headers that carry a request id, in the order they are looked up.
REQUEST_ID_HEADERS = ("fly-request-id", "x-request-id", "sb-request-id", "cf-ray")

#: Methods that may be repeated without changing the outcome (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

_EXCERPT_CHARS = 300
# Failures that happen before the request leaves the client: safe to repeat even for a create.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


# --------------------------------------------------------------------------- clock


class Clock(Protocol):
    """Where time comes from: wall time live, the world's virtual time in the sandbox."""

    def now(self) -> float:
        """Current time in Unix seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (really, or by moving a virtual clock)."""
        ...


class _WallScope:
    """What every wall-clock session shares: one rate budget per process (vyxops.fetch.budget)."""


class WallClock:
    """The real clock: :func:`time.time` and :func:`time.sleep`."""

    budget_scope: object = _WallScope

    def now(self) -> float:
        """Current wall time in Unix seconds."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` of wall time (nothing for zero or less)."""
        if seconds > 0:
            time.sleep(seconds)


# --------------------------------------------------------------------------- retry policy


@dataclass
class RetryPolicy:
    """How often and how patiently :class:`Api` retries.

    ``max_attempts`` counts the first try. The n-th retry waits
    ``base_delay * 2**(n-1)`` stretched by up to ``jitter`` (a fraction, drawn
    from the injected rng), at most ``max_delay``; a ``Retry-After`` header
    replaces that computation and is capped at ``max_delay`` too.
    """

    max_attempts: int = 4
    #: 429s a request may meet before giving up: the server did not act, and the budget
    #: (vyxops.fetch.budget) paces every retry to the wait the server asked for, so a storm slows
    #: a run down instead of failing it.
    max_rate_limited: int = 12
    max_rate_wait: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 20.0
    jitter: float = 0.25
    retry_statuses: tuple[int, ...] = (408, 429, 500, 502, 503, 504)

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Seconds to wait before retry ``retry_number`` (1 = first retry) without Retry-After."""
        delay = self.base_delay * (2 ** (retry_number - 1))
        # Jitter only stretches the delay, never shortens it, so a client never
        # comes back sooner than the plain backoff a rate limiter expects.
        delay *= 1.0 + self.jitter * float(rng.random())
        return float(min(delay, self.max_delay))

    def delay(self, retry_number: int, rng: random.Random, retry_after: str | None = None, now: float = 0.0) -> float:
        """Seconds to wait before retry ``retry_number``: the ``Retry-After`` value
        (seconds or HTTP date, measured from ``now``) capped at ``max_delay`` when
        there is one, else :meth:`backoff`."""
        seconds = _parse_retry_after(retry_after, now)
        if seconds is not None:
            return min(seconds, self.max_delay)
        return self.backoff(retry_number, rng)

    def rate_limit_delay(self, limited: int, rng: random.Random, retry_after: str | None, now: float) -> float:
        """Seconds to pause after the ``limited``-th 429 in a row: ``Retry-After`` as the server
        said (up to ``max_rate_wait``: a window is a minute at most), else :meth:`backoff`."""
        seconds = _parse_retry_after(retry_after, now)
        if seconds is not None:
            return min(seconds, self.max_rate_wait)
        return self.backoff(limited, rng)

    def retries_status(self, status: int, idempotent: bool) -> bool:
        """Whether an answer with ``status`` deserves another attempt.

        429 always (the server refused before acting); the other retry statuses
        (408, 5xx) only for idempotent requests, since the first attempt may
        have been applied.
        """
        return status in self.retry_statuses and (idempotent or status == 429)

    @staticmethod
    def retries_exception(exc: httpx.RequestError, idempotent: bool) -> bool:
        """Whether a request that failed with ``exc`` deserves another attempt.

        Connect errors and connect/pool timeouts always (the request never left
        the client); other transport failures only for idempotent requests; a bad
        URL scheme or an undecodable body never (retrying cannot fix them).
        """
        if isinstance(exc, httpx.UnsupportedProtocol) or not isinstance(exc, httpx.TransportError):
            return False
        if unresolvable(exc):  # a name that does not exist will not exist in 4 s either: fail at once
            return False
        return idempotent or isinstance(exc, _NEVER_SENT)


def unresolvable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the host's name does not exist (EAI_NONAME), as opposed to a
    lookup that failed for now (EAI_AGAIN, "Temporary failure in name resolution"), which is worth a retry."""
    import socket

    seen: BaseException | None = exc
    for _ in range(5):  # httpx.ConnectError <- httpcore.ConnectError <- socket.gaierror
        if seen is None:
            break
        if isinstance(seen, socket.gaierror):
            return seen.errno == socket.EAI_NONAME
        seen = seen.__cause__ or seen.__context__
    return "Name or service not known" in str(exc) or "nodename nor servname" in str(exc)


# --------------------------------------------------------------------------- auth


class _HeaderAuth(httpx.Auth):
    """Sets fixed headers on every request; its repr never shows them."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the credential headers to ``request`` and send it once."""
        for name, value in self._headers.items():
            request.headers[name] = value
        yield request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"


class BearerAuth(_HeaderAuth):
    """``Authorization: Bearer <token>`` (Supabase Management API, plain Fly tokens)."""

    def __init__(self, token: str) -> None:
        token = token.strip()
        register_secret(token)
        super().__init__({"Authorization": f"Bearer {token}"})


FlyService = Literal["machines", "api"]


class FlyAuth(httpx.Auth):
    """Fly's Authorization header, per service as fly-go sends it (:mod:`vyxops.core.flytokens`).

    ``machines`` (the Machines API): the macaroons only when there are any.
    ``api`` (api.fly.io): GraphQL gets macaroons and user tokens together; the logs
    API (``/api/v1/apps/{app}/logs``) the macaroons only. The scheme is ``FlyV1``
    when any macaroon is present, else ``Bearer``; a token given with either
    scheme is parsed without it, so the scheme is never doubled.
    """

    def __init__(self, token: str | FlyTokens, service: FlyService = "machines") -> None:
        if isinstance(token, str):
            register_secret(token.strip())
        self._tokens = token if isinstance(token, FlyTokens) else FlyTokens.parse(token)
        self._service = service

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the service's Authorization header to ``request`` and send it once."""
        tokens = self._tokens
        header = tokens.flaps_header() if self._service == "machines" else tokens.api_header(request.url.path)
        request.headers["Authorization"] = header
        yield request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"


class RegistryBasicAuth(_HeaderAuth):
    """registry.fly.io: HTTP Basic with user ``x`` and the macaroons-only token, without a scheme, as password.

    fly-go's ``Tokens.Docker()`` (PLATFORM.md third round): a bundle's user tokens are
    dropped when it holds any macaroon; the password stays comma-joined.
    """

    def __init__(self, token: str | FlyTokens) -> None:
        if isinstance(token, str):
            register_secret(token.strip())
        password = registry_password(token)
        encoded = base64.b64encode(f"x:{password}".encode()).decode("ascii")
        register_secret(password)
        # The base64 form is as good as the token itself: mask it too.
        register_secret(encoded)
        super().__init__({"Authorization": f"Basic {encoded}"})


class SupabaseKeyAuth(_HeaderAuth):
    """Supabase API key auth: ``apikey: <key>``, and ``Authorization: Bearer <key>`` only for a JWT-shaped key."""

    def __init__(self, key: str, bearer: str | None = None) -> None:
        key = key.strip()
        register_secret(key)
        register_secret(bearer)
        super().__init__(supabase_key_headers(key, bearer))


def registry_password(token: str | FlyTokens) -> str:
    """The registry's Basic password for a Fly token: its macaroons only (else its user tokens), no scheme."""
    return (token if isinstance(token, FlyTokens) else FlyTokens.parse(token)).flaps()


def supabase_key_headers(key: str, bearer: str | None = None) -> dict[str, str]:
    """Headers for a Supabase API key: always ``apikey``; ``Authorization: Bearer`` only when the key is a JWT.

    The new ``sb_secret_…``/``sb_publishable_…`` keys are not JWTs: as a bearer they are
    refused (Edge Functions' verify_jwt: 401 "Invalid JWT" before the function runs;
    PostgREST: PGRST301), so they go in ``apikey`` alone. A legacy service_role or
    anon key is a JWT and goes in both (Supabase's "Authorization headers" guide).
    ``bearer`` (a user's JWT, ``$VYXOPS_FUNCTION_JWT``) goes in ``Authorization`` instead of the key.
    """
    key = key.strip()
    headers = {"apikey": key}
    if bearer or is_jwt(key):
        headers["Authorization"] = f"Bearer {(bearer or key).strip()}"
    return headers


def fly_authorization(token: str, service: FlyService = "machines") -> str:
    """The Authorization header value fly-go sends ``service`` for ``token``.

    ``machines`` (also the logs API): ``FlyV1 <macaroons>`` when the token holds any
    macaroon (``fm1r_``, ``fm1a_``, ``fm2_``), its user tokens dropped; else
    ``Bearer <token>``. ``api`` (GraphQL): every part, under ``FlyV1`` when any is a
    macaroon. A leading ``Bearer ``/``FlyV1 `` in ``token`` is stripped first.
    """
    tokens = FlyTokens.parse(token)
    return tokens.flaps_header() if service == "machines" else tokens.graphql_header()


def bearer(token: str) -> BearerAuth:
    """Auth sending ``Authorization: Bearer <token>``; the token is registered for redaction."""
    return BearerAuth(token)


def fly(token: str | FlyTokens, service: FlyService = "machines") -> FlyAuth:
    """Auth for Fly's Machines API (``machines``) or api.fly.io's GraphQL and logs (``api``); see :class:`FlyAuth`."""
    return FlyAuth(token, service)


def registry_basic(token: str | FlyTokens) -> RegistryBasicAuth:
    """Auth for registry.fly.io: Basic ``base64("x:" + macaroons-only token without a scheme)``."""
    return RegistryBasicAuth(token)


def supabase_key(key: str, bearer: str | None = None) -> SupabaseKeyAuth:
    """Auth for Supabase REST/functions: ``apikey``, plus ``Authorization: Bearer`` for ``bearer`` (a user's JWT,
    for Edge Functions) or else a JWT-shaped key."""
    return SupabaseKeyAuth(key, bearer)


# --------------------------------------------------------------------------- client


def make_client(
    platform: str,
    base_url: str,
    auth: httpx.Auth | None,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
    event_hooks: dict[str, list[Any]] | None = None,
) -> httpx.Client:
    """An ``httpx.Client`` for one platform at ``base_url``.

    ``transport`` replaces the network (the sandbox, ``httpx.MockTransport``);
    without it the client talks to the real host, through a :class:`~vyxops.fetch.pools.PooledTransport`
    of its own (the host's connections spread over several pools). Redirects are not followed, so
    a 3xx stays visible to the caller instead of silently changing host with the
    credentials attached.
    """
    all_headers = {"User-Agent": f"vyxops/{__version__} ({platform})"}
    all_headers.update(headers or {})
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        transport=transport if transport is not None else PooledTransport(),
        timeout=timeout,
        headers=all_headers,
        event_hooks=event_hooks,
        follow_redirects=False,
    )


#: The key of a request's :class:`RetryTicket` in ``httpx.Request.extensions``.
RETRY_TICKET = "vyxops.retry"


@dataclass
class RetryTicket:
    """What one request tells the retry layer, and what the layer tells back.

    :class:`Api` puts one in the request's extensions: whether the request may be repeated
    (``idempotent``; None: by its method) and which error statuses the caller takes as answers
    (``ok``: returned at once, never retried). The layer writes how many attempts it made into
    ``attempts``, for the "after N attempts" of the error a user reads. A request without one
    (supabase-py's) is judged by its method alone.
    """

    idempotent: bool | None = None
    ok: tuple[int, ...] = ()
    attempts: int = 0


@dataclass(frozen=True)
class Attempt:
    """One try of one request, as every attempt hook sees it."""

    platform: str
    method: str
    where: str  # the path with query keys only (values may be keys): never a credential
    outcome: str  # the status, or the httpx exception's class name
    number: int  # 1 for the first try, 429s included
    of: int  # the policy's max_attempts
    took: float  # seconds, the answer's body read


#: Called after every attempt (:meth:`RetryTransport.watch`); the request count and the debug line are two of them.
AttemptHook = Callable[[Attempt], None]


def log_attempt(attempt: Attempt) -> None:
    """The one debug line per attempt, from every client: platform, method, path (query keys
    only), status or exception, attempt n/max, seconds."""
    a = attempt
    log.debug("%s %s %s -> %s attempt %d/%d %.3fs", a.platform, a.method, a.where, a.outcome, a.number, a.of, a.took)


class RetryTransport(httpx.BaseTransport):
    """The one retry loop: under every client, :class:`Api`'s and supabase-py's PostgREST one alike.

    Which statuses and failures are tried again (:class:`RetryPolicy`), the waits (on the
    injected :class:`Clock`: the sandbox's virtual clock jumps), ``Retry-After``, the shared
    rate budget, and one :class:`Attempt` to every hook per try all live here. It never raises
    typed errors: the last response is returned (and the last httpx exception re-raised) for
    the caller to judge; :class:`Api` turns them into :mod:`vyxops.core.errors` errors.
    """

    def __init__(
        self,
        transport: httpx.BaseTransport,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        *,
        platform: str = "supabase-rest",
        budget: Budget | None = None,
    ) -> None:
        self.transport = transport
        self.retry = retry if retry is not None else RetryPolicy()
        self.clock: Clock = clock if clock is not None else WallClock()
        self.rng = rng if rng is not None else random.Random()
        self.platform = platform
        self.budget = budget if budget is not None else budget_for(self.clock)
        self.hooks: list[AttemptHook] = [log_attempt]

    def watch(self, hook: AttemptHook) -> None:
        """Call ``hook`` after every attempt from now on (a benchmark counts requests so)."""
        self.hooks.append(hook)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the wrapped transport, retrying per the policy.

        A request that is not idempotent (POST/PATCH unless its ticket says otherwise) is retried
        only when the server cannot have acted on it: 429, or the connection never being made.
        """
        ticket = request.extensions.get(RETRY_TICKET)
        if not isinstance(ticket, RetryTicket):
            ticket = RetryTicket()
        idempotent = ticket.idempotent
        if idempotent is None:
            idempotent = request.method.upper() in IDEMPOTENT_METHODS
        policy = self.retry
        attempts = max(1, policy.max_attempts)
        where = _safe_path(request.url)
        ticket.attempts = limited = 0  # every try; the 429s among them, which have their own allowance
        while True:
            ticket.attempts += 1
            attempt = ticket.attempts
            self.budget.acquire(self.platform, request.method, request.url.path)
            started = time.perf_counter()
            try:
                with self.budget.sending():
                    response = self.transport.handle_request(request)
                    response.read()  # the answer is in before the place in flight is given back
            except httpx.RequestError as exc:
                self._report(request.method, where, type(exc).__name__, (attempt, attempts), started)
                if attempt - limited < attempts and policy.retries_exception(exc, idempotent):
                    self._sleep(policy.backoff(attempt - limited, self.rng), request.method, where, type(exc).__name__)
                    continue
                raise
            status = response.status_code
            self._report(request.method, where, str(status), (attempt, attempts), started)
            self.budget.observe(self.platform, request.method, request.url.path, response.headers)
            if status < 400 or status in ticket.ok:
                return response
            if status == 429:
                limited += 1
                if limited < policy.max_rate_limited:
                    pause_for_429(self, request, response, limited)
                    continue
                return response
            if attempt - limited < attempts and policy.retries_status(status, idempotent):
                delay = policy.delay(attempt - limited, self.rng, response.headers.get("retry-after"), self.clock.now())
                response.close()  # release the connection before the next attempt
                self._sleep(delay, request.method, where, str(status))
                continue
            return response

    def _report(self, method: str, where: str, outcome: str, attempt: tuple[int, int], started: float) -> None:
        seen = Attempt(self.platform, method, where, outcome, *attempt, took=time.perf_counter() - started)
        for hook in self.hooks:
            hook(seen)

    def _sleep(self, seconds: float, method: str, where: str, reason: str) -> None:
        log.debug("%s %s %s: %s, retrying in %.2fs", self.platform, method, where, reason, seconds)
        self.clock.sleep(seconds)

    def close(self) -> None:
        """Close the wrapped transport."""
        self.transport.close()


def retry_layer(client: httpx.Client) -> RetryTransport | None:
    """The retry layer under ``client``, if it has one."""
    # httpx keeps a client's transport in a private attribute and offers no public getter (tests/test_http.py
    # test_the_retry_layer_put_under_a_client_is_the_one_httpx_sends_through fails if httpx changes it); make_client
    # gives no proxy mounts (an explicit transport turns env proxies off), so this is the only one.
    transport = client._transport
    return transport if isinstance(transport, RetryTransport) else None


def with_retries(
    client: httpx.Client,
    platform: str,
    *,
    retry: RetryPolicy | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    budget: Budget | None = None,
) -> RetryTransport:
    """``client``'s retry layer: the one it has, else a new one put under it (wrapping its transport)."""
    found = retry_layer(client)
    if found is not None:
        return found
    layer = RetryTransport(client._transport, retry, clock, rng, platform=platform, budget=budget)
    client._transport = layer
    return layer


# --------------------------------------------------------------------------- helpers


def pause_for_429(client: RetryTransport, request: httpx.Request, response: httpx.Response, limited: int) -> None:
    """A 429 (the ``limited``-th in a row): pause the request's key in the shared budget, for
    every thread; the next try waits it out in :meth:`Budget.acquire`. Without ``Retry-After``,
    ``X-RateLimit-Reset`` says the same: the seconds until the window reopens (Supabase's
    api_rate_limits.mdx: "use the X-RateLimit-Reset header (seconds) to determine exactly how
    long to wait")."""
    retry_after = response.headers.get("retry-after") or response.headers.get("x-ratelimit-reset")
    seconds = client.retry.rate_limit_delay(limited, client.rng, retry_after, client.clock.now())
    response.close()  # release the connection before the next attempt
    log.debug("%s %s %s: 429, pausing %.2fs", client.platform, request.method, _safe_path(request.url), seconds)
    client.budget.pause(client.platform, request.method, request.url.path, seconds)


def _safe_path(url: httpx.URL) -> str:
    """``url``'s path with query keys but no query values (a value may be a key)."""
    # The raw query split by hand: url.params decodes every value, a logs query's SQL included,
    # to throw the values away (a tenth of a millisecond a request).
    query = url.query.decode("ascii", "replace")
    keys = list(dict.fromkeys(unquote_plus(part.split("=", 1)[0]) for part in query.split("&") if part))
    if not keys:
        return url.path
    return url.path + "?" + "&".join(f"{key}=…" for key in keys)


def _request_id(headers: httpx.Headers) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return redact(value)
    return None


def _parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait per a ``Retry-After`` value (delta seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive one is taken as UTC
        return None
    return max(0.0, when.timestamp() - now)


def _body_json(response: httpx.Response) -> Any:
    try:
        return loads_answer(response.content)
    except (ValueError, UnicodeDecodeError):
        return None


def _body_text(response: httpx.Response) -> str:
    try:
        return response.content.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:
        return response.content.decode("utf-8", errors="replace")


def _excerpt(text: str) -> str | None:
    # Redact before cutting: a token cut in half would no longer match redact().
    text = one_line(redact(text.strip()))  # platform text in a message: no line break or escape of its own
    if not text:
        return None
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


def _error_code(body: Any) -> str | None:
    """The machine-readable code in an error body, whichever platform's shape it has."""
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code") or (errors[0].get("extensions") or {}).get("code")
        if isinstance(code, str) and code:
            return code  # registry (distribution spec) or GraphQL
    for key in ("code", "status", "error_code"):
        code = body.get(key)
        # PostgREST "code", Fly "status" (a main.statusCode string); an integer
        # "status" echoing the HTTP status says nothing new.
        if isinstance(code, str) and code:
            return code
    return None


def _error_message(body: Any) -> str | None:
    """The human-readable part of an error body, whichever platform's shape it has."""
    if not isinstance(body, dict):
        return None
    parts: list[str] = []
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        parts += [str(first[k]) for k in ("message", "detail") if first.get(k)]
    for key in ("error", "message", "msg", "details", "hint"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            parts.append(value.strip())
        elif isinstance(value, dict) and isinstance(value.get("message"), str):
            parts.append(value["message"])  # e.g. {"error": {"message": ...}}
    seen: list[str] = []
    for part in parts:
        if part not in seen:
            seen.append(part)
    return "; ".join(seen) or None


def _rate_limit_hint(platform: str, headers: httpx.Headers) -> str:
    """What to do about a 429 that outlasted every retry: when the window reopens, and whose window it is."""
    reset = headers.get("x-ratelimit-reset") or headers.get("retry-after")
    when = f"the window reopens in {reset.strip()} s; " if reset and reset.strip().isdigit() else ""
    if platform == "supabase-mgmt":
        # api_rate_limits.mdx: per user, per project or organization, per endpoint; "all tokens
        # created by the same user share it".
        return (
            f"{when}the Management API allows {SUPABASE_MGMT_PER_MINUTE} requests a minute per endpoint to one user, "
            "shared by every access token of that user (another tool or run may be spending it); wait and run again"
        )
    return f"{when}rate limited; wait and retry"


_FLY_TOKEN_SOURCES = "FLY_ACCESS_TOKEN (else FLY_API_TOKEN, else ~/.fly/config.yml)"  # flyctl's order
_AUTH_VARIABLES = {
    "fly-machines": _FLY_TOKEN_SOURCES,
    "fly-graphql": _FLY_TOKEN_SOURCES,
    "fly-api": _FLY_TOKEN_SOURCES,
    "fly-registry": _FLY_TOKEN_SOURCES,
    "supabase-rest": "SUPABASE_SERVICE_ROLE_KEY and SUPABASE_URL",
    "supabase-functions": "SUPABASE_SERVICE_ROLE_KEY and SUPABASE_URL",
    "supabase-mgmt": "SUPABASE_ACCESS_TOKEN and SUPABASE_PROJECT_REF",
}


# --------------------------------------------------------------------------- Api


class Api:
    """Wraps one httpx.Client for one platform: typed errors and redaction over the client's retry layer.

    The client gets a :class:`RetryTransport` (built from ``clock``, ``retry``, ``rng`` and
    ``budget``) unless it has one already; the retries happen there, in the one loop every client shares.
    """

    def __init__(
        self,
        client: httpx.Client,
        platform: str,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.client = client
        self.platform = platform
        self.retrying = with_retries(client, platform, retry=retry, clock=clock, rng=rng, budget=budget)
        self.clock: Clock = self.retrying.clock
        self.retry = self.retrying.retry
        self.rng = self.retrying.rng
        self.budget = self.retrying.budget

    def __repr__(self) -> str:
        return f"Api(platform={self.platform!r}, base_url={str(self.client.base_url)!r})"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        ok: tuple[int, ...] = (),
        timeout: float | httpx.Timeout | None = None,
    ) -> httpx.Response:
        """Send a request and return a response whose status is < 400 or in ``ok``.

        Retried by the client's :class:`RetryTransport`; statuses in ``ok`` are returned, never
        retried (e.g. ``ok=(408,)`` for a wait call that polls itself). A request that is not
        idempotent (POST/PATCH unless ``idempotent=True``) is retried only when the server cannot
        have acted on it: 429, or the connection never being made. Raises
        :class:`~vyxops.core.errors.ApiError` (or a subclass) for an error status and
        :class:`~vyxops.core.errors.TransportError` when the platform cannot be reached.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        ticket = RetryTicket(idempotent=idempotent, ok=ok)
        # httpx treats timeout=None as "no timeout"; ours means "the client's".
        call_timeout: Any = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
        request = self.client.build_request(
            method,
            path,
            params=params,
            json=json,
            content=content,
            headers=headers,
            timeout=call_timeout,
            extensions={RETRY_TICKET: ticket},
        )
        where = _safe_path(request.url)
        failure: httpx.RequestError | None = None
        try:
            response = self.client.send(request)
        except httpx.RequestError as exc:
            failure = exc
        if failure is not None:
            # Raised outside the except block so the httpx exception (which holds
            # the request, credentials included) is neither __cause__ nor __context__.
            raise self._transport_error(failure, method, where, ticket.attempts, idempotent)
        if response.status_code < 400 or response.status_code in ok:
            return response
        raise self.error_for(response, method=method, path=where, attempts=ticket.attempts, idempotent=idempotent)

    def get_json(self, path: str, *, method: str = "GET", **kw: Any) -> Any:
        """:meth:`request` then the parsed JSON body (``None`` for 204/205 or a HEAD).

        A body that is not JSON raises :class:`~vyxops.core.errors.TransportError`
        ("malformed response body"), since what answered was not the API.
        """
        response = self.request(method, path, **kw)
        return self.parse_json(response)

    def parse_json(self, response: httpx.Response) -> Any:
        """The JSON body of ``response``; TransportError('malformed response body …') if it is not JSON."""
        if response.status_code in (204, 205) or response.request.method == "HEAD":
            return None
        try:
            return loads_answer(response.content)  # never a lone surrogate (vyxops.core.text)
        except (ValueError, UnicodeDecodeError):
            pass
        # Raised outside the except block: a JSONDecodeError holds the whole body as .doc.
        excerpt = _excerpt(_body_text(response)) or "(empty)"
        content_type = response.headers.get("content-type", "no content-type")
        raise TransportError(
            f"malformed response body ({response.status_code}, {content_type}, not JSON): {excerpt}",
            platform=self.platform,
            method=response.request.method,
            path=_safe_path(response.request.url),
            hint="something other than the API answered (proxy, captive portal, wrong base URL?); "
            "check the base URL and retry",
        )

    def get_shaped(self, read: str, path: str, *, method: str = "GET", **kw: Any) -> Any:
        """:meth:`request`, then the JSON body checked against read ``read``'s shape (:meth:`parse_shaped`)."""
        return self.parse_shaped(self.request(method, path, **kw), read)

    def parse_shaped(self, response: httpx.Response, read: str, *, body: Any = None) -> Any:
        """The JSON body of ``response`` (or ``body``, parsed already) when it has the shape read ``read`` must
        answer (:data:`vyxops.core.answers.READS`); else :class:`~vyxops.core.errors.UnexpectedAnswer`, never
        "empty"."""
        if body is None:
            body = self.parse_json(response)
        mismatch = answers.mismatch(read, body)
        if mismatch is None:
            return body
        raise UnexpectedAnswer(
            mismatch,
            platform=answers.READS[read].platform,
            method=response.request.method,
            path=_safe_path(response.request.url),
            status=response.status_code,
            request_id=_request_id(response.headers),
        )

    # ----------------------------------------------------------------- internals

    def _transport_error(
        self, exc: httpx.RequestError, method: str, where: str, attempts: int, idempotent: bool
    ) -> TransportError:
        detail = str(exc) or "no detail"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if isinstance(exc, httpx.TimeoutException):
            message = f"timed out ({type(exc).__name__}: {detail}){tries}"
            hint = "the platform did not answer in time; retry later or raise the timeout"
        elif isinstance(exc, httpx.ConnectError):
            message = f"could not connect ({detail}){tries}"
            hint = "check the network and the base URL (for a served sandbox: is `vyxops sandbox serve` running?)"
        else:
            message = f"{type(exc).__name__}: {detail}{tries}"
            hint = "the connection failed mid-request; retry later"
        if not idempotent and not isinstance(exc, _NEVER_SENT):
            hint += "; the request may have been applied: look before sending it again"
        return TransportError(message, platform=self.platform, method=method, path=where, hint=hint)

    def error_for(
        self,
        response: httpx.Response,
        *,
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
        idempotent: bool = True,
    ) -> ApiError:
        """The typed error for an error ``response`` (status >= 400): built, not raised.

        Public so that clients which accepted a status via ``ok`` can still turn
        it into the error a user reads.
        """
        method = method or response.request.method
        path = path or _safe_path(response.request.url)
        status = response.status_code
        text = _body_text(response)
        body = _body_json(response)
        code = _error_code(body)
        code = redact(code) if code else None  # a body's "code" is server text like any other
        message = _error_message(body)
        excerpt = _excerpt(text)
        manifest_unknown = status in (400, 404) and "MANIFEST_UNKNOWN" in text
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""

        cls: type[ApiError]
        if manifest_unknown:
            cls = ManifestUnknownError
            code = "MANIFEST_UNKNOWN"
            hint = (
                "the image tag or digest is not in the registry: push it, or point at an image that "
                "exists (pinning the current release's image or digest is sturdier than a moving tag)"
            )
        elif status in (401, 403):
            cls = AuthError
            variables = _AUTH_VARIABLES.get(self.platform, "FLY_API_TOKEN / SUPABASE_*")
            if status == 401:
                hint = f"check {variables} in the environment; the token may be missing, expired or revoked"
            else:
                hint = f"the credential in {variables} is valid but not allowed to do this; use a token with access"
        elif status == 404:
            cls = NotFoundError
            if body is None and text.strip().lower().startswith("404 page not found"):
                # Go's default mux answer: the route, not the resource, is missing.
                message = (
                    "no such route: the path did not match any API route (plain-text '404 page not found'); "
                    "it says nothing about whether the resource exists"
                )
                hint = (
                    "check the path and the ids in it "
                    "(an id containing '/', or an image reference passed as a machine id?)"
                )
            else:
                hint = "check the app name, id or path; "
                hint += (
                    "destroyed machines are listed only with include_deleted=true"
                    if self.platform == "fly-machines"
                    else "the resource may have been deleted or never existed"
                )
        elif status == 429:
            cls = RateLimitedError
            hint = _rate_limit_hint(self.platform, response.headers)
        else:
            cls = ApiError
            if status == 408 or status >= 500:
                hint = "the platform timed out or failed; retry later"
                if not idempotent:
                    hint += " — the request may have been applied: look before sending it again"
            else:
                hint = "the platform rejected the request; read the message and fix the request"

        if not message and body is None:
            message = excerpt  # a plain-text answer is its own message (a 429's "ThrottlerException: …")
        if status == 429:
            message = f"rate limited (429): {message or response.reason_phrase}"
        message = _excerpt(message or "") or response.reason_phrase or "error"
        return cls(
            message + tries,
            platform=self.platform,
            method=method,
            path=path,
            status=status,
            request_id=_request_id(response.headers),
            code=code,
            body_excerpt=excerpt,
            hint=hint,
        )

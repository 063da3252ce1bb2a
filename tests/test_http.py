"""Tests for vyxops.fetch.http: auth headers, retries, typed errors, redaction, logging.

Everything runs on httpx.MockTransport and a fake clock: no network, no sleeping.
"""

from __future__ import annotations

import base64
import json
import logging
import random
from email.utils import formatdate
from pathlib import Path
from typing import Callable

import httpx
import pytest

from vyxops.core import errors
from vyxops.fetch.http import (
    Api,
    RetryPolicy,
    RetryTransport,
    bearer,
    fly,
    fly_authorization,
    make_client,
    registry_basic,
    supabase_key,
)
from vyxops.testing.clock import FakeClock

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "fly"

# Shapes no regex in vyxops.core.errors knows: only register_secret() can mask them,
# so a leak test passing proves the token was registered.
PLAIN_TOKEN = "opaque-plain-token-7d1c5a9e03b4"
SUPABASE_KEY = "service-role-key-55aa1c0ffee2"
MACAROON = "fm2_" + "lJPECAAAAAAAAAey" + "x" * 21  # a canary: token-shaped, never real

Handler = Callable[[httpx.Request], httpx.Response]


def make_api(
    handler: Handler,
    *,
    platform: str = "fly-machines",
    auth: httpx.Auth | None = None,
    clock: FakeClock | None = None,
    retry: RetryPolicy | None = None,
) -> tuple[Api, FakeClock]:
    clock = clock or FakeClock()
    client = make_client(platform, "https://api.example.test", auth, transport=httpx.MockTransport(handler))
    return Api(client, platform, clock=clock, retry=retry, rng=random.Random(7)), clock


def sequence(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with ``responses`` in order (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses[min(len(seen), len(responses)) - 1]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def captured_headers(auth: httpx.Auth) -> httpx.Headers:
    handler, seen = sequence(httpx.Response(200, json={}))
    api, _ = make_api(handler, auth=auth)
    api.request("GET", "/v1/apps")
    return seen[0].headers


def leaked(token: str, err: BaseException) -> list[str]:
    """Every rendering of ``err`` that contains ``token``."""
    texts = {"str": str(err), "repr": repr(err), "args": repr(err.args)}
    for name in ("message", "hint", "body_excerpt", "path", "request_id", "code"):
        texts[name] = str(getattr(err, name, ""))
    return [name for name, text in texts.items() if token in text]


# --------------------------------------------------------------------------- auth


def test_bearer_auth_sends_bearer_header() -> None:
    """bearer() sends the token as `Authorization: Bearer <token>`."""
    assert captured_headers(bearer(PLAIN_TOKEN))["authorization"] == f"Bearer {PLAIN_TOKEN}"


@pytest.mark.parametrize(
    "token",
    [
        "fm1r_" + "a" * 30,
        "fm1a_" + "b" * 30,
        "fm2_" + "c" * 30,
        "fm1r_" + "a" * 30 + ",fm1a_" + "b" * 30,
    ],
)
def test_fly_auth_sends_macaroons_as_flyv1(token: str) -> None:
    """fly() sends a token with a fm1r_, fm1a_ or fm2_ part under Fly's macaroon scheme."""
    assert captured_headers(fly(token))["authorization"] == f"FlyV1 {token}"


def test_fly_auth_keeps_an_explicit_flyv1_scheme() -> None:
    """fly() sends a value that already starts with `FlyV1 ` unchanged, without doubling the scheme."""
    value = "FlyV1 " + "fm2_" + "d" * 30
    assert captured_headers(fly(value))["authorization"] == value


def test_fly_auth_sends_legacy_tokens_as_bearer() -> None:
    """fly() sends a token without macaroon parts as `Bearer <token>`."""
    assert fly_authorization(PLAIN_TOKEN) == f"Bearer {PLAIN_TOKEN}"
    assert captured_headers(fly(PLAIN_TOKEN))["authorization"] == f"Bearer {PLAIN_TOKEN}"


def test_registry_basic_auth_uses_user_x_and_token_password() -> None:
    """registry_basic() sends HTTP Basic with user `x` and the token as password."""
    header = captured_headers(registry_basic(PLAIN_TOKEN))["authorization"]
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"x:{PLAIN_TOKEN}"


def test_supabase_key_auth_sends_a_key_that_is_not_a_jwt_in_apikey_only() -> None:
    """supabase_key() sends `apikey: <key>`; a key that is not a JWT is never sent as `Authorization: Bearer`."""
    headers = captured_headers(supabase_key(SUPABASE_KEY))
    assert headers["apikey"] == SUPABASE_KEY
    assert "authorization" not in headers


@pytest.mark.parametrize("factory", [bearer, fly, registry_basic, supabase_key])
def test_auth_objects_register_and_hide_their_token(factory: Callable[[str], httpx.Auth]) -> None:
    """Every auth factory registers its token for redaction and keeps it out of its repr."""
    token = f"unshaped-{factory.__name__}-secret-0042"
    auth = factory(token)
    assert token not in repr(auth)
    assert token not in errors.redact(f"echo {token} echo")


# --------------------------------------------------------------------------- retries


def test_429_with_retry_after_seconds_sleeps_that_long() -> None:
    """A 429 with `Retry-After: 3` makes the next attempt wait exactly 3 seconds."""
    handler, seen = sequence(httpx.Response(429, headers={"retry-after": "3"}), httpx.Response(200, json={"ok": 1}))
    api, clock = make_api(handler)
    assert api.get_json("/v1/apps/a/machines") == {"ok": 1}
    assert len(seen) == 2
    assert clock.sleeps == [3.0]


def test_429_with_retry_after_http_date_sleeps_until_then() -> None:
    """A 429 with an HTTP-date `Retry-After` waits from the clock's now until that date."""
    clock = FakeClock()
    when = formatdate(clock.now() + 7, usegmt=True)
    handler, _ = sequence(httpx.Response(429, headers={"retry-after": when}), httpx.Response(200, json=[]))
    api, _ = make_api(handler, clock=clock)
    api.request("GET", "/v1/apps")
    assert clock.sleeps == [pytest.approx(7.0)]


def test_retry_after_is_capped_at_max_delay() -> None:
    """A huge Retry-After waits only max_delay, so one answer cannot stall a run for an hour."""
    handler, _ = sequence(httpx.Response(503, headers={"retry-after": "3600"}), httpx.Response(200))
    api, clock = make_api(handler, retry=RetryPolicy(max_delay=20.0))
    api.request("GET", "/v1/apps")
    assert clock.sleeps == [20.0]


def test_backoff_grows_between_retries_and_stays_within_jitter() -> None:
    """Without Retry-After, each wait is longer than the last and within base*2^n*(1+jitter)."""
    handler, seen = sequence(httpx.Response(502), httpx.Response(502), httpx.Response(502), httpx.Response(200))
    policy = RetryPolicy(max_attempts=4, base_delay=0.5, jitter=0.25)
    api, clock = make_api(handler, retry=policy)
    api.request("GET", "/v1/apps")
    assert len(seen) == 4
    assert len(clock.sleeps) == 3
    assert clock.sleeps == sorted(clock.sleeps) and len(set(clock.sleeps)) == 3
    for n, slept in enumerate(clock.sleeps):
        assert 0.5 * 2**n <= slept <= 0.5 * 2**n * 1.25


def test_backoff_is_deterministic_for_a_seeded_rng() -> None:
    """Two Apis with the same seeded rng sleep exactly the same amounts."""
    runs = []
    for _ in range(2):
        handler, _ = sequence(httpx.Response(500), httpx.Response(500), httpx.Response(200))
        api, clock = make_api(handler)
        api.request("GET", "/v1/apps")
        runs.append(clock.sleeps)
    assert runs[0] == runs[1]


def test_5xx_is_retried_then_raises_api_error_with_status_and_request_id() -> None:
    """A persistent 503 is tried max_attempts times, then raises ApiError carrying status and request id."""
    response = httpx.Response(503, headers={"fly-request-id": "01JREQ-iad"}, json={"error": "upstream busy"})
    handler, seen = sequence(response)
    api, clock = make_api(handler, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(errors.ApiError) as info:
        api.request("GET", "/v1/apps/a/machines")
    err = info.value
    assert type(err) is errors.ApiError
    assert len(seen) == 3 and len(clock.sleeps) == 2
    assert err.status == 503 and err.request_id == "01JREQ-iad"
    assert err.platform == "fly-machines" and err.method == "GET" and err.path == "/v1/apps/a/machines"
    assert "upstream busy" in str(err) and "3 attempts" in str(err)


@pytest.mark.parametrize("header", ["x-request-id", "sb-request-id", "cf-ray"])
def test_request_id_is_read_from_each_known_header(header: str) -> None:
    """The request id comes from whichever of fly-request-id/x-request-id/sb-request-id/cf-ray is present."""
    handler, _ = sequence(httpx.Response(400, headers={header: "rid-123"}, json={"message": "bad"}))
    api, _ = make_api(handler, platform="supabase-mgmt")
    with pytest.raises(errors.ApiError) as info:
        api.request("GET", "/v1/projects/x/secrets")
    assert info.value.request_id == "rid-123"


def test_post_is_not_retried_after_500() -> None:
    """A POST answered 500 is raised at once: the create may have happened, so it is not repeated."""
    handler, seen = sequence(httpx.Response(500, json={"error": "internal"}), httpx.Response(200))
    api, clock = make_api(handler)
    with pytest.raises(errors.ApiError) as info:
        api.request("POST", "/v1/apps/a/machines", json={"config": {}})
    assert len(seen) == 1 and clock.sleeps == []
    assert "look before" in (info.value.hint or "")


def test_post_is_not_retried_after_408() -> None:
    """A POST answered 408 is raised at once: a 408 on create is ambiguous."""
    handler, seen = sequence(httpx.Response(408), httpx.Response(200))
    api, _ = make_api(handler)
    with pytest.raises(errors.ApiError) as info:
        api.request("POST", "/v1/apps/a/machines", json={})
    assert len(seen) == 1 and info.value.status == 408


def test_post_is_not_retried_after_read_timeout() -> None:
    """A POST whose answer timed out raises TransportError after one attempt, hinting to look first."""
    handler, seen = sequence(httpx.ReadTimeout("read timed out"), httpx.Response(200))
    api, clock = make_api(handler)
    with pytest.raises(errors.TransportError) as info:
        api.request("POST", "/v1/apps/a/machines", json={})
    assert len(seen) == 1 and clock.sleeps == []
    assert "timed out" in str(info.value) and "look before" in (info.value.hint or "")


def test_post_is_retried_after_429() -> None:
    """A POST answered 429 is retried: the server refused it before acting."""
    handler, seen = sequence(httpx.Response(429, headers={"retry-after": "1"}), httpx.Response(200, json={"id": "m1"}))
    api, clock = make_api(handler)
    assert api.get_json("/v1/apps/a/machines", method="POST", json={}) == {"id": "m1"}
    assert len(seen) == 2 and clock.sleeps == [1.0]


def test_post_is_retried_after_connect_error() -> None:
    """A POST that could not connect is retried: it never reached the server."""
    handler, seen = sequence(httpx.ConnectError("connection refused"), httpx.Response(200, json={"id": "m1"}))
    api, clock = make_api(handler)
    assert api.get_json("/v1/apps/a/machines", method="POST", json={}) == {"id": "m1"}
    assert len(seen) == 2 and len(clock.sleeps) == 1


def test_post_marked_idempotent_is_retried_after_500() -> None:
    """idempotent=True (e.g. a GraphQL query) makes a POST retry on 5xx like a GET."""
    handler, seen = sequence(httpx.Response(500), httpx.Response(200, json={"data": {}}))
    api, _ = make_api(handler, platform="fly-graphql")
    assert api.get_json("/graphql", method="POST", json={"query": "{}"}, idempotent=True) == {"data": {}}
    assert len(seen) == 2


def test_get_timeouts_are_retried_then_raise_transport_error() -> None:
    """A GET that keeps timing out is retried max_attempts times, then raises TransportError."""
    handler, seen = sequence(httpx.ReadTimeout("read timed out"))
    api, clock = make_api(handler, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(errors.TransportError) as info:
        api.request("GET", "/v1/apps/a/machines")
    assert len(seen) == 3 and len(clock.sleeps) == 2
    err = info.value
    assert err.platform == "fly-machines" and err.method == "GET" and err.path == "/v1/apps/a/machines"
    assert "timed out" in str(err)
    # The httpx exception holds the request and its credentials: it is not chained.
    assert err.__cause__ is None and err.__context__ is None


def test_connect_error_exhausted_raises_transport_error_with_hint() -> None:
    """A host that never accepts a connection ends in TransportError hinting at network/base URL."""
    handler, _ = sequence(httpx.ConnectError("[Errno 111] Connection refused"))
    api, _ = make_api(handler, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(errors.TransportError) as info:
        api.request("GET", "/v1/apps")
    assert "could not connect" in str(info.value) and "base URL" in (info.value.hint or "")


def test_undecodable_answer_is_not_retried() -> None:
    """A DecodingError (a broken Content-Encoding) raises TransportError at once: retrying will not fix it."""
    handler, seen = sequence(httpx.DecodingError("bad gzip"), httpx.Response(200))
    api, clock = make_api(handler)
    with pytest.raises(errors.TransportError, match="DecodingError"):
        api.request("GET", "/v1/apps")
    assert len(seen) == 1 and clock.sleeps == []


def test_statuses_in_ok_are_returned_without_retry() -> None:
    """A status listed in ok (a wait call's 408) is returned to the caller, not retried or raised."""
    handler, seen = sequence(httpx.Response(408), httpx.Response(200))
    api, clock = make_api(handler)
    response = api.request("GET", "/v1/apps/a/machines/m/wait", params={"state": "started"}, ok=(408,))
    assert response.status_code == 408 and len(seen) == 1 and clock.sleeps == []


def transport_client(handler: Handler, clock: FakeClock) -> httpx.Client:
    inner = httpx.MockTransport(handler)
    transport = RetryTransport(inner, RetryPolicy(), clock, random.Random(3))
    return httpx.Client(base_url="https://ref.supabase.test", transport=transport)


def test_retry_transport_retries_a_get_for_clients_api_does_not_wrap() -> None:
    """RetryTransport gives a bare httpx.Client (supabase-py's) the same retries on 503 and the same clock."""
    clock = FakeClock()
    handler, seen = sequence(httpx.Response(503, headers={"retry-after": "2"}), httpx.Response(200, json=[]))
    response = transport_client(handler, clock).get("/rest/v1/machines")
    assert response.status_code == 200 and len(seen) == 2 and clock.sleeps == [2.0]


def test_retry_transport_does_not_repeat_a_post_after_500() -> None:
    """RetryTransport returns a POST's 500 as is, after one attempt, for the caller to judge."""
    clock = FakeClock()
    handler, seen = sequence(httpx.Response(500), httpx.Response(201))
    response = transport_client(handler, clock).post("/rest/v1/machines", json={"id": 1})
    assert response.status_code == 500 and len(seen) == 1 and clock.sleeps == []


def test_retry_transport_reraises_the_last_transport_error() -> None:
    """RetryTransport retries a GET's connect errors, then re-raises the httpx exception."""
    clock = FakeClock()
    handler, seen = sequence(httpx.ConnectError("refused"))
    with pytest.raises(httpx.ConnectError):
        transport_client(handler, clock).get("/rest/v1/machines")
    assert len(seen) == 4 and len(clock.sleeps) == 3


# --------------------------------------------------------------------------- bodies and typed errors


def test_get_json_returns_the_parsed_body() -> None:
    """get_json returns the decoded JSON of a 2xx answer."""
    handler, _ = sequence(httpx.Response(200, json=[{"id": "m1"}]))
    api, _ = make_api(handler)
    assert api.get_json("/v1/apps/a/machines") == [{"id": "m1"}]


def test_malformed_json_raises_transport_error() -> None:
    """A 200 whose body is not JSON raises TransportError('malformed response body ...')."""
    handler, _ = sequence(httpx.Response(200, text="<html>captive portal</html>"))
    api, _ = make_api(handler)
    with pytest.raises(errors.TransportError, match="malformed response body") as info:
        api.get_json("/v1/apps/a/machines")
    assert "captive portal" in str(info.value)
    # A JSONDecodeError holds the whole body (.doc): it is not chained either.
    assert info.value.__context__ is None


@pytest.mark.parametrize(
    ("status", "cls", "hint_part"),
    [
        (401, errors.AuthError, "FLY_API_TOKEN"),
        (403, errors.AuthError, "not allowed"),
        (404, errors.NotFoundError, "include_deleted"),
        (429, errors.RateLimitedError, "rate limited; wait and retry"),
        (422, errors.ApiError, "rejected"),
        (400, errors.ApiError, "rejected"),
    ],
)
def test_each_error_status_raises_its_typed_error(status: int, cls: type[errors.ApiError], hint_part: str) -> None:
    """401/403 AuthError, 404 NotFoundError, 429 RateLimitedError, other 4xx ApiError, each with a hint."""
    handler, _ = sequence(httpx.Response(status, json={"error": "nope"}))
    api, _ = make_api(handler)
    with pytest.raises(errors.ApiError) as info:
        api.request("GET", "/v1/apps/a/machines/m1")
    assert type(info.value) is cls
    assert info.value.status == status
    assert hint_part in (info.value.hint or "")
    assert "nope" in str(info.value)


def test_rate_limited_error_comes_after_every_retry() -> None:
    """A persistent 429 is retried max_rate_limited times (not max_attempts) before RateLimitedError is raised."""
    handler, seen = sequence(httpx.Response(429))
    api, clock = make_api(handler, retry=RetryPolicy(max_attempts=2, max_rate_limited=5))
    with pytest.raises(errors.RateLimitedError) as info:
        api.request("GET", "/v1/apps")
    assert len(seen) == 5 and len(clock.sleeps) == 4
    assert "after 5 attempts" in str(info.value)


def test_supabase_401_hint_names_the_supabase_variables() -> None:
    """A 401 from the Management API hints at SUPABASE_ACCESS_TOKEN, not the Fly token."""
    handler, _ = sequence(httpx.Response(401, json={"message": "Unauthorized"}))
    api, _ = make_api(handler, platform="supabase-mgmt")
    with pytest.raises(errors.AuthError) as info:
        api.request("GET", "/v1/projects/abc/secrets")
    assert "SUPABASE_ACCESS_TOKEN" in (info.value.hint or "")


def observed_case(status: int, contains: str) -> dict:
    path = REFERENCE / "machines-api-error-bodies.observed.json"
    if not path.exists():
        pytest.skip(f"reference file not beside the repo: {path}")
    cases = json.loads(path.read_text())["cases"]
    return next(
        c for c in cases if c["status"] == status and contains in json.dumps(c.get("body") or c.get("body_text"))
    )


@pytest.mark.parametrize("wording", ["deployment-01K6GSC1H9Z5M48PZDQMRD7NZX", "request failed: not found"])
def test_manifest_unknown_in_a_400_body_raises_manifest_unknown_error(wording: str) -> None:
    """The Machines API's 400 'failed to get manifest …: MANIFEST_UNKNOWN' becomes ManifestUnknownError."""
    case = observed_case(400, wording)
    handler, _ = sequence(httpx.Response(400, json=case["body"]))
    api, _ = make_api(handler)
    with pytest.raises(errors.ManifestUnknownError) as info:
        api.request("POST", "/v1/apps/vyx-app/machines", json={"config": {"image": "x"}})
    err = info.value
    assert err.status == 400 and err.code == "MANIFEST_UNKNOWN"
    assert "failed to get manifest" in str(err)
    assert "registry" in (err.hint or "")


def test_manifest_unknown_from_the_registry_carries_its_code() -> None:
    """A registry 404 with errors[0].code MANIFEST_UNKNOWN becomes ManifestUnknownError, not NotFoundError."""
    body = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": "unknown tag=abc123"}]}
    handler, _ = sequence(httpx.Response(404, json=body))
    api, _ = make_api(handler, platform="fly-registry")
    with pytest.raises(errors.ManifestUnknownError) as info:
        api.request("GET", "/v2/vyx-app/manifests/abc123")
    assert info.value.code == "MANIFEST_UNKNOWN" and "unknown tag=abc123" in str(info.value)


def test_fly_401_reference_body_gives_auth_error_with_request_id() -> None:
    """The observed Fly 401 body and headers give an AuthError with the message and fly-request-id."""
    case = observed_case(401, "token validation error")
    handler, _ = sequence(httpx.Response(401, headers=case["headers"], json=case["body"]))
    api, _ = make_api(handler)
    with pytest.raises(errors.AuthError) as info:
        api.request("GET", "/v1/apps/vyx-app/machines")
    assert info.value.request_id == case["headers"]["fly-request-id"]
    assert "token validation error" in str(info.value)


def test_plain_text_404_says_no_such_route() -> None:
    """Go's plain-text '404 page not found' is reported as a route that did not match, not a missing resource."""
    handler, _ = sequence(httpx.Response(404, text="404 page not found\n", headers={"content-type": "text/plain"}))
    api, _ = make_api(handler)
    with pytest.raises(errors.NotFoundError) as info:
        api.request("GET", "/v1/apps/vyx-app/machines/registry.fly.io/vyx-app:stub")
    message = str(info.value)
    assert "no such route" in message and "did not match any API route" in message
    assert info.value.body_excerpt == "404 page not found"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"code": "PGRST116", "message": "JSON object requested, multiple (or no) rows returned"}, "PGRST116"),
        ({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}, "NAME_UNKNOWN"),
        ({"error": "no capacity", "status": "insufficient_capacity"}, "insufficient_capacity"),
        ({"error": "plain"}, None),
    ],
)
def test_error_code_is_parsed_from_each_platforms_body(body: dict, code: str | None) -> None:
    """The code comes from PostgREST `code`, registry `errors[0].code` or Fly `status`."""
    handler, _ = sequence(httpx.Response(409, json=body))
    api, _ = make_api(handler)
    with pytest.raises(errors.ApiError) as info:
        api.request("GET", "/x")
    assert info.value.code == code


def test_error_path_keeps_query_keys_but_not_values() -> None:
    """The error's path shows which query keys were sent, never their values."""
    handler, _ = sequence(httpx.Response(400, json={"message": "bad"}))
    api, _ = make_api(handler, platform="supabase-rest")
    with pytest.raises(errors.ApiError) as info:
        api.request("GET", "/rest/v1/machines", params={"select": "*", "apikey": "value-that-is-secret-ish"})
    err = info.value
    assert err.path.startswith("/rest/v1/machines?")
    assert "select" in err.path and "apikey" in err.path
    assert "value-that-is-secret-ish" not in str(err) and "*" not in err.path


def test_body_excerpt_is_at_most_300_characters() -> None:
    """A long error body is cut to a 300-character excerpt."""
    handler, _ = sequence(httpx.Response(400, json={"error": "x" * 5000}))
    api, _ = make_api(handler)
    with pytest.raises(errors.ApiError) as info:
        api.request("GET", "/x")
    assert info.value.body_excerpt is not None and len(info.value.body_excerpt) <= 300
    assert len(str(info.value)) < 1000


# --------------------------------------------------------------------------- no token leaks


def echoing(token: str, status: int) -> Handler:
    """A server that echoes the token (and the Authorization header) in its body and headers."""

    def handler(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        body = {"error": f"bad token {token} (sent {auth})", "message": f"auth={auth}", "code": token}
        return httpx.Response(status, headers={"x-request-id": token, "x-echo": auth}, json=body)

    return handler


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500])
@pytest.mark.parametrize("factory", [bearer, fly, registry_basic, supabase_key])
def test_token_never_appears_in_errors(
    status: int, factory: Callable[[str], httpx.Auth], caplog: pytest.LogCaptureFixture
) -> None:
    """An error built from a response echoing the token has it in none of str/repr/args/fields or the logs."""
    token = f"unshaped-echo-{factory.__name__}-{status}-secret"
    caplog.set_level(logging.DEBUG)
    api, _ = make_api(echoing(token, status), auth=factory(token), retry=RetryPolicy(max_attempts=2))
    with pytest.raises(errors.ApiError) as info:
        api.request("GET", "/v1/apps/a")
    assert leaked(token, info.value) == []
    assert "[REDACTED]" in str(info.value)
    assert token not in caplog.text


def test_registry_basic_credential_is_masked_in_its_base64_form() -> None:
    """A registry answer echoing the Basic credential (base64 of x:token) has it masked too."""
    token = "unshaped-registry-token-77aa11"
    encoded = base64.b64encode(f"x:{token}".encode()).decode()
    handler, _ = sequence(httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED", "message": f"bad {encoded}"}]}))
    api, _ = make_api(handler, platform="fly-registry", auth=registry_basic(token))
    with pytest.raises(errors.AuthError) as info:
        api.request("GET", "/v2/vyx-app/manifests/latest")
    assert leaked(encoded, info.value) == []


def test_macaroon_bundle_parts_are_masked_one_by_one() -> None:
    """Each comma-separated part of a Fly token bundle is masked even when a server echoes one part alone."""
    second = "unshaped-discharge-part-4b2c9d"
    handler, _ = sequence(httpx.Response(401, json={"error": f"bad discharge {second}"}))
    api, _ = make_api(handler, auth=fly(f"{MACAROON},{second}"))
    with pytest.raises(errors.AuthError) as info:
        api.request("GET", "/v1/apps")
    assert leaked(second, info.value) == []


def test_token_cut_at_the_excerpt_limit_does_not_leak_its_head() -> None:
    """A token straddling the 300-character cut is masked before cutting, so no prefix of it survives."""
    token = "unshaped-straddling-token-9f8e7d6c5b4a"
    body = "e" * 280 + token + "tail"  # an excerpt cut first would keep "unshaped-straddling"
    handler, _ = sequence(httpx.Response(400, text=body))
    api, _ = make_api(handler, auth=bearer(token))
    with pytest.raises(errors.ApiError) as info:
        api.request("GET", "/x")
    assert "unshaped-str" not in str(info.value) and "unshaped-str" not in (info.value.body_excerpt or "")


def test_transport_error_never_carries_the_token(caplog: pytest.LogCaptureFixture) -> None:
    """A transport failure whose message echoes the token yields a TransportError and logs without it."""
    token = "unshaped-transport-secret-31337"
    caplog.set_level(logging.DEBUG)
    handler, _ = sequence(httpx.ReadError(f"connection reset while sending {token}"))
    api, _ = make_api(handler, auth=supabase_key(token), platform="supabase-rest", retry=RetryPolicy(max_attempts=2))
    with pytest.raises(errors.TransportError) as info:
        api.request("GET", "/rest/v1/machines")
    assert leaked(token, info.value) == []
    assert token not in caplog.text


# --------------------------------------------------------------------------- logging


def test_each_attempt_is_logged_at_debug_without_headers(caplog: pytest.LogCaptureFixture) -> None:
    """vyxops.fetch.http logs every attempt (platform, method, path, status, attempt) at DEBUG and no headers."""
    caplog.set_level(logging.DEBUG, logger="vyxops.fetch.http")
    handler, _ = sequence(httpx.Response(503), httpx.Response(200))
    api, _ = make_api(handler, auth=bearer(PLAIN_TOKEN))
    api.request("GET", "/v1/apps/a/machines", params={"include_deleted": "true"})
    lines = [r.getMessage() for r in caplog.records if r.name == "vyxops.fetch.http"]
    attempts = [line for line in lines if "attempt" in line]
    assert len(attempts) == 2
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "vyxops.fetch.http")
    assert "fly-machines GET /v1/apps/a/machines?include_deleted=… -> 503 attempt 1/4" in attempts[0]
    assert "-> 200 attempt 2/4" in attempts[1]
    assert PLAIN_TOKEN not in caplog.text and "authorization" not in caplog.text.lower()


def test_api_repr_shows_platform_and_base_url_only() -> None:
    """repr(Api) names the platform and base URL and never the credential."""
    handler, _ = sequence(httpx.Response(200))
    api, _ = make_api(handler, auth=bearer(PLAIN_TOKEN))
    assert repr(api) == "Api(platform='fly-machines', base_url='https://api.example.test')"


def test_error_path_lists_each_query_key_once_decoded_whatever_its_values_hold() -> None:
    """Keys repeated, keys needing encoding, values holding '=' and '&': each key once, no value."""
    handler, _ = sequence(httpx.Response(400, json={"message": "bad"}))
    api, _ = make_api(handler, platform="supabase-mgmt")
    params = [("sql", "select * from t where a='x&y=z'"), ("sql", "again"), ("a b", "v=1")]
    with pytest.raises(errors.ApiError) as info:
        api.request("GET", "/v1/logs", params=params)
    assert info.value.path == "/v1/logs?sql=…&a b=…"


def test_the_retry_layer_put_under_a_client_is_the_one_httpx_sends_through() -> None:
    """vyxops.fetch.http.with_retries reaches into httpx's private ``Client._transport`` (httpx has no public setter):
    if httpx renamed or stopped sending through it, the layer would be bypassed silently. This fails then."""
    from vyxops.fetch.http import retry_layer, with_retries

    seen: list[str] = []
    client = httpx.Client(base_url="https://api.example", transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    layer = with_retries(client, "test")
    layer.watch(lambda attempt: seen.append(attempt.outcome))
    assert retry_layer(client) is layer and with_retries(client, "test") is layer
    assert client.get("/v1/x").status_code == 200
    assert seen == ["200"]

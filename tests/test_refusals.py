"""What a failed invocation's logs say Fly answered, read from statuses and bodies whatever the wording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vyxops.core.refusals import fly_status_in, json_objects_in, read_refusal

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
# Fly's own bodies (reference/fly/machines-api-error-bodies.observed.json, fly-go flaps_error.go, Kilo-Org/cloud PRs
# #412 and #787, flyctl's ensure_builder_test.go), wrapped the ways functions of different teams log them.
TOKEN_401 = '{"error":"Authenticate: token validation error"}'
CAPACITY_412 = (
    '{"error":"insufficient resources available to fulfill request: could not reserve resource for machine: '
    'insufficient memory available to fulfill request","status":"insufficient_capacity"}'
)
MANIFEST_400 = '{"error": "failed to get manifest registry.fly.io/vyx-app:stub2: MANIFEST_UNKNOWN"}'
MANIFEST_400_NEW = (
    "failed to get manifest registry.fly.io/ampbase-foo:abc123: request failed: not found [http 404]: "
    '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"unknown tag=abc123"}]}'
)

CASES = {
    "seed wording, missing tag": (f"Fly API error (400): {MANIFEST_400}", "image", 400),
    "newer manifest body, the registry's own 404 inside": (f"fly said 400: {MANIFEST_400_NEW}", "image", 400),
    "manifest body with no status at all": (MANIFEST_400_NEW, "image", 404),
    "revoked token, one team's words": (f"fly said 401: {TOKEN_401}", "token", 401),
    "revoked token, another team's words": (f"allocation failed in fra: fly 401 {TOKEN_401}", "token", 401),
    "a token without access (403)": ('Error: Fly API 403: {"error":"unauthorized"}', "token", 403),
    "an app the token cannot see (404)": ('create failed, status 404: {"error":"app not found"}', "token", 404),
    "rate limited": ('allocation failed in ams: fly 429 {"error":"rate limit exceeded"}', "rate_limit", 429),
    "no capacity, fly's status code in the body": (f"fly said 412: {CAPACITY_412}", "capacity", 412),
    "no capacity, body only": (f"create refused {CAPACITY_412}", "capacity", None),
    "no capacity, 409 insufficient memory (Kilo-Org PR #412)": (
        "update failed (409): aborted: could not reserve resource for machine: insufficient memory",
        "capacity",
        409,
    ),
    "no capacity, 400 no capacity (Kilo-Org PR #787)": (
        'createVolume failed (400): {"error":"no capacity"}',
        "capacity",
        400,
    ),
    "the reference sample: 422 image not found": (
        "Error: Fly API 422: image not found\n    at x (index.ts:1)",
        "config",
        422,
    ),
    "a Fly 5xx": ('fly said 503: {"error":"service unavailable"}', "fly_error", 503),
    "a JSON body that states its status as a number": ('{"status": 429, "error": "slow down"}', "rate_limit", 429),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_refusal_is_classified_from_fly_status_and_body_not_from_one_sentence(name: str) -> None:
    """Each refusal class is read from the status and body Fly sends, however the function wraps them."""
    text, kind, status = CASES[name]
    got = read_refusal(text)
    assert (got.kind, got.status) == (kind, status)


def test_lines_that_say_nothing_fly_answered_are_not_refusals() -> None:
    """Boot lines, a user id with digits, a created line and a plain 'error' word carry no refusal."""
    for text in (
        "booted (time: 31ms)",
        "Provisioning machine for user u-429 in sjc with image registry.fly.io/a:b",
        "spawned vm 5683732efe3208 from registry.fly.io/a:b",
        "Missing user_id in request body",
        "error: the request had no owner",
    ):
        assert read_refusal(text).kind is None, text


def test_the_body_error_and_status_code_are_kept() -> None:
    """The JSON body's `error` and its `status` code (insufficient_capacity) travel with the class."""
    got = read_refusal(f"fly said 412: {CAPACITY_412}")
    assert got.code == "insufficient_capacity" and got.error is not None and "could not reserve" in got.error
    assert json_objects_in('a {"x": 1} b {not json} c {"y": {"z": 2}}') == [{"x": 1}, {"y": {"z": 2}}]
    assert fly_status_in("took 4123 ms; status_code=503") == 503


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="the shared reference files are not beside the checkout")
def test_the_observed_401_body_of_the_reference_is_a_token_refusal() -> None:
    """The 401 body Fly was observed to send (reference file) reads as a refused token."""
    cases = json.loads((REFERENCE / "fly" / "machines-api-error-bodies.observed.json").read_text())["cases"]
    body = next(c for c in cases if c["status"] == 401)["body"]
    assert read_refusal(f"create failed: {c_status(401)} {json.dumps(body)}").kind == "token"


def c_status(status: int) -> str:
    return f"HTTP {status}"

"""Fly's refusals of a machine create beyond a missing image: a revoked token, a rate limit, no capacity.

Three scenario steps (SPEC.md "Any team's pipeline", third round) put them in effect:
``revoke_fly_token {status: 401|403}`` (only the provisioning function's token, the secret the
pipeline names in ``fly_token_secret``; a later ``set_secret`` of that name restores it),
``fly_rate_limit {until?}`` (every create on the function's app: the Machines API limits per
action per app, PLATFORM.md, so the function's creates, ``create_machine`` steps, release
commands and creates through the served Machines API on that app all get 429) and
``fly_capacity {region, until?}`` (every create in the region: the function's, ``create_machine``
steps and creates through the served Machines API, probes and canaries included). ``until`` may
lie after the scenario's ``now``: the virtual clock then decides when the refusal ends; without
it, it never does.

They live in ``state["fly"]["refusals"]``, never served::

    {"token": {"status": 401}, "rate_limit": {"app": str, "until_ms": int | None},
     "capacity": {region: {"until_ms": int | None}}}

When several hold, a create is refused for the first in the order the platform checks
(SPEC.md): token (401/403), rate limit (429), image (400 MANIFEST_UNKNOWN), placement
(capacity). The token is the function's alone (:func:`function_refusal`); the rest hold for
every create and are checked in :func:`vyxops_sandbox.machines.create` (:func:`rate_refusal`,
:func:`capacity_refusal`). A refused create makes no machine.

The bodies, and where they come from (fly-go @ 22d6e518, flyctl @ ad0172fa):
- 401 ``{"error":"Authenticate: token validation error"}``: observed from the Machines API
  (reference/fly/machines-api-error-bodies.observed.json, github.com/clutterstack/clutterfly,
  captured 2025-03-07).
- 403: a token without access to the app. fly-go ``flaps/flaps_apps.go`` ``AppNameAvailable``
  reads a 403 as "the app exists, in an org we do not have access to"; the body is not
  documented anywhere we could find, so the plain ``{"error": …}`` below is UNVERIFIED.
- 429: flyctl retries it (``internal/flapsutil/retry.go`` ``IsTransientFlapsError``); neither the
  body nor a Retry-After header is documented (the reference file says so): the plain
  ``{"error": …}`` below is UNVERIFIED, the same one the sandbox's own rate buckets answer.
- capacity: the Machines API's ErrorResponse carries ``status``, whose enum
  (``main.statusCode``) is ``unknown | insufficient_capacity | volume_placement_capacity |
  name_taken`` (machines OpenAPI; fly-go ``flaps/flaps_error.go`` ``regionOOCapacity =
  "insufficient_capacity"``, whose Suggestion is "Try choosing a different region for machine
  creation"). A refused create was observed as HTTP 412 "insufficient resources" (Kilo-Org/cloud
  PR #412, which also saw 409 "insufficient memory" and 400 ``{"error":"no capacity"}``, PR
  #787); flyctl quotes the platform's text ``could not reserve resource for machine:
  insufficient memory available to fulfill request`` (``internal/build/imgsrc/
  ensure_builder_test.go``, matched in ``ensure_builder.go`` and ``deploy/
  machines_deploymachinesapp.go``). The model joins them: 412 with that text and
  ``status: insufficient_capacity``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vyxops_sandbox.world import World

UNAUTHENTICATED = {"error": "Authenticate: token validation error"}
FORBIDDEN = {"error": "unauthorized: this token has no access to the app"}  # UNVERIFIED wording (see above)
#: UNVERIFIED wording (see above); also the body of the sandbox's own rate buckets (fly_api) and of
#: injected 429 faults (router): one home for the text.
RATE_LIMITED = {"error": "rate limit exceeded"}
INSUFFICIENT_CAPACITY = {
    "error": "insufficient resources available to fulfill request: could not reserve resource for machine: "
    "insufficient memory available to fulfill request",
    "status": "insufficient_capacity",
}
CAPACITY_STATUS = 412
#: The sandbox's answer for an unknown app, on the Machines API and Fly's REST API (fly_api) and to the function.
APP_NOT_FOUND = {"error": "app not found"}
TOKEN_STATUSES = (401, 403)


class CreateRefused(Exception):
    """The Machines API refused a create (not for its image): ``status`` and ``body`` as Fly answers; no machine."""

    def __init__(self, status: int, body: dict[str, str]) -> None:
        self.status = status
        self.body = dict(body)
        super().__init__(f"Fly API {status}: {body.get('error', '')}")


def _state(world: World) -> dict[str, Any]:
    return world.state["fly"].setdefault("refusals", {})


def _in_effect(entry: dict[str, Any] | None, now_ms: int) -> bool:
    if entry is None:
        return False
    until = entry.get("until_ms")
    return until is None or now_ms < until


def revoke_token(world: World, status: int) -> None:
    """The function's Fly token is refused from now on with ``status`` (401 revoked/expired, 403 no access)."""
    _state(world)["token"] = {"status": status}
    world.touch()


def restore_token(world: World) -> None:
    """A new value of the function's token secret: the Machines API takes the function's calls again."""
    if _state(world).pop("token", None) is not None:
        world.touch()


def limit_rate(world: World, app: str, until_ms: int | None) -> None:
    """Every create on ``app`` gets 429 until ``until_ms`` (None: for good): Fly limits per action per app."""
    _state(world)["rate_limit"] = {"app": app, "until_ms": until_ms}
    world.touch()


def limit_capacity(world: World, region: str, until_ms: int | None) -> None:
    """Every create in ``region`` is refused for capacity until ``until_ms`` (None: for good)."""
    _state(world).setdefault("capacity", {})[region] = {"until_ms": until_ms}
    world.touch()


def capacity_refusal(world: World, region: str) -> CreateRefused | None:
    """The refusal of a create in ``region`` for lack of capacity, when one is in effect now."""
    if _in_effect(_state(world).get("capacity", {}).get(region), world.now_ms):
        return CreateRefused(CAPACITY_STATUS, INSUFFICIENT_CAPACITY)
    return None


def rate_refusal(world: World, app: str) -> CreateRefused | None:
    """The refusal of a create on ``app`` while a rate limit holds there, whoever asks (function, API, step)."""
    limit = _state(world).get("rate_limit")
    if limit is not None and limit.get("app", app) == app and _in_effect(limit, world.now_ms):
        return CreateRefused(429, RATE_LIMITED)
    return None


def function_refusal(world: World, token_set: bool) -> CreateRefused | None:
    """What the Machines API answers the provisioning function's create for its token, before anything else.

    ``token_set``: whether the function has a token to send (its secret is set, or the
    scenario does not model the token); without one Fly answers 401 before it looks at what a
    token could reach, so this comes before a revocation's 403. The rate limit is not the function's alone: it is
    checked for every create on the app, in :func:`vyxops_sandbox.machines.create`.
    """
    if not token_set:
        # `Bearer undefined`: no token is not a valid token, whatever the revoked one used to answer.
        return CreateRefused(401, UNAUTHENTICATED)
    token = _state(world).get("token")
    if token is not None:
        return CreateRefused(token["status"], UNAUTHENTICATED if token["status"] == 401 else FORBIDDEN)
    return None

"""The platforms' vocabulary, written once: states, exit events, process groups, releases, regions.

Every rule here is a fact about Fly.io, Supabase or the provisioning function
(PLATFORM.md, SPEC.md, reference/fly/machine-states-and-events.json) that more
than one module needs. Detectors, fixes, frames, the timeline and the sandbox
import it from here instead of restating it. What a team names its own way (its
function, secret, table, status words) is not here: that is the pipeline contract
(:mod:`vyxops.core.contract`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------- rate limits


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``per_s`` requests a second sustained, up to ``burst`` at once after a quiet spell."""

    per_s: int
    burst: int

    def least_seconds(self, requests: int) -> float:
        """The fewest seconds ``requests`` can take under this limit: those past the burst, at the rate."""
        return max(0.0, (requests - self.burst) / self.per_s)


#: Fly Machines API, per action per machine or app (PLATFORM.md; Fly's docs, "Working with the
#: Machines API" → Rate Limits): every action but get machine …
FLY_ACTION_LIMIT = RateLimit(per_s=1, burst=3)
#: … and get machine, per machine.
FLY_GET_MACHINE_LIMIT = RateLimit(per_s=5, burst=10)


@dataclass(frozen=True)
class FixedWindow:
    """A fixed window: ``requests`` per window of ``seconds``, opened by the first request; past them,
    every request is refused until the window ends."""

    requests: int
    seconds: int

    def least_seconds(self, requests: int) -> float:
        """The fewest seconds ``requests`` can take: one window each ``self.requests``, the last one not waited out."""
        return float(max(0, -(-requests // self.requests) - 1) * self.seconds)


#: Supabase Management API: requests a minute per endpoint (PLATFORM.md, api_rate_limits.mdx);
#: every answer reports the window in ``X-RateLimit-Limit/-Remaining/-Reset``.
SUPABASE_MGMT_PER_MINUTE = 120
#: … as a fixed window per user (all of a user's access tokens share it), per project or organization,
#: per endpoint: "when you exceed this rate limit, all further API calls return a 429 Too Many Requests
#: response for the remainder of the minute" (supabase/supabase apps/docs/content/_partials/api_rate_limits.mdx).
#: ``X-RateLimit-Reset`` is "the number of seconds remaining until your rate limit resets" (same page),
#: not an epoch time.
SUPABASE_MGMT_WINDOW = FixedWindow(requests=SUPABASE_MGMT_PER_MINUTE, seconds=60)


# --------------------------------------------------------------------------- machine states

#: A machine in one of these states no longer exists (terminal states).
GONE_STATES = frozenset({"destroyed", "replaced", "migrated"})
#: States in which nothing runs: a DB row saying the session starts or runs, for such a machine, can only be wrong.
NOT_RUNNING_STATES = GONE_STATES | {"stopped", "failed", "launch_failed", "destroying", "suspended"}
#: fly-go's IsActive: anything but destroyed/destroying.
INACTIVE_STATES = frozenset({"destroyed", "destroying"})
STARTED = "started"
#: Transient states of a machine on its way up (reference/fly/machine-states-and-events.json).
LAUNCHING_STATES = ("created", "starting")
#: Event statuses that mean the machine never ran (a failed pull or launch).
LAUNCH_FAILED_STATUSES = frozenset({"launch_failed", "failed"})


def is_not_running(state: str | None) -> bool:
    """Whether nothing runs on a machine in ``state`` (None: not found)."""
    return state is None or state in NOT_RUNNING_STATES


# --------------------------------------------------------------------------- exit events


@dataclass(frozen=True)
class ExitInfo:
    """What an ``exit`` event says. fly-go's exit-event fields are ``omitempty``: a field the
    event leaves out is None here ("not reported"), never an invented 0/False."""

    exit_code: int | None
    oom_killed: bool | None
    requested_stop: bool | None
    # As sent: Unix ms in Fly's 2023 docs sample, RFC 3339 from fly-go (``time.Time``), and Go's zero
    # time ``0001-01-01T00:00:00Z`` when unset (no ``omitempty``): "not reported". Read it with
    # vyxops.core.timeutil (to_utc(value, FLY_EXITED_AT_UNIT)), which gives None for the zero time.
    exited_at: str | int | None
    restart_count: int | None


def read_exit_event(event: Mapping[str, Any]) -> ExitInfo | None:
    """The exit details of a machine event, or None when it carries none.

    Read from ``request.exit_event`` or fly-go's nested ``request.MonitorEvent.exit_event``
    (fly-go MachineRequest.GetExitCode); ``restart_count`` sits beside ``exit_event``.
    """
    request = event.get("request") or {}
    if not isinstance(request, Mapping):
        return None
    monitor = request.get("MonitorEvent") or {}
    x = request.get("exit_event") or (monitor.get("exit_event") if isinstance(monitor, Mapping) else None)
    restart = request.get("restart_count")
    if not isinstance(x, Mapping):
        if event.get("type") == "exit":
            return ExitInfo(None, None, None, None, _int(restart))
        return None
    return ExitInfo(
        exit_code=_int(x.get("exit_code")),
        oom_killed=_bool(x.get("oom_killed")),
        requested_stop=_bool(x.get("requested_stop")),
        exited_at=x.get("exited_at"),
        restart_count=_int(restart),
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


#: The exit code Linux reports for a process killed by SIGKILL, which the OOM killer sends.
OOM_EXIT_CODE = 137


def describe_exit(code: int | None, oom_killed: bool | None) -> str:
    """How a person reads an exit: "exited with code 1", "was killed for memory (…)", "exit code not reported"."""
    if oom_killed:
        return f"was killed for memory (oom_killed, exit code {OOM_EXIT_CODE if code is None else code})"
    if code is None:
        return "exited (exit code not reported: fly-go leaves a 0 out)"
    return f"exited with code {code}"


# --------------------------------------------------------------------------- who made a machine

#: fly-go's metadata key for a machine's process group, and the groups flyctl uses for its own machines.
PROCESS_GROUP_KEY = "fly_process_group"
RELEASE_COMMAND_GROUP = "fly_app_release_command"
CONSOLE_GROUP = "fly_app_console"
TEST_MACHINE_GROUP = "fly_app_test_machine_command"
#: Machines flyctl makes for itself: they exit and are destroyed by design (PLATFORM.md).
INTERNAL_PROCESS_GROUPS = frozenset({RELEASE_COMMAND_GROUP, CONSOLE_GROUP, TEST_MACHINE_GROUP})
#: The user id vyxops's own provisioning canaries carry (VERIFY_PROVISIONING, --probe).
CANARY_USER_PREFIX = "vyxops-verify-"


def machine_origin(process_group: str | None, user_id: str | None, has_row: bool) -> str:
    """Who made a machine: ``internal`` (flyctl's own groups), ``canary``, ``user`` (provisioned), ``other``."""
    if process_group in INTERNAL_PROCESS_GROUPS:
        return "internal"
    if user_id and user_id.startswith(CANARY_USER_PREFIX):
        return "canary"
    if user_id or has_row:
        return "user"
    return "other"


# --------------------------------------------------------------------------- Fly app logs
# GET /api/v1/apps/{app}/logs (superfly/docs monitoring/logs-api-options.mdx): "By default, the most recent
# 100 logs from the last 24 hours are returned"; ``next_token`` is "a nanosecond Unix timestamp … Returns logs
# after this time, used either as a paging cursor or to backfill from a specific moment"; the API holds
# "historical logs going back to the current retention window (about 7 days)".

FLY_LOG_PAGE = 100  # lines a page holds
FLY_LOG_DEFAULT_REACH_NS = 24 * 3600 * 10**9  # the first page without next_token: lines of the last 24 h
FLY_LOG_RETENTION_NS = 7 * 24 * 3600 * 10**9  # about 7 days


# --------------------------------------------------------------------------- image references and regions

#: An image reference in free text (function logs, Fly logs).
IMAGE_IN_TEXT = re.compile(r"registry\.fly\.io/[a-z0-9._\-/]+(?::[A-Za-z0-9_.\-]+|@sha256:[0-9a-f]{64})")
#: Fly's regions (fly.io/docs/reference/regions, `fly platform regions`): a word of the logs that is one
#: of these names the region a request was for.
FLY_REGIONS = frozenset(
    "ams arn atl bog bom bos cdg den dfw ewr eze fra gdl gig gru hkg iad jnb lax lhr mad mia nrt ord otp phx "
    "qro scl sea sin sjc syd waw yul yyz".split()
)
#: A lower-case three-letter word standing alone (a region code is one; FLY_REGIONS says which).
REGION_WORD = re.compile(r"(?<![A-Za-z0-9_\-])([a-z]{3})(?![A-Za-z0-9_\-])")


def images_in(text: str | None) -> list[str]:
    """Every registry.fly.io image reference in ``text``, in order, once each."""
    return list(dict.fromkeys(IMAGE_IN_TEXT.findall(text or "")))


# --------------------------------------------------------------------------- releases

RELEASE_COMPLETE = "complete"
# Deploy statuses flyctl sets (internal/command/deploy/machines_deploymachinesapp.go): "running" when
# machines start to move, then "complete", "interrupted" (the deploy's context was cancelled: Ctrl-C, a
# CI job killed) or "failed". An interrupted rollout is not undone: flyctl only records the status.
RELEASE_INTERRUPTED = "interrupted"
RELEASE_FAILED = "failed"
# Where a releases frame's ``current`` came from (its ``attrs["current_from"]``).
CURRENT_FROM_PLATFORM = "platform"  # Fly's own word: GraphQL App.currentReleaseUnprocessed
CURRENT_INFERRED = "inferred"  # the fallback rule, current_release_index


def current_release_index(versions: list[int | None], statuses: list[str | None]) -> int | None:
    """Index of the inferred current release: the newest (highest version) with status ``complete``.

    Only a fallback: the platform names its current release (``currentReleaseUnprocessed``,
    :func:`chosen_current_index`), and after an interrupted deploy the two may differ.
    A release's ``imageRef`` may be null and several releases may carry one image
    (a rollback re-releases an old one); neither changes which release is current.
    """
    best: tuple[int, int] | None = None
    for i, (version, status) in enumerate(zip(versions, statuses)):
        if status == RELEASE_COMPLETE and version is not None and (best is None or version > best[0]):
            best = (int(version), i)
    return None if best is None else best[1]


def chosen_current_index(
    versions: list[int | None], statuses: list[str | None], platform_version: int | None
) -> tuple[int | None, str]:
    """The current release's index and where it came from: the platform's version when it named one
    among ``versions``, else :func:`current_release_index` (``CURRENT_INFERRED``)."""
    if platform_version is not None and platform_version in versions:
        return versions.index(platform_version), CURRENT_FROM_PLATFORM
    return current_release_index(versions, statuses), CURRENT_INFERRED


def current_said(current_from: str, note: str = "", *, short: bool = False) -> str:
    """How a report names where the current release came from (a releases frame's attrs)."""
    if current_from == CURRENT_FROM_PLATFORM:
        return "current per Fly" if short else "current per Fly (currentReleaseUnprocessed)"
    if short:
        return "current by inference"
    return "current by inference: the newest complete release" + (f"; Fly did not say ({note})" if note else "")


def current_image_index(
    versions: list[int | None], statuses: list[str | None], images: list[str | None], current: int | None = None
) -> int | None:
    """Index of the release whose image machines run now: the newest complete release that names one.

    A release without an imageRef (null in the API) keeps the image the release before it ran.
    With ``current``, the index of the platform's current release: that release when it names an
    image, else the newest complete release before it that does.
    """
    if current is not None and images[current]:
        return current
    upto = None if current is None else versions[current]
    best: tuple[int, int] | None = None
    for i, (version, status, image) in enumerate(zip(versions, statuses, images)):
        if status != RELEASE_COMPLETE or version is None or not image or (upto is not None and version > upto):
            continue
        if best is None or version > best[0]:
            best = (int(version), i)
    return None if best is None else best[1]


# --------------------------------------------------------------------------- dashboards


def dashboard_links(app: str, project_ref: str | None, function: str) -> dict[str, str]:
    """Where a person looks in the platforms' own dashboards for this app, project and provisioning function."""
    links = {
        "Fly machines": f"https://fly.io/apps/{app}/machines",
        "Fly releases": f"https://fly.io/apps/{app}/releases",
        "Fly logs": f"https://fly.io/apps/{app}/monitoring",
    }
    if project_ref:
        base = f"https://supabase.com/dashboard/project/{project_ref}"
        links |= {
            "Supabase function logs": f"{base}/functions/{function}/logs",
            "Supabase secrets": f"{base}/functions/secrets",
            "Supabase table editor": f"{base}/editor",
        }
    return links


# --------------------------------------------------------------------------- scoped access tokens

#: The fine-grained permission each Management API endpoint vyxops (and the Supabase CLI's incident commands)
#: calls needs: the operation's ``security: [{bearer: []}, {fga_permissions: [...]}]`` in
#: reference/supabase/management-api-openapi.json; the logs endpoint's from logs-endpoint-openapi-excerpt.json.
#: Keyed by (method, path template). A scoped access token without one is answered 403 (PLATFORM.md, third round).
SUPABASE_MGMT_PERMISSIONS: dict[tuple[str, str], str] = {
    ("GET", "/v1/projects/{ref}"): "project_admin_read",
    ("GET", "/v1/organizations/{slug}"): "organization_admin_read",
    ("GET", "/v1/projects/{ref}/secrets"): "edge_functions_secrets_read",
    ("POST", "/v1/projects/{ref}/secrets"): "edge_functions_secrets_write",
    ("DELETE", "/v1/projects/{ref}/secrets"): "edge_functions_secrets_write",
    ("GET", "/v1/projects/{ref}/functions"): "edge_functions_read",
    ("GET", "/v1/projects/{ref}/functions/{function_slug}"): "edge_functions_read",
    ("GET", "/v1/projects/{ref}/functions/{function_slug}/body"): "edge_functions_read",
    ("GET", "/v1/projects/{ref}/api-keys"): "api_gateway_keys_read",
    ("GET", "/v1/projects/{ref}/postgrest"): "data_api_config_read",
    ("GET", "/v1/projects/{ref}/analytics/endpoints/logs"): "analytics_logs_read",
}
#: Each permission in words (vyxops's, from the permission's id; the OAuth scope the spec pairs with it after).
SUPABASE_PERMISSION_WORDS: dict[str, str] = {
    "project_admin_read": "project admin read (OAuth scope projects:read)",
    "organization_admin_read": "organization admin read (OAuth scope organizations:read)",
    "edge_functions_secrets_read": "secrets read (OAuth scope secrets:read)",
    "edge_functions_secrets_write": "secrets write (OAuth scope secrets:write)",
    "edge_functions_read": "functions read (OAuth scope edge_functions:read)",
    "api_gateway_keys_read": "API keys read (OAuth scope secrets:read)",
    "data_api_config_read": "data API config read (OAuth scope rest:read)",
    "analytics_logs_read": "analytics logs read (OAuth scope analytics:read)",
}
#: The 403 body of an endpoint the token's permissions do not cover, as users quote it (supabase/cli #6392;
#: the spec only says "Forbidden action"). It names no permission: the endpoint does, through the table above.
SUPABASE_MISSING_PERMISSION_MESSAGE = "Your account does not have the necessary privileges to access this endpoint."

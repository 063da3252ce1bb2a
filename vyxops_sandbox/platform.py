"""How the platforms behave in one scenario (its ``platform:`` block), and the sandbox's credentials.

Every key is optional; the defaults are what the sandbox modelled before the block
existed, except where a model fact chose otherwise (each default says why)::

    platform:
      supabase:
        plan: pro                  # free | pro | team | enterprise: function logs kept 1 | 7 | 28 | 90 days
        secrets_updated_at: true   # false: the secrets list leaves `updated_at` out (the spec allows it)
        api_key: jwt               # jwt | sb_secret: the shape of the service and anon keys
        verify_jwt: true           # provision-machine's verify_jwt (reported by the functions list)
        empty_as_null: false       # true: the logs endpoint answers `result: null` for a query that matches nothing
        token_permissions: [edge_functions_read]  # a scoped access token: only these permissions (default: all)
        log_timestamps: text       # text | us | us_string: how a logs row's `timestamp` is written
      fly:
        token: legacy              # legacy | macaroon: the shape of the Fly token
        token_apps: [vyx-app]      # a token scoped to these apps (a deploy token); default: the whole org
        exit_events: full          # full | omitempty: omitempty leaves zero values out of exit events
        destroy_events: true       # false: destroyed machines carry no `destroy` event (state says it)
        destroyed_retention_h: 48  # destroyed machines vanish from the API this long after (default: kept)
        empty_as_null: false       # true: Go's nil slices and maps: `null` lists, `metadata: null`
        exited_at: reported        # reported | zero: exit events' `exited_at` is Go's zero time

Defaults and why:
- ``api_key: jwt`` (SPEC.md): the legacy service_role key is a JWT, which passes
  ``verify_jwt``; ``sb_secret`` is the new non-JWT key that it refuses.
- ``token: legacy``: a personal access token of the old shape (no prefix, no
  scheme) sent as ``Bearer``; its registry password is the token itself. The
  sandbox's first token (``fm2_…`` without a scheme) belonged to neither shape.
  ``macaroon`` is what ``fly tokens create`` prints: ``FlyV1 fm2_…,fm2_…``.
- ``exit_events: full``: Fly's own docs sample of an exit event lists the zero
  values (``oom_killed: false``, ``guest_exit_code: 0``); fly-go's
  ``MachineExitEvent`` marks them ``omitempty``, so a record that went through it
  leaves them out — that form is the opt-in.
- ``token_permissions`` (default: every permission, as a classic access token has): a
  scoped access token granted only the listed permissions (the ids in
  :data:`vyxops.core.facts.SUPABASE_MGMT_PERMISSIONS`); an endpoint needing another
  answers 403 (PLATFORM.md, "Scoped access tokens").
- ``destroy_events: true``: no official sample shows a ``destroy`` event
  (reference/fly/machine-states-and-events.json); the sandbox kept one so far.
- ``log_timestamps: text``: the logs endpoint's documented ``DateTime64`` rendering
  (``2026-06-22T09:34:06.215000``, µs, UTC, no zone). ``us`` writes Unix µs integers, as
  ``logs.all`` answered and Studio's own queries select (``toUnixTimestamp64Micro``);
  ``us_string`` the same digits as a string (ClickHouse may quote 64-bit integers).
  Studio reads all three (``Logs.utils.ts`` ``unixMicroToIsoTimestamp``, ``isUnixMicro``).
- ``exited_at: reported``: the exit time the sandbox knows. ``zero`` is Go's zero time
  ``0001-01-01T00:00:00Z``, what fly-go's ``MachineExitEvent.ExitedAt`` (``time.Time``,
  ``json:"exited_at"`` without ``omitempty``, machine_types.go) carries when unset.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from typing import Any

PLANS = ("free", "pro", "team", "enterprise")
# Supabase pricing page, "log retention" (PLATFORM.md): days each plan keeps function logs.
LOG_RETENTION_DAYS = {"free": 1, "pro": 7, "team": 28, "enterprise": 90}
API_KEYS = ("jwt", "sb_secret")
FLY_TOKENS = ("legacy", "macaroon")
EXIT_EVENTS = ("full", "omitempty")
LOG_TIMESTAMPS = ("text", "us", "us_string")
EXITED_AT = ("reported", "zero")


@dataclass(frozen=True)
class SupabasePlatform:
    plan: str = "pro"
    secrets_updated_at: bool = True
    api_key: str = "jwt"
    verify_jwt: bool = True
    empty_as_null: bool = False
    token_permissions: tuple[str, ...] | None = None  # None: every permission (a classic access token)
    log_timestamps: str = "text"

    @property
    def log_retention_days(self) -> int:
        return LOG_RETENTION_DAYS[self.plan]


@dataclass(frozen=True)
class FlyPlatform:
    token: str = "legacy"
    token_apps: tuple[str, ...] | None = None  # None: every app of the org
    exit_events: str = "full"
    destroy_events: bool = True
    destroyed_retention_h: float | None = None  # None: destroyed machines stay readable
    empty_as_null: bool = False
    exited_at: str = "reported"


@dataclass(frozen=True)
class Platform:
    """One scenario's platform settings, as validated by the scenario reader."""

    supabase: SupabasePlatform = field(default_factory=SupabasePlatform)
    fly: FlyPlatform = field(default_factory=FlyPlatform)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        apps = data["fly"]["token_apps"]
        data["fly"]["token_apps"] = list(apps) if apps is not None else None
        granted = data["supabase"]["token_permissions"]
        data["supabase"]["token_permissions"] = list(granted) if granted is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Platform:
        data = data or {}
        fly = dict(data.get("fly") or {})
        if fly.get("token_apps") is not None:
            fly["token_apps"] = tuple(fly["token_apps"])
        supabase = dict(data.get("supabase") or {})
        if supabase.get("token_permissions") is not None:
            supabase["token_permissions"] = tuple(supabase["token_permissions"])
        return cls(SupabasePlatform(**supabase), FlyPlatform(**fly))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jwt(secret: bytes, role: str) -> str:
    """A legacy Supabase API key: an HS256 JWT (header.payload.signature) whose payload names the role."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"iss": "supabase", "ref": "vyxops-sandbox", "role": role, "iat": 1700000000, "exp": 2015000000}
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64url(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def project_jwt_secret(scenario_name: str) -> bytes:
    """The project's JWT secret: it signs the legacy anon/service_role keys and its users' access tokens."""
    return f"vyxops-sandbox-jwt:{scenario_name}".encode()


def user_access_token(scenario_name: str) -> str:
    """A signed-in user's access token, as Supabase Auth issues it: an HS256 JWT the project signed, role
    ``authenticated``. A real one expires after an hour by default (``jwt_expiry`` 3600); the sandbox's lasts as
    long as its keys, so a test's token does not age out on the simulated clock."""
    secret = project_jwt_secret(scenario_name)
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {
        "iss": "supabase", "ref": "vyxops-sandbox", "aud": "authenticated", "role": "authenticated",
        "sub": "00000000-0000-4000-8000-0000000000a1", "iat": 1700000000, "exp": 2015000000,
    }  # fmt: skip
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64url(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def signed_by_project(token: str, scenario_name: str, now_s: float) -> bool:
    """Whether ``token`` is an HS256 JWT the project signed that has not expired at ``now_s``: what the
    Edge Functions' ``verify_jwt`` check accepts (Supabase docs, "Authorization headers": a user's JWT; the
    legacy anon and service_role keys are such JWTs too). An ``sb_secret_…`` key is no JWT at all."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    expected = hmac.new(project_jwt_secret(scenario_name), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256)
    if not hmac.compare_digest(_b64url(expected.digest()), parts[2]):
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return False
    exp = claims.get("exp")
    return isinstance(exp, (int, float)) and exp > now_s


def credentials_for(scenario_name: str, platform: Platform | None = None) -> dict[str, str]:
    """The sandbox's own credentials for a scenario: fixed per scenario and platform, never real.

    ``fly_api_token`` is what a user would put in ``FLY_API_TOKEN``: a legacy token, or
    ``FlyV1 <permission macaroon>,<discharge macaroon>``. ``fly_registry_password`` is
    what registry.fly.io takes as the Basic password: the token without ``FlyV1 ``.
    """
    p = platform or Platform()
    h = hashlib.sha256(f"vyxops-sandbox:{scenario_name}".encode()).hexdigest()
    if p.fly.token == "macaroon":
        bundle = f"fm2_lJPEsandbox{h[:40]},fm2_lJPEdischarge{h[40:64]}"
        fly_token, registry_password = f"FlyV1 {bundle}", bundle
    else:
        # Shape unverified: old personal tokens were a bare 43-character string.
        fly_token = registry_password = f"sbx{h[:40]}"
    if p.supabase.api_key == "sb_secret":
        service, anon = f"sb_secret_sandbox{h[8:48]}", f"sb_publishable_sandbox{h[16:56]}"
    else:
        secret = project_jwt_secret(scenario_name)
        service, anon = _jwt(secret, "service_role"), _jwt(secret, "anon")
    return {
        "fly_api_token": fly_token,
        "fly_registry_password": registry_password,
        "supabase_service_role_key": service,
        "supabase_anon_key": anon,
        # The real shape, which the Supabase CLI insists on: ^sbp_(oauth_)?[a-f0-9]{40}$
        # (supabase/cli apps/cli-go/internal/utils/access_token.go, AccessTokenPattern).
        "supabase_access_token": f"sbp_{h[24:64]}",
        # A signed-in user's access token (a JWT the project signed): what passes a function's verify_jwt
        # whatever the API keys' shape, and what a user puts in VYXOPS_FUNCTION_JWT.
        "supabase_function_jwt": user_access_token(scenario_name),
    }

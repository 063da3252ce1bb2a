"""What a well-formed credential looks like, per platform: one home for the shapes doctor checks.

Each ``*_problem`` function says what is wrong with a value's shape (never quoting it), or None.
"""

from __future__ import annotations

import base64
import json
import re

from vyxops.core.flytokens import MACAROON_PREFIXES, strip_authorization_scheme

__all__ = [
    "ACCESS_TOKEN",
    "PROJECT_REF",
    "access_token_problem",
    "fly_token_problem",
    "is_jwt",
    "project_ref_problem",
    "service_key_problem",
]

#: Supabase access tokens: ``sbp_`` + 40 hex, or ``sbp_oauth_``/``sbp_v0_`` + 40 hex. The Supabase CLI's
#: pattern is ``^sbp_(oauth_)?[a-f0-9]{40}$`` (supabase/cli internal/utils/access_token.go); ``sbp_v0_``
#: tokens are accepted by the Management API (PLATFORM.md, third round), though older CLIs refuse them.
ACCESS_TOKEN = re.compile(r"sbp_(?:oauth_|v0_)?[0-9a-f]{40}")
#: A project ref: 20 lower-case letters (the Management API's OpenAPI: ``ref`` minLength 20, maxLength 20,
#: ``^[a-z]+$``; the Supabase CLI's ``ProjectRefPattern`` ``^[a-z]{20}$``, internal/utils/misc.go).
PROJECT_REF = re.compile(r"[a-z]{20}")
#: fly-go ``tokens.Parse`` files a part by its label; user tokens are ``fo1_`` today (older ones had none).
FLY_USER_PREFIX = "fo1"
_FLY_PART = re.compile(r"[A-Za-z0-9+/=_\-]{16,}")
_SUPABASE_SHAPES = (("sbp_", "a Supabase access token"), ("sb_", "a Supabase API key"), ("eyJ", "a JWT"))


def fly_token_problem(token: str) -> str | None:
    """What is wrong with a Fly token's shape, or None when fly-go would read it.

    A token may carry ``FlyV1 ``/``Bearer `` schemes and bundle comma-separated parts (fly-go
    ``tokens.Parse``; ``~/.fly/config.yml`` holds macaroons plus a ``fo1_`` user token). A bare
    legacy personal token is well formed: fly-go sends it as a user token.
    """
    parts = [p.strip() for p in strip_authorization_scheme(token).split(",")]
    for i, part in enumerate(parts, 1):
        where = f"part {i} of {len(parts)}" if len(parts) > 1 else "it"
        if not part:
            return f"{where} is empty (a stray comma?)"
        for start, what in _SUPABASE_SHAPES:
            if part.startswith(start):
                return f"{where} has the shape of {what}, not a Fly token"
        prefix = part.partition("_")[0]
        if re.fullmatch(r"f[mo]\d[a-z]?", prefix) and prefix not in (*MACAROON_PREFIXES, FLY_USER_PREFIX):
            return f"{where} has an unknown Fly prefix {prefix}_ (known: fm1r_, fm1a_, fm2_, fo1_)"
        if not _FLY_PART.fullmatch(part):
            return f"{where} has characters or a length no Fly token has (whitespace or quotes pasted with it?)"
    return None


def access_token_problem(token: str) -> str | None:
    """A Supabase access token's shape problem (the Supabase CLI refuses any other shape)."""
    if ACCESS_TOKEN.fullmatch(token):
        return None
    for start, what in _SUPABASE_SHAPES[1:]:
        if token.startswith(start):
            return f"it has the shape of {what}, not an access token"
    return "it is not sbp_ + 40 hex digits (also sbp_oauth_…, sbp_v0_…): the Supabase CLI refuses it too"


def project_ref_problem(ref: str) -> str | None:
    return None if PROJECT_REF.fullmatch(ref) else "it is not 20 lower-case letters"


def is_jwt(token: str) -> bool:
    """Whether ``token`` has a JWT's shape: three base64url parts, the first a JSON header naming ``alg``."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def _jwt_role(token: str) -> str | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    role = claims.get("role") if isinstance(claims, dict) else None
    return role if isinstance(role, str) else None


def service_key_problem(key: str) -> str | None:
    """A service key is the legacy ``service_role`` JWT or a new ``sb_secret_…`` key (SPEC.md)."""
    if key.startswith("sb_secret_"):
        return None
    if key.startswith("sb_publishable_"):
        return "it is a publishable key, which PostgREST's table descriptions refuse"
    if is_jwt(key):
        role = _jwt_role(key)
        return None if role == "service_role" else f"it is a JWT for role {role or '(none)'}, not service_role"
    return "it is neither a JWT (the legacy service_role key) nor an sb_secret_… key"

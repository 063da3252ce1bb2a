"""Whether vyxops's request can pass an Edge Function's ``verify_jwt``: one rule, for ``--probe`` and for
planning VERIFY_PROVISIONING.

With ``verify_jwt`` on (the default; the Management API's functions list reports it per
function), the platform reads ``Authorization: Bearer`` before the function runs and
refuses with 401 anything that is not a JWT the project signed: "Missing authorization
header" when there is none, "Invalid JWT" otherwise, and no execution log either way.
The new ``sb_secret_…``/``sb_publishable_…`` API keys are not JWTs: vyxops sends such a
key in ``apikey`` alone (:func:`vyxops.fetch.http.supabase_key_headers`), which the check does
not read. A user's access token from Supabase Auth, or a legacy anon or service_role key
(both JWTs), passes. Sources: Supabase docs, "Authorization headers"
(https://supabase.com/docs/guides/functions/auth-headers: "The new API keys are not JWTs.
The platform check can't validate them"; ``Authorization: Bearer <user-jwt>``, API keys in
``apikey``); PLATFORM.md, "Edge Functions' verify_jwt".

So the bearer vyxops sends a function is ``$VYXOPS_FUNCTION_JWT`` when set, else the
service key when it is a JWT, else none; and a function with ``verify_jwt`` on is not
invoked at all without one: refused up front (``--probe``) or not planned (VERIFY).
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from vyxops.core.config import FUNCTION_JWT_VARIABLE

__all__ = ["FunctionBearer", "bearer_of", "bearer_said", "verify_jwt_of", "verify_jwt_refusal", "HINT"]

#: What vyxops sends a function as ``Authorization: Bearer``: ``$VYXOPS_FUNCTION_JWT``, the service key
#: (a legacy service_role JWT), or nothing (the service key is an ``sb_secret_…`` key, sent in ``apikey`` only).
#: "unknown": a bundle captured before bundles recorded it (a replay sends nothing, so it cannot tell).
FunctionBearer = Literal["function_jwt", "service_jwt", "none", "unknown"]

#: What to do when verify_jwt would refuse vyxops (the variable's value is never shown anywhere).
HINT = (
    f"set {FUNCTION_JWT_VARIABLE} to a user's access token (or the project's legacy anon JWT), or put the legacy "
    "service_role key (a JWT) in SUPABASE_SERVICE_ROLE_KEY, or turn verify_jwt off for the function"
)


def bearer_of(service_key_is_jwt: bool, function_jwt: str | None) -> FunctionBearer:
    """The bearer vyxops sends a function: the function JWT when given, else a JWT service key, else none."""
    if function_jwt:
        return "function_jwt"
    return "service_jwt" if service_key_is_jwt else "none"


def bearer_said(bearer: FunctionBearer) -> str:
    """How a plan or a message names the bearer (never its value)."""
    return {
        "function_jwt": f"{FUNCTION_JWT_VARIABLE} as its bearer",
        "service_jwt": "the service_role key (a JWT) as its bearer",
        "none": "no bearer (the service key is not a JWT)",
        "unknown": "the bearer the capture sent (not recorded in this bundle)",
    }[bearer]


def verify_jwt_of(functions: pd.DataFrame, slug: str) -> bool | None:
    """``slug``'s ``verify_jwt`` as the functions list reported it; None when it is not listed or not reported."""
    if functions.empty or "slug" not in functions or "verify_jwt" not in functions:
        return None
    hit = functions.loc[functions["slug"] == slug, "verify_jwt"]
    if hit.empty or pd.isna(hit.iloc[0]):
        return None
    return bool(hit.iloc[0])


def verify_jwt_refusal(function: str, verify_jwt: bool | None, bearer: FunctionBearer | None) -> str | None:
    """Why ``function``'s ``verify_jwt`` would refuse vyxops's request before it runs, or None when it would not
    (verify_jwt off or not reported, a JWT to send, or ``bearer`` unknown)."""
    if verify_jwt is not True or bearer != "none":
        return None
    return (
        f"{function} has verify_jwt on, and vyxops has no JWT to send it: the service key is not a JWT "
        f"(an sb_secret_… key) and {FUNCTION_JWT_VARIABLE} is not set, so the platform would refuse the call "
        "with 401 before the function runs"
    )

"""``vyxops doctor``: before an incident, check that vyxops can work on a target.

Four groups of small checks, run in order, each saying ``ok``, ``skipped`` or
``problem`` with the fix:

- **credentials**: each one present and well formed (shapes below). On the live
  target they are read from the environment and checked before any call; on the
  sandbox they are the sandbox's own, present by construction. No value is ever
  printed: a line names the variable, the shape it has, never the text.
- **APIs**: each API answers (Machines API, GraphQL, registry, Fly logs,
  Management API, PostgREST, the logs endpoint). A 401/403 from Fly names the
  token and where it came from.
- **permissions**: each Management API permission vyxops reads with and the fixes
  write with (:data:`vyxops.core.facts.SUPABASE_MGMT_PERMISSIONS`). A scoped access token
  without one is answered 403, which names no permission: the endpoint does.
  Write permission is checked with a write the API refuses (a ``SUPABASE_``-prefixed
  secret name, which CreateSecretBody forbids): permissions are checked before the
  body (a NestJS guard runs before any validation pipe), so a token without
  ``secrets write`` gets 403 and one with it gets 400, and nothing is written.
- **contract**: the pipeline contract resolves for ``--app`` (declared or
  discovered); an ambiguity names the key to declare.
- **database**: with ``$SUPABASE_DB_URL`` (``--db-url``), the connection, and the
  role's rights on the contract's table (``SELECT``; ``UPDATE`` of what the row fix
  writes), asked of the catalog (:mod:`vyxops.act.doctor.database`).

When a credential is missing or ill-formed, no call is made: the other groups
are skipped until it is fixed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from vyxops.act.doctor.apis import check_apis
from vyxops.act.doctor.contract import check_contract
from vyxops.act.doctor.credentials import check_credentials, live_credentials, sandbox_credentials
from vyxops.act.doctor.database import check_database
from vyxops.act.doctor.model import GROUPS, Check, Doctor, Outcome, problem
from vyxops.act.doctor.permissions import check_permissions
from vyxops.core import config
from vyxops.core.errors import ConfigError, InputError
from vyxops.fetch.direct import DB_URL_ENV, direct_db

__all__ = ["CHECKS", "GROUPS", "Doctor", "Outcome", "run_doctor"]

#: The groups after the credentials, in order; each needs an open session.
CHECKS: tuple[tuple[str, Check], ...] = (
    ("APIs", check_apis),
    ("permissions", check_permissions),
    ("contract", check_contract),
    ("database", check_database),
)


def run_doctor(
    target: config.Target,
    *,
    app: str | None = None,
    contract: str | None = None,
    scenario: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Outcome]:
    """Every check's outcome on ``target``, in order. No call is made while a credential is missing or ill-formed."""
    from vyxops.fetch.session import build_session
    from vyxops.fetch.targets import OpenRequest, open_target

    d = Doctor(target, app, contract, scenario, environ)
    env = os.environ if environ is None else environ
    outcomes: list[Outcome] = []
    if d.live:
        d.credentials = live_credentials(env)
        outcomes += check_credentials(d)
        if any(o.status == "problem" for o in outcomes):
            return outcomes + skipped("fix the credentials first: no call was made")
    try:
        opened = open_target(OpenRequest(target=target, scenario=scenario, environ=environ))
    except ConfigError as exc:
        return (
            outcomes
            + [problem("credentials", "target", exc.message, exc.hint or "")]
            + skipped("the target could not be opened")
        )
    if not d.live:
        d.credentials = sandbox_credentials(opened)
        outcomes += check_credentials(d)
    try:  # a malformed $VYXOPS_FUNCTION_JWT is a credential problem, named; its value is never shown
        function_jwt = config.function_jwt(environ)
    except ConfigError as exc:
        return outcomes + [problem("credentials", config.FUNCTION_JWT_VARIABLE, exc.message, exc.hint or "")]
    d.session = build_session(target, opened, function_jwt=function_jwt)
    try:
        d.session.db = direct_db(env)
    except InputError as exc:
        d.session.close()
        return outcomes + [problem("database", DB_URL_ENV, exc.message, exc.hint or "")]
    try:
        for _, check in CHECKS:
            outcomes += check(d)
    finally:
        if d.session.db is not None:
            d.session.db.close()
        d.session.close()
    return outcomes


def skipped(why: str) -> list[Outcome]:
    return [Outcome(group, "all", "skipped", why) for group, _ in CHECKS]

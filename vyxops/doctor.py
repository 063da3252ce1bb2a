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
  write with (:data:`vyxops.facts.SUPABASE_MGMT_PERMISSIONS`). A scoped access token
  without one is answered 403, which names no permission: the endpoint does.
  Write permission is checked with a write the API refuses (a ``SUPABASE_``-prefixed
  secret name, which CreateSecretBody forbids): permissions are checked before the
  body (a NestJS guard runs before any validation pipe), so a token without
  ``secrets write`` gets 403 and one with it gets 400, and nothing is written.
- **contract**: the pipeline contract resolves for ``--app`` (declared or
  discovered); an ambiguity names the key to declare.

When a credential is missing or ill-formed, no call is made: the other groups
are skipped until it is fixed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from vyxops import config
from vyxops.errors import ApiError, AuthError, ConfigError, NotFoundError, TransportError, VyxopsError
from vyxops.facts import SUPABASE_MGMT_PERMISSIONS, SUPABASE_PERMISSION_WORDS
from vyxops.flytokens import FlyTokens
from vyxops.session import Credentials, Opened, Session
from vyxops.shapes import access_token_problem, fly_token_problem, project_ref_problem, service_key_problem

__all__ = ["Outcome", "Doctor", "run_doctor", "CHECKS"]

Status = Literal["ok", "skipped", "problem"]
GROUPS = ("credentials", "APIs", "permissions", "contract")

# --------------------------------------------------------------------------- outcomes and context


@dataclass(frozen=True)
class Outcome:
    """One check's answer. ``said`` is what was seen (ok, skipped) or what is wrong (problem)."""

    group: str
    check: str
    status: Status
    said: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<8} {self.group}: {self.check}: {self.said}"
        return f"{text} — fix: {self.fix}" if self.status == "problem" and self.fix else text

    def as_json(self) -> dict[str, str]:
        return {"group": self.group, "check": self.check, "status": self.status, "said": self.said, "fix": self.fix}


@dataclass(frozen=True)
class Credential:
    """A credential as configured: the variable that names it, its value (never shown) and where it came from."""

    variable: str
    value: str | None
    source: str
    problem: Callable[[str], str | None] | None = None
    how: str = ""  # how to get a good one


@dataclass
class Doctor:
    """What the checks share: the target, the app, the credentials and (once they pass) an open session."""

    target: config.Target
    app: str | None = None
    contract: str | None = None
    scenario: str | None = None
    environ: Mapping[str, str] | None = None
    credentials: list[Credential] = field(default_factory=list)
    opened: Opened | None = None
    session: Session | None = None
    first_app: str | None = None  # --app, else the org's first app (for the app-level API checks)
    mgmt: dict[tuple[str, str], int | str] = field(default_factory=dict)  # (method, template) -> status or error

    @property
    def live(self) -> bool:
        return self.target.kind == "live"

    def fly_token(self) -> Credential:
        return next(c for c in self.credentials if c.variable.startswith("FLY_"))

    def fly_named(self) -> str:
        c = self.fly_token()
        return f"the Fly token ({c.source})"


Check = Callable[[Doctor], Iterator[Outcome]]


def _problem(group: str, check: str, said: str, fix: str) -> Outcome:
    return Outcome(group, check, "problem", said, fix)


# --------------------------------------------------------------------------- credentials


def _live_credentials(env: Mapping[str, str]) -> list[Credential]:
    """The live target's credentials from ``env`` (and flyctl's config), as :func:`vyxops.config.live_credentials`
    reads them, each on its own so that every missing one is named."""
    path = config.flyctl_config_path()
    fly, source = config.read_fly_token(env, path)
    url_ref = None
    url = config.env_value(env, "SUPABASE_URL")
    if url:
        url_ref = config.project_ref_from_url(url.rstrip("/"))
    return [
        Credential("FLY_API_TOKEN", fly, source or f"FLY_API_TOKEN, FLY_ACCESS_TOKEN or {path}", fly_token_problem,
                   "create one with `fly tokens create org` (or `fly auth token`) and export FLY_API_TOKEN"),
        Credential("SUPABASE_URL", url, "SUPABASE_URL", _url_problem,
                   "export SUPABASE_URL=https://<project-ref>.supabase.co"),
        Credential("SUPABASE_SERVICE_ROLE_KEY", config.env_value(env, "SUPABASE_SERVICE_ROLE_KEY"),
                   "SUPABASE_SERVICE_ROLE_KEY", service_key_problem,
                   "copy the service_role (or a secret) key from the dashboard's API keys page"),
        Credential("SUPABASE_ACCESS_TOKEN", config.env_value(env, "SUPABASE_ACCESS_TOKEN"),
                   "SUPABASE_ACCESS_TOKEN", access_token_problem,
                   "create one at https://supabase.com/dashboard/account/tokens and export SUPABASE_ACCESS_TOKEN"),
        Credential("SUPABASE_PROJECT_REF", config.env_value(env, "SUPABASE_PROJECT_REF") or url_ref,
                   "SUPABASE_PROJECT_REF" if env.get("SUPABASE_PROJECT_REF") else "SUPABASE_URL",
                   project_ref_problem, "export SUPABASE_PROJECT_REF (the 20 letters in the project's URL)"),
    ]  # fmt: skip


def _url_problem(url: str) -> str | None:
    try:
        config.read_supabase_url({"SUPABASE_URL": url})
    except ConfigError:
        return "it is not an http(s) URL"
    return None


def _sandbox_credentials(opened: Opened) -> list[Credential]:
    c: Credentials = opened.credentials
    source = f"{opened.label}, its own"
    return [
        Credential("FLY_API_TOKEN", c.fly_token, source),
        Credential("SUPABASE_URL", opened.supabase_url, source),
        Credential("SUPABASE_SERVICE_ROLE_KEY", c.supabase_service_role_key, source),
        Credential("SUPABASE_ACCESS_TOKEN", c.supabase_access_token, source),
        Credential("SUPABASE_PROJECT_REF", c.project_ref, source),
    ]


def check_credentials(d: Doctor) -> Iterator[Outcome]:
    """Present, and (for those the user configures) well formed; never a value, only its variable and shape."""
    for c in d.credentials:
        if not c.value:
            yield _problem("credentials", c.variable, f"not set (looked in {c.source})", c.how)
            continue
        wrong = c.problem(c.value) if c.problem else None
        if wrong:
            yield _problem("credentials", c.variable, f"ill-formed: {wrong} (from {c.source})", c.how)
        else:
            yield Outcome("credentials", c.variable, "ok", _shape(c))
    yield from _ref_matches_url(d)


def _shape(c: Credential) -> str:
    """A credential's kind, never its text."""
    if c.variable == "FLY_API_TOKEN" and c.value:
        return f"present ({FlyTokens.parse(c.value).counted()}; from {c.source})"
    if c.variable in ("SUPABASE_URL", "SUPABASE_PROJECT_REF"):
        return f"{c.value} (from {c.source})"  # not secrets: shown as config.py shows them
    return f"present (from {c.source})"


def _ref_matches_url(d: Doctor) -> Iterator[Outcome]:
    values = {c.variable: c.value for c in d.credentials}
    url, ref = values.get("SUPABASE_URL"), values.get("SUPABASE_PROJECT_REF")
    url_ref = config.project_ref_from_url(url) if url and d.live else None
    if url_ref and ref and ref != url_ref:
        yield _problem(
            "credentials", "SUPABASE_PROJECT_REF", f"{ref} is not the project in SUPABASE_URL ({url_ref})",
            "make SUPABASE_PROJECT_REF and SUPABASE_URL name the same project",
        )  # fmt: skip


# --------------------------------------------------------------------------- APIs


def _fly_refused(d: Doctor, api: str, exc: AuthError) -> Outcome:
    if exc.status == 401 or exc.status == 200:  # GraphQL says UNAUTHORIZED in a 200
        said = f"{d.fly_named()} was refused ({exc.status}): invalid, expired or revoked"
        fix = "create a new token (`fly tokens create org`) and export FLY_API_TOKEN"
    else:
        said = f"{d.fly_named()} may not do this ({exc.status}): it is scoped to other apps or another org"
        fix = f"use a token for the org, or one that covers {d.first_app or 'the app'} (`fly tokens create deploy`)"
    return _problem("APIs", api, said, fix)


def _call(d: Doctor, group: str, api: str, call: Callable[[], str]) -> Outcome:
    """Run one API call; ok with what it said, or the problem its error names."""
    try:
        return Outcome(group, api, "ok", call())
    except _MissingPermission as exc:
        return _missing(exc.permission, exc.project, d.session.project_ref if d.session else "")
    except AuthError as exc:
        if exc.platform.startswith("fly"):
            return _fly_refused(d, api, exc)
        return _supabase_refused(api, exc)
    except NotFoundError as exc:
        return _problem(group, api, f"answered 404 ({exc.method} {exc.path})",
                        "check --app (see `fly apps list`) and the org (FLY_ORG)")  # fmt: skip
    except TransportError as exc:
        return _problem(group, api, f"did not answer: {exc.message}", "check the network, a proxy, or the base URL")
    except ApiError as exc:
        return _problem(
            group, api, f"answered {exc.status}: {exc.message}", "retry; if it persists, see the status page"
        )


def _supabase_refused(api: str, exc: AuthError) -> Outcome:
    if exc.platform == "supabase-rest":
        return _problem(
            "APIs",
            api,
            f"the service key (SUPABASE_SERVICE_ROLE_KEY) was refused ({exc.status})",
            "use the project's service_role key or a secret key, from the dashboard's API keys page",
        )
    return _problem("APIs", api, f"the access token (SUPABASE_ACCESS_TOKEN) was refused ({exc.status})",
                    "create a new access token at https://supabase.com/dashboard/account/tokens")  # fmt: skip


def check_apis(d: Doctor) -> Iterator[Outcome]:
    s = d.session
    assert s is not None
    yield _call(d, "APIs", "Machines API", lambda: _machines(d, s))
    app = d.first_app
    if app is None:
        for api in ("GraphQL", "registry", "Fly logs"):
            yield Outcome("APIs", api, "skipped", "no app to ask about: pass --app APP")
    else:
        yield _call(d, "APIs", "GraphQL", lambda: f"{len(s.fly.releases(app, limit=1))} release(s) of {app} read")
        yield _registry(d, s, app)
        yield _call(d, "APIs", "Fly logs", lambda: f"{len(s.fly.logs_page(app)[0])} line(s) of {app} read")
    yield _management(d, s)
    yield _call(
        d, "APIs", "PostgREST", lambda: f"{len(s.supabase.openapi().get('definitions') or {})} table(s) described"
    )
    yield _logs_endpoint(d, s)


def _machines(d: Doctor, s: Session) -> str:
    apps = [a.get("name") for a in s.fly.list_apps(s.org) if isinstance(a.get("name"), str)]
    if d.app:
        s.fly.get_app(d.app)
        d.first_app = d.app
        return f"{len(apps)} app(s) in org {s.org}; {d.app} readable"
    d.first_app = apps[0] if apps else None
    return f"{len(apps)} app(s) in org {s.org}"


def _registry(d: Doctor, s: Session, app: str) -> Outcome:
    from vyxops.evidence import latest_ref

    ref = latest_ref(app)

    def head() -> str:
        answer = s.fly.head_manifest(ref)
        if answer["check"].endswith("denied"):
            raise AuthError("denied", platform="fly-registry", method="HEAD", path=ref,
                            status=int(answer["check"].split()[0]))  # fmt: skip
        return f"HEAD {ref}: {answer['check']}"

    return _call(d, "APIs", "registry", head)


def _management(d: Doctor, s: Session) -> Outcome:
    """GET /v1/projects/{ref}: any answer but 401 shows the API and the token work (a 403 is a permission's)."""

    def ask() -> str:
        status = _mgmt_status(d, s, "GET", "/v1/projects/{ref}")
        if status == 401:
            raise AuthError("refused", platform="supabase-mgmt", method="GET", path="/v1/projects/{ref}", status=401)
        return f"project {s.project_ref}: answered {status}"

    return _call(d, "APIs", "Management API", ask)


def _logs_endpoint(d: Doctor, s: Session) -> Outcome:
    """A real query over the last minute, as vyxops sends them (both ends of the window, SQL the endpoint takes)."""

    def query() -> str:
        try:
            rows = s.supabase.query_logs(LOGS_SQL, *_last_minute(s))
        except AuthError as exc:
            if exc.status == 403:
                return "answered 403: see permissions (analytics logs read)"
            raise
        return f"a query over the last minute answered ({len(rows)} row(s))"

    return _call(d, "APIs", "logs endpoint", query)


def _last_minute(s: Session) -> tuple[str, str]:
    """The last minute, in whole minutes as vyxops's log reads send it (the endpoint rounds to the minute)."""
    import pandas as pd

    from vyxops.logreads import z_time

    end = s.now()
    return z_time((end - pd.Timedelta(minutes=1)).floor("min")), z_time(end.ceil("min"))


# --------------------------------------------------------------------------- permissions


@dataclass(frozen=True)
class Permission:
    """A Management API endpoint vyxops calls, what it uses it for, and how to ask without changing anything."""

    method: str
    template: str
    why: str
    params: Mapping[str, str] | None = None
    body: object = None

    @property
    def permission(self) -> str:
        return SUPABASE_MGMT_PERMISSIONS[(self.method, self.template)]


#: A secret name CreateSecretBody forbids (``^(?!SUPABASE_).*``): a token with ``secrets write`` gets 400 for it,
#: one without gets 403 (guards before pipes), and nothing is written either way.
#: A query as vyxops's log reads send them (vyxops.logreads): the ``logs`` table, one source, newest first.
LOGS_SQL = "select id, timestamp from logs where source = 'function_edge_logs' order by timestamp desc limit 1"

REFUSED_SECRET = [{"name": "SUPABASE_VYXOPS_DOCTOR", "value": "-"}]

PERMISSIONS: tuple[Permission, ...] = (
    Permission("GET", "/v1/projects/{ref}", "vyxops reads the project to find its organization"),
    Permission("GET", "/v1/organizations/{slug}", "vyxops reads the plan: how far back function logs reach"),
    Permission("GET", "/v1/projects/{ref}/secrets", "vyxops reads the image secret's digest"),
    Permission("POST", "/v1/projects/{ref}/secrets", "remediate's pin and unset fixes write the image secret",
               body=REFUSED_SECRET),
    Permission("GET", "/v1/projects/{ref}/functions", "vyxops reads the provisioning function and its verify_jwt"),
    Permission("GET", "/v1/projects/{ref}/analytics/endpoints/logs", "vyxops reads the function's logs",
               params={"sql": LOGS_SQL}),
)  # fmt: skip


def _mgmt_status(
    d: Doctor, s: Session, method: str, template: str, params: Mapping[str, str] | None = None, body: object = None
) -> int:
    """The Management API's status for one endpoint, memoised (an API check and a permission share one call)."""
    key = (method, template)
    if key not in d.mgmt:
        slug = str(d.mgmt.get(("slug", ""), ""))
        path = template.replace("{ref}", s.project_ref).replace("{slug}", slug)
        ok = (400, 401, 403, 404, 422)
        response = s.supabase.mgmt.request(method, path, params=params, json=body, ok=ok, idempotent=True)
        d.mgmt[key] = response.status_code
        if response.status_code == 403 and "Forbidden resource" in response.text:
            d.mgmt[("403", template)] = "project"
        if template == "/v1/projects/{ref}" and response.status_code < 400:
            body = s.supabase.mgmt.parse_json(response)
            found = body.get("organization_slug") if isinstance(body, dict) else None
            if isinstance(found, str):
                d.mgmt[("slug", "")] = found
    status = d.mgmt[key]
    assert isinstance(status, int)
    return status


def check_permissions(d: Doctor) -> Iterator[Outcome]:
    s = d.session
    assert s is not None
    for p in PERMISSIONS:
        words = SUPABASE_PERMISSION_WORDS[p.permission]
        name = words.split(" (")[0]
        if "{slug}" in p.template and ("slug", "") not in d.mgmt:
            yield Outcome("permissions", name, "skipped", "the project (and so its organization) could not be read")
            continue
        yield _call(d, "permissions", name, functools.partial(_granted, d, s, p))


def _granted(d: Doctor, s: Session, p: Permission) -> str:
    params = None
    if p.params is not None:
        start, end = _last_minute(s)
        params = {**p.params, "iso_timestamp_start": start, "iso_timestamp_end": end}
    status = _mgmt_status(d, s, p.method, p.template, params, p.body)
    if status == 401:
        raise AuthError("refused", platform="supabase-mgmt", method=p.method, path=p.template, status=401)
    if status == 403:
        raise _MissingPermission(p, project=d.mgmt.get(("403", p.template)) == "project")
    return f"granted: {p.method} {p.template} answered {status} ({p.permission})"


class _MissingPermission(VyxopsError):
    def __init__(self, p: Permission, *, project: bool) -> None:
        self.permission, self.project = p, project
        super().__init__(p.permission)


def _missing(p: Permission, project: bool, ref: str) -> Outcome:
    words = SUPABASE_PERMISSION_WORDS[p.permission]
    name = words.split(" (")[0]
    if project:
        return _problem(
            "permissions",
            name,
            f"the access token may not see project {ref} (403 on {p.template})",
            "use an access token of an account (or scoped to an organization) that holds the project",
        )
    return _problem(
        "permissions", name,
        f"the access token lacks {words}, id {p.permission}: {p.method} {p.template} answered 403; {p.why}",
        f"grant the token {name} (or create one that has it at https://supabase.com/dashboard/account/tokens) "
        "and export it as SUPABASE_ACCESS_TOKEN",
    )  # fmt: skip


# --------------------------------------------------------------------------- contract


def check_contract(d: Doctor) -> Iterator[Outcome]:
    from vyxops.contract import AmbiguousContract, declared_contract
    from vyxops.discover import resolve_contract

    s = d.session
    assert s is not None
    if not d.app:
        found = declared_contract(d.contract)
        if found is None:
            yield Outcome("contract", "pipeline", "skipped", "none declared: pass --app APP to check discovery")
        else:
            yield Outcome("contract", "pipeline", "ok", _contract_said(found))
        return
    try:
        contract = resolve_contract(s, [d.app], declared=d.contract)
    except AmbiguousContract as exc:
        yield _problem("contract", f"pipeline.{exc.key}", exc.message.partition(": ")[2] or exc.message,
                       exc.hint or f"declare `{exc.key}` under [pipeline] in vyxops.toml")  # fmt: skip
        return
    except (ApiError, TransportError) as exc:
        yield _problem("contract", "pipeline", f"discovery could not read the platforms: {exc.message}",
                       "fix the problems above, or declare the contract in vyxops.toml (`vyxops init`)")  # fmt: skip
        return
    yield Outcome("contract", "pipeline", "ok", _contract_said(contract))


def _contract_said(c: object) -> str:
    from vyxops.contract import Contract

    assert isinstance(c, Contract)
    return (
        f"{c.source}: function {c.function or '(none)'}, image secret {c.image_secret or '(none)'}, "
        f"table {c.table.name}"
    )


# --------------------------------------------------------------------------- running

#: The groups after the credentials, in order; each needs an open session.
CHECKS: tuple[tuple[str, Check], ...] = (
    ("APIs", check_apis),
    ("permissions", check_permissions),
    ("contract", check_contract),
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
    from vyxops.session import build_session
    from vyxops.targets import OpenRequest, open_target

    d = Doctor(target, app, contract, scenario, environ)
    env = os.environ if environ is None else environ
    outcomes: list[Outcome] = []
    if d.live:
        d.credentials = _live_credentials(env)
        outcomes += check_credentials(d)
        if any(o.status == "problem" for o in outcomes):
            return outcomes + _skipped("fix the credentials first: no call was made")
    try:
        opened = open_target(OpenRequest(target=target, scenario=scenario, environ=environ))
    except ConfigError as exc:
        return (
            outcomes
            + [_problem("credentials", "target", exc.message, exc.hint or "")]
            + _skipped("the target could not be opened")
        )
    if not d.live:
        d.credentials = _sandbox_credentials(opened)
        outcomes += check_credentials(d)
    d.session = build_session(target, opened)
    try:
        for _, check in CHECKS:
            outcomes += check(d)
    finally:
        d.session.close()
    return outcomes


def _skipped(why: str) -> list[Outcome]:
    return [Outcome(group, "all", "skipped", why) for group, _ in CHECKS]

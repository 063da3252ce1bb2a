"""Credentials: each present and well formed (vyxops.core.shapes); never a value, only its variable and shape."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from vyxops.act.doctor.model import Credential, Doctor, Outcome, problem
from vyxops.core import config
from vyxops.core.errors import ConfigError
from vyxops.core.flytokens import FlyTokens
from vyxops.core.shapes import access_token_problem, fly_token_problem, project_ref_problem, service_key_problem
from vyxops.fetch.targets import Credentials, Opened


def live_credentials(env: Mapping[str, str]) -> list[Credential]:
    """The live target's credentials from ``env`` (and flyctl's config), as :func:`vyxops.core.config.live_credentials`
    reads them, each on its own so that every missing one is named."""
    path = config.flyctl_config_path()
    fly, source = config.read_fly_token(env, path)
    url_ref = None
    url = config.env_value(env, "SUPABASE_URL")
    if url:
        url_ref = config.project_ref_from_url(url.rstrip("/"))
    token, ref = config.env_value(env, "SUPABASE_ACCESS_TOKEN"), config.env_value(env, "SUPABASE_PROJECT_REF")
    self_hosted = bool((env.get(config.DB_URL_VARIABLE) or "").strip()) and not token and not ref and not url_ref
    found = [
        Credential("FLY_API_TOKEN", fly, source or f"FLY_ACCESS_TOKEN, FLY_API_TOKEN or {path}", fly_token_problem,
                   _fly_token_fix(source, path)),
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
    # Self-hosted (the database URL, and neither Management API variable): nothing to check for the API it lacks.
    return found[:3] if self_hosted else found


def _fly_token_fix(source: str, path: object) -> str:
    """How to replace the Fly token where it was read: the variable read first wins (flyctl's order)."""
    if source == str(path):
        return f"run `fly auth login` again (it rewrites {path}), or export FLY_ACCESS_TOKEN"
    variable = source or "FLY_ACCESS_TOKEN"
    return f"create one with `fly tokens create org` (or `fly auth token`) and export it as {variable}"


def _url_problem(url: str) -> str | None:
    try:
        config.read_supabase_url({"SUPABASE_URL": url})
    except ConfigError:
        return "it is not an http(s) URL"
    return None


def sandbox_credentials(opened: Opened) -> list[Credential]:
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
            yield problem("credentials", c.variable, f"not set (looked in {c.source})", c.how)
            continue
        wrong = c.problem(c.value) if c.problem else None
        if wrong:
            yield problem("credentials", c.variable, f"ill-formed: {wrong} (from {c.source})", c.how)
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
        yield problem(
            "credentials", "SUPABASE_PROJECT_REF", f"{ref} is not the project in SUPABASE_URL ({url_ref})",
            "make SUPABASE_PROJECT_REF and SUPABASE_URL name the same project",
        )  # fmt: skip

"""Configuration from the environment only: the target, live credentials, local paths.

A token is never a parameter (of a notebook, a CLI flag or a function that a
notebook calls): live credentials come from environment variables, or for Fly
from flyctl's own config file, and every one is registered for redaction the
moment it is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from vyxops.core.errors import ConfigError, InputError, register_secret

__all__ = [
    "Target",
    "parse_target",
    "TARGETS_ALLOWED",
    "LiveCredentials",
    "live_credentials",
    "LIVE_URLS",
    "LIVE_URL_VARIABLES",
    "live_urls",
    "live_base_url",
    "project_dir",
    "sandbox_dir",
    "audit_log_path",
    "fly_org",
    "check_sandbox_dir",
    "check_audit_log",
    "FUNCTION_JWT_VARIABLE",
    "function_jwt",
]

#: How the allowed ``--target`` values are spelled to a user.
TARGETS_ALLOWED = "sandbox, live, bundle:PATH"

#: Base URLs of the real APIs. The Machines API paths start with /v1/apps, Fly
#: GraphQL is /graphql and Fly REST /api/v1/apps on ``fly_api``. Supabase
#: REST and Edge Functions live under the project's own SUPABASE_URL.
LIVE_URLS = {
    "fly_machines": "https://api.machines.dev",
    "fly_api": "https://api.fly.io",
    "fly_registry": "https://registry.fly.io",
    "supabase_mgmt": "https://api.supabase.com",
}

#: The environment variables that move a LIVE_URLS entry elsewhere (a served sandbox, an
#: internal address such as the Machines API's ``http://_api.internal:4280`` inside Fly's
#: network). The first three are flyctl's own (``internal/config/config.go`` at
#: superfly/flyctl ad0172f: ``FLY_API_BASE_URL``, ``FLY_FLAPS_BASE_URL``,
#: ``FLY_REGISTRY_HOST``, read with ``env.FirstOrDefault`` over the defaults
#: https://api.fly.io, https://api.machines.dev and registry.fly.io).
LIVE_URL_VARIABLES = {
    "fly_api": "FLY_API_BASE_URL",
    "fly_machines": "FLY_FLAPS_BASE_URL",
    "fly_registry": "FLY_REGISTRY_HOST",
    "supabase_mgmt": "SUPABASE_API_URL",
}

#: flyctl's order for the Fly token's variables (``env.First(AccessTokenEnvKey, APITokenEnvKey)``
#: in ``internal/config/config.go``); flyctl's config file comes after both.
FLY_TOKEN_VARIABLES = ("FLY_ACCESS_TOKEN", "FLY_API_TOKEN")

# platform name (as in ApiError.platform) -> LIVE_URLS key
_PLATFORM_URL_KEYS = {
    "fly-machines": "fly_machines",
    "fly-graphql": "fly_api",
    "fly-api": "fly_api",
    "fly-registry": "fly_registry",
    "supabase-mgmt": "supabase_mgmt",
}

# Not secrets: shown in reprs and messages.
_NOT_SECRET = frozenset({"SUPABASE_URL", "SUPABASE_PROJECT_REF"})

_SUPABASE_HOST_RE = re.compile(r"^(?P<ref>[a-z0-9]+)\.supabase\.(co|in)$")


# --------------------------------------------------------------------------- target


@dataclass(frozen=True)
class Target:
    """Where the platforms are: the sandbox simulator, the real APIs, or a captured bundle."""

    kind: Literal["sandbox", "live", "bundle"]
    path: str | None = None  # only for bundle:PATH

    def __str__(self) -> str:
        """The ``--target`` spelling, so that ``parse_target(str(t)) == t``."""
        return f"bundle:{self.path}" if self.kind == "bundle" else self.kind


def parse_target(text: str | None) -> Target:
    """Parse a ``--target`` value: ``sandbox`` (also None/empty), ``live`` or ``bundle:PATH``.

    Raises :class:`~vyxops.core.errors.InputError` naming ``--target`` and the
    allowed values for anything else, including ``bundle:`` without a path.
    """
    value = (text or "").strip()
    if not value:
        return Target("sandbox")
    kind, sep, path = value.partition(":")
    kind = kind.strip().lower()
    if not sep and kind in ("sandbox", "live"):
        return Target(kind)  # type: ignore[arg-type]  # narrowed by the test above
    if kind == "bundle":
        path = path.strip()
        if not path:
            raise InputError(
                "--target",
                f"{value!r} names no bundle directory",
                allowed=TARGETS_ALLOWED,
                hint="write bundle:PATH with the directory `vyxops capture --out` wrote",
            )
        return Target("bundle", path)
    raise InputError("--target", f"unknown target {value!r}", allowed=TARGETS_ALLOWED)


def target_of_label(label: str) -> tuple[str, str | None]:
    """A session's label (``Evidence.target``: ``sandbox:SCENARIO``, ``live``, ``bundle:PATH``) as the ``--target``
    value and the sandbox's scenario that open the same target again (:func:`vyxops.core.present.target_flags`)."""
    kind, _, rest = label.partition(":")
    if kind == "sandbox":
        return "sandbox", rest or None
    return ("live", None) if kind == "live" else (label, None)


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True, repr=False)
class LiveCredentials:
    """Credentials for the live target; its repr shows which are set, never their values."""

    fly_token: str
    supabase_url: str
    supabase_service_role_key: str
    supabase_access_token: str
    project_ref: str
    # Where fly_token came from (a variable name or the flyctl config path), for messages.
    fly_token_source: str = field(default="FLY_API_TOKEN", compare=False)

    def __repr__(self) -> str:
        return (
            f"LiveCredentials(fly_token='***' (from {self.fly_token_source}), "
            f"supabase_url={self.supabase_url!r}, supabase_service_role_key='***', "
            f"supabase_access_token='***', project_ref={self.project_ref!r})"
        )

    __str__ = __repr__


def flyctl_config_path() -> Path:
    return Path.home() / ".fly" / "config.yml"


def _read_flyctl_token(path: Path) -> str | None:
    """flyctl's ``access_token`` from ``path``, or None if the file is absent or has none.

    Parse errors are swallowed on purpose: PyYAML's messages quote the document,
    which holds the token. The caller reports the token as missing instead. Anchors and
    aliases (which flyctl never writes) are refused before parsing, so a YAML bomb there
    costs one linear scan (:mod:`vyxops.core.safeyaml`), and are named: the file is not read.
    """
    import yaml

    from vyxops.core.safeyaml import YamlRefused, check_events

    try:
        text = path.read_text(encoding="utf-8")
        check_events(text)
        data = yaml.safe_load(text)
    except YamlRefused as exc:
        raise ConfigError(
            f"{path}: line {exc.line}: {exc}", hint="run `fly auth login` to rewrite it, or set FLY_API_TOKEN"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    token = data.get("access_token")
    return token.strip() if isinstance(token, str) and token.strip() else None


def project_ref_from_url(url: str) -> str | None:
    host = (urlsplit(url).hostname or "").lower()
    match = _SUPABASE_HOST_RE.match(host)
    return match.group("ref") if match else None


def live_credentials(
    environ: Mapping[str, str] | None = None,
    flyctl_config: Path | None = None,
) -> LiveCredentials:
    """Read the live target's credentials from ``environ`` (default ``os.environ``).

    Fly, in flyctl's order: ``FLY_ACCESS_TOKEN``, else ``FLY_API_TOKEN``, else
    ``access_token`` in flyctl's config (``flyctl_config``, default
    ``~/.fly/config.yml``); the token is kept as given and parsed per service by
    :mod:`vyxops.core.flytokens`. Supabase:
    ``SUPABASE_URL``, ``SUPABASE_SERVICE_ROLE_KEY``, ``SUPABASE_ACCESS_TOKEN`` and
    ``SUPABASE_PROJECT_REF`` (derived from an ``https://<ref>.supabase.co`` URL
    when unset). Empty values count as unset. Raises
    :class:`~vyxops.core.errors.ConfigError` naming every missing variable (never a
    value). Every token read is registered for redaction. ``FLY_ORG`` is checked here
    too (:func:`fly_org`): it goes into the Machines API's app list query.
    """
    fly_org(environ)
    env = os.environ if environ is None else environ
    config_path = flyctl_config if flyctl_config is not None else flyctl_config_path()
    fly_token, fly_source = read_fly_token(env, config_path)
    supabase_url = read_supabase_url(env)
    service_key = env_value(env, "SUPABASE_SERVICE_ROLE_KEY")
    access_token = env_value(env, "SUPABASE_ACCESS_TOKEN")
    url_ref = project_ref_from_url(supabase_url) if supabase_url else None
    project_ref = env_value(env, "SUPABASE_PROJECT_REF") or url_ref
    needed: dict[str, str | None] = {
        f"FLY_ACCESS_TOKEN or FLY_API_TOKEN (or access_token in {config_path})": fly_token,
        "SUPABASE_URL": supabase_url,
        "SUPABASE_SERVICE_ROLE_KEY": service_key,
    }
    if not (env.get(DB_URL_VARIABLE) or "").strip() or access_token or project_ref:
        # Self-hosted Supabase has no Management API: with the database URL, a run may go without both (its
        # secrets and function logs are then gaps, vyxops.fetch.clients.supabase); one alone is a mistake.
        needed |= {"SUPABASE_ACCESS_TOKEN": access_token, "SUPABASE_PROJECT_REF": project_ref}
    _raise_for_missing(needed)
    if url_ref and project_ref != url_ref:
        # REST calls would go to one project and Management API calls to another.
        raise ConfigError(
            f"SUPABASE_PROJECT_REF ({project_ref}) is not the project in SUPABASE_URL ({url_ref})",
            hint="make SUPABASE_PROJECT_REF and SUPABASE_URL name the same project",
        )
    assert fly_token and supabase_url and service_key  # for the type checker
    return LiveCredentials(
        fly_token=fly_token,
        supabase_url=supabase_url,
        supabase_service_role_key=service_key,
        supabase_access_token=access_token or "",
        project_ref=project_ref or "",
        fly_token_source=fly_source,
    )


#: The project's database URL (vyxops.fetch.clients.postgres reads it); named here for the credentials' rule.
DB_URL_VARIABLE = "SUPABASE_DB_URL"


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """``env[name]`` stripped, None when unset or empty; a secret is registered for redaction as it is read."""
    value = (env.get(name) or "").strip()
    if value and name not in _NOT_SECRET:
        register_secret(value)
    return value or None


def read_fly_token(env: Mapping[str, str], config_path: Path) -> tuple[str | None, str]:
    """Fly's token and where it came from (a variable name or flyctl's config path); ``(None, "")`` when unset."""
    for name in FLY_TOKEN_VARIABLES:
        token = env_value(env, name)
        if token:
            return token, name
    token = _read_flyctl_token(config_path)
    if token:
        register_secret(token)
        return token, str(config_path)
    return None, ""


def read_supabase_url(env: Mapping[str, str]) -> str | None:
    """``SUPABASE_URL`` without a trailing slash, None when unset; a ConfigError when it is not an http(s) URL."""
    url = env_value(env, "SUPABASE_URL")
    if not url:
        return None
    url = url.rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ConfigError(
            "SUPABASE_URL is not an http(s) URL",
            hint="set SUPABASE_URL to the project URL, e.g. https://<project-ref>.supabase.co",
        )
    return url


def _raise_for_missing(values: dict[str, str | None]) -> None:
    """A ConfigError naming, in order, every variable in ``values`` that has no value (never a value itself)."""
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigError(
            "the live target needs these environment variables: " + ", ".join(missing),
            hint="export them in the shell that runs vyxops (credentials come from the environment "
            "only, never from parameters), or use --target sandbox",
        )


def live_urls(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """:data:`LIVE_URLS` with each entry its variable in :data:`LIVE_URL_VARIABLES` sets, read from ``environ``.

    ``FLY_API_BASE_URL`` (GraphQL and the logs API), ``FLY_FLAPS_BASE_URL`` (the
    Machines API) and ``SUPABASE_API_URL`` (the Management API) are http(s) URLs,
    a path prefix allowed. ``FLY_REGISTRY_HOST`` is a host as flyctl takes it
    (``registry.fly.io``, ``host:port``: reached over https) or an http(s) URL
    (``http://127.0.0.1:8080`` for a served sandbox). Empty values count as unset.
    A bad value is a :class:`~vyxops.core.errors.ConfigError` naming the variable, raised
    before any call.
    """
    env = os.environ if environ is None else environ
    urls = dict(LIVE_URLS)
    for key, variable in LIVE_URL_VARIABLES.items():
        value = (env.get(variable) or "").strip()
        if value:
            urls[key] = _registry_url(variable, value) if key == "fly_registry" else _base_url(variable, value)
    return urls


def _base_url(variable: str, value: str) -> str:
    """``value`` as an API base: an http(s) URL with a host, no credentials, query or fragment; no trailing slash."""
    if not _is_base_url(value):
        raise ConfigError(
            f"{variable} is not an http(s) base URL",
            hint=f"set {variable} to a URL such as {_EXAMPLES[variable]} (no credentials, query or fragment), "
            "or unset it for the real API",
        )
    return value.rstrip("/")


def _is_base_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        _ = parts.port  # a port that is not a number raises ValueError
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not (parts.username or parts.password or parts.query or parts.fragment)
        and not any(c.isspace() for c in value)
    )


def _registry_url(variable: str, value: str) -> str:
    """The registry's base URL from ``FLY_REGISTRY_HOST``: a bare ``host[:port]`` over https, or an http(s) URL."""
    if "://" not in value:
        url = _base_url(variable, f"https://{value}")
        if urlsplit(url).path:
            raise ConfigError(
                f"{variable} is not a registry host",
                hint=f"set {variable} to a host such as registry.fly.io (or an http(s) URL), or unset it",
            )
        return url
    return _base_url(variable, value)


_EXAMPLES = {
    "FLY_API_BASE_URL": "https://api.fly.io",
    "FLY_FLAPS_BASE_URL": "https://api.machines.dev or http://_api.internal:4280",
    "FLY_REGISTRY_HOST": "registry.fly.io",
    "SUPABASE_API_URL": "https://api.supabase.com",
}


def live_base_url(platform: str, credentials: LiveCredentials, urls: Mapping[str, str] | None = None) -> str:
    """The live base URL for ``platform`` (an ``ApiError.platform`` name).

    Supabase REST and functions live under the project's SUPABASE_URL; everything
    else is in ``urls`` (default :data:`LIVE_URLS`; :func:`live_urls` reads the
    environment's). Raises KeyError for an unknown platform.
    """
    if platform in ("supabase-rest", "supabase-functions"):
        return credentials.supabase_url
    return (urls or LIVE_URLS)[_PLATFORM_URL_KEYS[platform]]


#: A Fly organization slug as vyxops accepts it from ``FLY_ORG`` (it goes into ``/v1/apps?org_slug=``): lower-case
#: letters, digits and '-', as the slugs ``fly orgs list`` shows (``personal`` for one's own org).
ORG_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def fly_org(environ: Mapping[str, str] | None = None) -> str:
    """``$FLY_ORG`` (default ``personal``), checked before it reaches a URL; ConfigError naming the variable."""
    env = os.environ if environ is None else environ
    value = env.get("FLY_ORG") or "personal"
    if not ORG_SLUG.fullmatch(value):
        raise ConfigError(
            f"FLY_ORG={value[:64]!r} is not a Fly organization slug",
            hint="set FLY_ORG to a slug from `fly orgs list` (lower-case letters, digits and '-'), or unset it",
        )
    return value


# --------------------------------------------------------------------------- the provisioning function's bearer

#: A user's access token (or the project's legacy anon JWT) that vyxops sends the provisioning function as its
#: bearer, for a function whose ``verify_jwt`` would refuse the service key (an ``sb_secret_…`` key is no JWT):
#: :mod:`vyxops.core.function_auth`. Read from the environment only, like every credential.
FUNCTION_JWT_VARIABLE = "VYXOPS_FUNCTION_JWT"


def function_jwt(environ: Mapping[str, str] | None = None) -> str | None:
    """``$VYXOPS_FUNCTION_JWT`` (None when unset or empty), registered for redaction and checked to be
    JWT-shaped before any call: anything else is a ConfigError (exit 2) naming the variable, never its value."""
    from vyxops.core.shapes import is_jwt

    env = os.environ if environ is None else environ
    value = env_value(env, FUNCTION_JWT_VARIABLE)
    if value is None:
        return None
    if value.lower().startswith("bearer "):
        value = value[len("bearer ") :].strip()
        register_secret(value)
    if not is_jwt(value):
        raise ConfigError(
            f"{FUNCTION_JWT_VARIABLE} is not a JWT (three base64url parts, the first a header naming alg)",
            hint=f"set {FUNCTION_JWT_VARIABLE} to a user's access token from Supabase Auth (or the project's "
            "legacy anon key, a JWT), not an sb_secret_/sb_publishable_ key; or unset it",
        )
    return value


# --------------------------------------------------------------------------- paths


def writable_dir_problem(directory: Path) -> str | None:
    """Why ``directory`` could not be made or written, or None when it can; nothing is created."""
    if directory.exists() and not directory.is_dir():
        return f"{directory} exists and is not a directory"
    existing = directory
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{directory} cannot be made: {existing} is a file"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable" + ("" if existing == directory else f", so {directory} cannot be made")
    return None


def project_dir(start: Path | None = None) -> Path | None:
    """The nearest directory at or above ``start`` (default the cwd) holding ``pyproject.toml`` or ``.vyxops/``.

    A checkout has its ``pyproject.toml``; elsewhere, the ``.vyxops/`` of an earlier
    run marks the project. None when no directory up to the root holds either.
    Local state is found from here, not from the cwd, so that the CLI (run at the
    checkout's top), JupyterLab's kernels (run in ``notebooks/``) and ``vyxops
    sandbox serve`` share one sandbox and one audit log.
    """
    here = (start if start is not None else Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "pyproject.toml").is_file() or (directory / ".vyxops").is_dir():
            return directory
    return None


def _local_path(env: Mapping[str, str], variable: str, default: str) -> Path:
    """``$variable`` when set, else ``.vyxops/<default>`` under :func:`project_dir`, else under the cwd."""
    value = (env.get(variable) or "").strip()
    if value:
        return Path(value).expanduser()
    return (project_dir() or Path.cwd()) / ".vyxops" / default


def sandbox_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The sandbox's directory: ``$VYXOPS_SANDBOX_DIR``, else ``.vyxops/sandbox`` in the project, else in the cwd."""
    return _local_path(os.environ if environ is None else environ, "VYXOPS_SANDBOX_DIR", "sandbox")


def audit_log_path(environ: Mapping[str, str] | None = None) -> Path:
    """The fixes' audit log: ``$VYXOPS_AUDIT_LOG``, else ``.vyxops/analysis/audit.jsonl`` in the project, else in the
    cwd."""
    return _local_path(os.environ if environ is None else environ, "VYXOPS_AUDIT_LOG", "audit.jsonl")


def check_local_dir(variable: str, directory: Path) -> None:
    """``directory`` (from ``$variable`` or its default) exists as a writable directory or can be made one.

    Nothing is created: this runs before any write, with every other check that needs no platform.
    ConfigError (exit 2) names the variable and the directory.
    """
    problem = writable_dir_problem(directory)
    if problem:
        raise ConfigError(
            f"{variable}: {problem}",
            hint=f"set {variable} to a writable location (or unset it for the default under .vyxops/)",
        )


def check_sandbox_dir(environ: Mapping[str, str] | None = None) -> Path:
    """:func:`sandbox_dir`, checked to be a directory this process can write (:func:`check_local_dir`)."""
    directory = sandbox_dir(environ)
    check_local_dir("VYXOPS_SANDBOX_DIR", directory)
    return directory


def check_audit_log(environ: Mapping[str, str] | None = None) -> Path:
    """:func:`audit_log_path`, checked to be a file (or none yet) in a directory this process can write."""
    path = audit_log_path(environ)
    if path.is_dir():
        raise ConfigError(
            f"VYXOPS_AUDIT_LOG: {path} is a directory, not the audit log file",
            hint="set VYXOPS_AUDIT_LOG to a file path, e.g. .vyxops/analysis/audit.jsonl",
        )
    check_local_dir("VYXOPS_AUDIT_LOG", path.parent)
    return path

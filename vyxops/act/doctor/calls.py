"""One API call as a check: its outcome, or the problem its error names (with the fix); the Management API's
status per endpoint, asked once."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from vyxops.act.doctor.model import Doctor, MissingPermission, Outcome, Permission, problem
from vyxops.core.errors import ApiError, AuthError, NotFoundError, TransportError
from vyxops.core.facts import SUPABASE_PERMISSION_WORDS
from vyxops.fetch.session import Session

#: A query as vyxops's log reads send them (vyxops.fetch.logreads): the ``logs`` table, one source, newest first.
LOGS_SQL = "select id, timestamp from logs where source = 'function_edge_logs' order by timestamp desc limit 1"


def _fly_refused(d: Doctor, api: str, exc: AuthError) -> Outcome:
    if exc.status == 401 or exc.status == 200:  # GraphQL says UNAUTHORIZED in a 200
        said = f"{d.fly_named()} was refused ({exc.status}): invalid, expired or revoked"
        fix = "create a new token (`fly tokens create org`) and export FLY_API_TOKEN"
    else:
        said = f"{d.fly_named()} may not do this ({exc.status}): it is scoped to other apps or another org"
        fix = f"use a token for the org, or one that covers {d.first_app or 'the app'} (`fly tokens create deploy`)"
    return problem("APIs", api, said, fix)


def call(d: Doctor, group: str, api: str, call: Callable[[], str]) -> Outcome:
    """Run one API call; ok with what it said, or the problem its error names."""
    try:
        return Outcome(group, api, "ok", call())
    except MissingPermission as exc:
        return missing(exc.permission, exc.project, d.session.project_ref if d.session else "")
    except AuthError as exc:
        if exc.platform.startswith("fly"):
            return _fly_refused(d, api, exc)
        return _supabase_refused(api, exc)
    except NotFoundError as exc:
        return problem(group, api, f"answered 404 ({exc.method} {exc.path})",
                        "check --app (see `fly apps list`) and the org (FLY_ORG)")  # fmt: skip
    except TransportError as exc:
        return problem(group, api, f"did not answer: {exc.message}", "check the network, a proxy, or the base URL")
    except ApiError as exc:
        return problem(
            group, api, f"answered {exc.status}: {exc.message}", "retry; if it persists, see the status page"
        )


def _supabase_refused(api: str, exc: AuthError) -> Outcome:
    if exc.platform == "supabase-rest":
        return problem(
            "APIs",
            api,
            f"the service key (SUPABASE_SERVICE_ROLE_KEY) was refused ({exc.status})",
            "use the project's service_role key or a secret key, from the dashboard's API keys page",
        )
    return problem("APIs", api, f"the access token (SUPABASE_ACCESS_TOKEN) was refused ({exc.status})",
                    "create a new access token at https://supabase.com/dashboard/account/tokens")  # fmt: skip


def last_minute(s: Session) -> tuple[str, str]:
    """The last minute, in whole minutes as vyxops's log reads send it (the endpoint rounds to the minute)."""
    import pandas as pd

    from vyxops.fetch.logreads import z_time

    end = s.now()
    return z_time((end - pd.Timedelta(minutes=1)).floor("min")), z_time(end.ceil("min"))


def mgmt_status(
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


def missing(p: Permission, project: bool, ref: str) -> Outcome:
    words = SUPABASE_PERMISSION_WORDS[p.permission]
    name = words.split(" (")[0]
    if project:
        return problem(
            "permissions",
            name,
            f"the access token may not see project {ref} (403 on {p.template})",
            "use an access token of an account (or scoped to an organization) that holds the project",
        )
    return problem(
        "permissions", name,
        f"the access token lacks {words}, id {p.permission}: {p.method} {p.template} answered 403; {p.why}",
        f"grant the token {name} (or create one that has it at https://supabase.com/dashboard/account/tokens) "
        "and export it as SUPABASE_ACCESS_TOKEN",
    )  # fmt: skip

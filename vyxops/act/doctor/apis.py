"""APIs: each one answers (Machines API, GraphQL, registry, Fly logs, Management API, PostgREST, logs endpoint)."""

from __future__ import annotations

from collections.abc import Iterator

from vyxops.act.doctor.calls import LOGS_SQL, call, last_minute, mgmt_status
from vyxops.act.doctor.model import Doctor, Outcome
from vyxops.core.errors import AuthError
from vyxops.fetch.session import Session

#: What a doctor says where the Management API is missing on purpose (self-hosted, with the database URL).
SELF_HOSTED = (
    "none (self-hosted: SUPABASE_DB_URL without SUPABASE_ACCESS_TOKEN and SUPABASE_PROJECT_REF): investigations "
    "cannot see secrets, functions or function logs, and say so"
)


def check_apis(d: Doctor) -> Iterator[Outcome]:
    s = d.session
    assert s is not None
    yield call(d, "APIs", "Machines API", lambda: _machines(d, s))
    app = d.first_app
    if app is None:
        for api in ("GraphQL", "registry", "Fly logs"):
            yield Outcome("APIs", api, "skipped", "no app to ask about: pass --app APP")
    else:
        yield call(d, "APIs", "GraphQL", lambda: f"{len(s.fly.releases(app, limit=1))} release(s) of {app} read")
        yield _registry(d, s, app)
        yield call(d, "APIs", "Fly logs", lambda: f"{len(s.fly.logs_page(app)[0])} line(s) of {app} read")
    if not s.supabase.management:
        yield Outcome("APIs", "Management API", "skipped", SELF_HOSTED)
    else:
        yield _management(d, s)
    yield call(
        d, "APIs", "PostgREST", lambda: f"{len(s.supabase.openapi().get('definitions') or {})} table(s) described"
    )
    if s.supabase.management:
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
    from vyxops.analysis.evidence import latest_ref

    ref = latest_ref(app)

    def head() -> str:
        answer = s.fly.head_manifest(ref)
        if answer["check"].endswith("denied"):
            raise AuthError("denied", platform="fly-registry", method="HEAD", path=ref,
                            status=int(answer["check"].split()[0]))  # fmt: skip
        return f"HEAD {ref}: {answer['check']}"

    return call(d, "APIs", "registry", head)


def _management(d: Doctor, s: Session) -> Outcome:
    """GET /v1/projects/{ref}: any answer but 401 shows the API and the token work (a 403 is a permission's)."""

    def ask() -> str:
        status = mgmt_status(d, s, "GET", "/v1/projects/{ref}")
        if status == 401:
            raise AuthError("refused", platform="supabase-mgmt", method="GET", path="/v1/projects/{ref}", status=401)
        return f"project {s.project_ref}: answered {status}"

    return call(d, "APIs", "Management API", ask)


def _logs_endpoint(d: Doctor, s: Session) -> Outcome:
    """A real query over the last minute, as vyxops sends them (both ends of the window, SQL the endpoint takes)."""

    def query() -> str:
        try:
            rows = s.supabase.query_logs(LOGS_SQL, *last_minute(s))
        except AuthError as exc:
            if exc.status == 403:
                return "answered 403: see permissions (analytics logs read)"
            raise
        return f"a query over the last minute answered ({len(rows)} row(s))"

    return call(d, "APIs", "logs endpoint", query)

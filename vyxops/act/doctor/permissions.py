"""Permissions: each Management API permission vyxops reads and writes with, asked without changing anything."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from vyxops.act.doctor.calls import LOGS_SQL, call, last_minute, mgmt_status
from vyxops.act.doctor.model import Doctor, MissingPermission, Outcome, Permission
from vyxops.core.errors import AuthError
from vyxops.core.facts import SUPABASE_PERMISSION_WORDS
from vyxops.fetch.session import Session

#: A secret name CreateSecretBody forbids (``^(?!SUPABASE_).*``): a token with ``secrets write`` gets 400 for it,
#: one without gets 403 (guards before pipes), and nothing is written either way.
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


def check_permissions(d: Doctor) -> Iterator[Outcome]:
    s = d.session
    assert s is not None
    if not s.supabase.management:
        yield Outcome("permissions", "Management API", "skipped", "no Management API to grant any (self-hosted)")
        return
    for p in PERMISSIONS:
        words = SUPABASE_PERMISSION_WORDS[p.permission]
        name = words.split(" (")[0]
        if "{slug}" in p.template and ("slug", "") not in d.mgmt:
            yield Outcome("permissions", name, "skipped", "the project (and so its organization) could not be read")
            continue
        yield call(d, "permissions", name, functools.partial(_granted, d, s, p))


def _granted(d: Doctor, s: Session, p: Permission) -> str:
    params = None
    if p.params is not None:
        start, end = last_minute(s)
        params = {**p.params, "iso_timestamp_start": start, "iso_timestamp_end": end}
    status = mgmt_status(d, s, p.method, p.template, params, p.body)
    if status == 401:
        raise AuthError("refused", platform="supabase-mgmt", method=p.method, path=p.template, status=401)
    if status == 403:
        raise MissingPermission(p, project=d.mgmt.get(("403", p.template)) == "project")
    return f"granted: {p.method} {p.template} answered {status} ({p.permission})"

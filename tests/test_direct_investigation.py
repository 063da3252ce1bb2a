"""Investigating through the direct PostgreSQL source ($SUPABASE_DB_URL): the table's rows and shape read from a
real server loaded with each shipped scenario's table give the findings the PostgREST path gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vyxops.analysis.investigate import investigate
from vyxops.fetch.clients.postgres import DB_URL_ENV
from vyxops.fetch.session import open_session
from vyxops.testing.postgres import Database
from vyxops_sandbox.scenario import scenario_names
from vyxops_sandbox.testing import world_of


def _document(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, default=str)


@pytest.mark.parametrize("name", scenario_names())
def test_the_direct_source_gives_the_findings_postgrest_gives(
    name: str, pg_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every shipped scenario, every app: findings.json (verdict, root cause, findings, gaps, contract discovered
    from the catalog rather than the OpenAPI) is the same document whichever way the table was read."""
    monkeypatch.delenv(DB_URL_ENV, raising=False)
    with open_session("sandbox", scenario=name, sandbox_dir=tmp_path / "rest") as s:
        world = world_of(s)
        apps = sorted(world.state["fly"]["apps"])
        pg_db.load(world)
        rest = {app: investigate(s, app) for app in apps}
        assert s.db is None
    monkeypatch.setenv(DB_URL_ENV, pg_db.url)
    with open_session("sandbox", scenario=name, sandbox_dir=tmp_path / "direct") as s:
        direct = {app: investigate(s, app) for app in apps}
        assert s.db is not None and s.db._reader is not None  # the rows did come through SQL
    for app in apps:
        assert _document(direct[app].document) == _document(rest[app].document), app
        assert direct[app].evidence.machine_rows.attrs["source"].startswith("postgres SELECT")

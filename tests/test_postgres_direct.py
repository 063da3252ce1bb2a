"""The direct PostgreSQL source against a real server: each shipped scenario's table loaded from the sandbox's
model, read back through psycopg into the same frame PostgREST's path builds, its shape discovered from the
catalog as from the OpenAPI, and the database URL's password kept out of every error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg
import pytest

from vyxops.analysis.discover_pg import read_tables_direct
from vyxops.analysis.discover_table import order_column, tables_of
from vyxops.core.errors import InputError, TransportError, VyxopsError
from vyxops.fetch import frames
from vyxops.fetch.clients.postgres import PgClient
from vyxops.fetch.pg_frames import fetch_machine_rows_direct
from vyxops.fetch.session import open_session
from vyxops.testing.postgres import Database, Databases, pipeline_contract
from vyxops_sandbox.scenario import scenario_names
from vyxops_sandbox.testing import world_of

SHIPPED = scenario_names()
#: The tests' own scenarios too: more teams' tables (no updated_at, no app column, other enums).
TEST_SCENARIOS = sorted(str(p) for p in (Path(__file__).parent / "scenarios").glob("*.yaml"))


def _frames_equal(direct: pd.DataFrame, rest: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(direct, rest, check_exact=True)
    assert list(direct.dtypes) == list(rest.dtypes)
    same = {k: v for k, v in direct.attrs.items() if k != "source"}
    assert same == {k: v for k, v in rest.attrs.items() if k != "source"}


@pytest.mark.parametrize("name", SHIPPED + TEST_SCENARIOS, ids=lambda n: Path(n).stem)
def test_the_direct_read_gives_the_frame_postgrest_gives(name: str, pg_db: Database, tmp_path: Path) -> None:
    """Every shipped scenario: the machine_rows frame read through SQL equals the one read through PostgREST's
    pages (columns, dtypes, values, row order), for the whole table and for one app."""
    with open_session("sandbox", scenario=name, sandbox_dir=tmp_path) as s:
        world = world_of(s)
        contract = pipeline_contract(world)
        pg_db.load(world)
        rest = frames.fetch_machine_rows(s, contract)
        app = world.state["fly"]["apps"] and sorted(world.state["fly"]["apps"])[0]
        rest_app = frames.fetch_machine_rows(s, contract, app=app)
    with PgClient(pg_db.url) as client:
        direct = fetch_machine_rows_direct(client, contract)
        direct_app = fetch_machine_rows_direct(client, contract, app=app)
    assert len(rest) == len(world.state["supabase"]["tables"][contract.table.name]["rows"])
    _frames_equal(direct, rest)
    _frames_equal(direct_app, rest_app)
    assert direct.attrs["source"].startswith("postgres SELECT FROM public.")


@pytest.mark.parametrize("name", SHIPPED + TEST_SCENARIOS, ids=lambda n: Path(n).stem)
def test_discovery_from_the_catalog_reads_what_the_openapi_describes(
    name: str, pg_db: Database, tmp_path: Path
) -> None:
    """The tables, their columns in order, types, enum labels, defaults and primary key, read from
    information_schema and pg_enum, are what PostgREST's OpenAPI root serves for the same table, and the newest
    rows discovery samples of each are PostgREST's: discovery's whole input is the same either way."""
    with open_session("sandbox", scenario=name, sandbox_dir=tmp_path) as s:
        pg_db.load(world_of(s))
        from_openapi = tables_of(s.supabase.openapi())
        for t in from_openapi:
            t.rows = s.supabase.newest_rows(t.name, order_column(t) or "", 1000)
    with PgClient(pg_db.url) as client:
        from_catalog = read_tables_direct(client, sample=1000)
    assert [(t.name, t.columns) for t in from_catalog] == [(t.name, t.columns) for t in from_openapi]
    assert [t.rows for t in from_catalog] == [t.rows for t in from_openapi]


def test_the_database_enforces_the_models_enum_not_nulls_and_trigger(pg_db: Database, tmp_path: Path) -> None:
    """The loaded table is the model's, enforced: a word outside the enum and a null status are refused, and an
    update stamps updated_at (moddatetime) even when the update did not set it."""
    with open_session("sandbox", scenario="workspaces-image-secret-unset", sandbox_dir=tmp_path) as s:
        world = world_of(s)
        pg_db.load(world)
    p = world.pipeline
    assert p.enum_type is not None and p.status_enum
    table, status, mid = p.table, p.columns["status"], p.columns["machine_id"]
    with PgClient(pg_db.url) as client:
        shape = next(t for t in client.tables() if t.name == table)
    assert shape.column(status).enum == tuple(p.status_enum)  # type: ignore[union-attr]
    assert any("moddatetime" in trigger for trigger in shape.triggers)
    with psycopg.connect(pg_db.admin) as conn:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation), conn.transaction():
            conn.execute(f'UPDATE "{table}" SET "{status}" = %s', ["not-a-word-of-the-enum"])
        with pytest.raises(psycopg.errors.NotNullViolation), conn.transaction():
            conn.execute(f'UPDATE "{table}" SET "{status}" = NULL')
        key, before = conn.execute(f'SELECT id, "{p.columns["updated_at"]}" FROM "{table}" LIMIT 1').fetchone()
        after = conn.execute(
            f'UPDATE "{table}" SET "{mid}" = "{mid}" WHERE id = %s RETURNING "{p.columns["updated_at"]}"', [key]
        ).fetchone()[0]
    assert after > before


def test_the_direct_source_is_read_only_by_default(pg_db: Database, tmp_path: Path) -> None:
    """A client opened without asking for writes cannot write: the database refuses it (SQLSTATE 25006)."""
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as s:
        pg_db.load(world_of(s))
    with PgClient(pg_db.url) as client, pytest.raises(VyxopsError) as caught:
        client.select_all("machines", ["id"], order="id")  # a read is fine
        client.run(psycopg.sql.SQL("DELETE FROM machines RETURNING id"), [], "machines")
    assert getattr(caught.value, "code", None) == "25006"
    with PgClient(pg_db.url, read_only=False) as writer:  # the same statement, when writes were asked for
        assert len(writer.run(psycopg.sql.SQL("DELETE FROM machines RETURNING id"), [], "machines")) == 1


@pytest.mark.parametrize("password", ["p@ss/w:rd?#1234", "plain-password-5678"])
def test_a_db_urls_password_is_masked_as_given_and_as_the_url_writes_it(password: str) -> None:
    """Once a URL is registered (a client does it before connecting), its password is masked in any text, in
    its plain and its percent-encoded form, and the rest of the URL stays readable."""
    from urllib.parse import quote

    from vyxops.core.redaction import redact, register_db_url

    pooler = "aws-0-eu-west-1.pooler.supabase.com:6543/postgres"
    url = f"postgresql://postgres.abcdefghijklmnopqrst:{quote(password, safe='')}@{pooler}"
    register_db_url(url)
    for text in (url, f"the password was {password}!"):
        masked = redact(text)
        assert password not in masked and quote(password, safe="") not in masked and "[REDACTED]" in masked
    assert pooler in redact(url)


def test_a_contract_naming_a_missing_column_is_an_input_error(pg_db: Database, tmp_path: Path) -> None:
    """As through PostgREST: a declared column the table lacks names the contract key, not a SQL error."""
    from dataclasses import replace

    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as s:
        world = world_of(s)
        pg_db.load(world)
    contract = pipeline_contract(world)
    wrong = replace(contract, table=replace(contract.table, columns=replace(contract.columns, error="no_such")))
    with PgClient(pg_db.url) as client, pytest.raises(InputError) as caught:
        fetch_machine_rows_direct(client, wrong)
    assert caught.value.name == "pipeline.table" and "no_such" in str(caught.value)


@pytest.mark.parametrize(
    "make_url",
    [
        lambda db: db.server.url(db.name, password="Wrong-Pass-" + db.server.password),
        lambda db: db.server.url("no_such_database"),
        lambda db: db.url.replace(f":{db.server.port}/", ":1/"),
    ],
    ids=["wrong-password", "no-database", "nothing-listening"],
)
def test_a_connection_that_fails_never_shows_the_password(make_url, pg_db: Database) -> None:  # type: ignore[no-untyped-def]
    """A refused or unreachable connection is a TransportError naming host, port, user and database, and neither
    the URL's password nor the right one appears in it, in its hint, or in its repr."""
    url = make_url(pg_db)
    with pytest.raises(TransportError) as caught:
        PgClient(url)
    said = f"{caught.value}\n{caught.value!r}\n{caught.value.hint}"
    for secret in (pg_db.server.password, url.split(":")[2].split("@")[0]):
        assert secret not in said
    assert "127.0.0.1:" in said and pg_db.server.role in said


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres.abcdefghijklmnopqrst:S3cret-Pass-Word@[::1/postgres",
        "postgresql://postgres:S3cret-Pass-Word@db.example.com:port/postgres",
        "mysql://root:S3cret-Pass-Word@localhost/db",
        "host=db.example.com password=S3cret-Pass-Word user=postgres",
    ],
    ids=["unbalanced-bracket", "port-not-a-number", "other-scheme", "keyword-form"],
)
def test_a_malformed_url_is_refused_without_quoting_it(url: str) -> None:
    """A URL libpq cannot read (whose own message would quote it whole) is an InputError naming SUPABASE_DB_URL
    and the URL shapes that work, before any connection; the password is nowhere in it."""
    with pytest.raises(InputError) as caught:
        PgClient(url)
    assert caught.value.name == "SUPABASE_DB_URL" and "pooler.supabase.com:6543" in str(caught.value)
    assert "S3cret-Pass-Word" not in str(caught.value)


def test_a_machine_without_postgresql_is_told_which_package_provides_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No pg_ctl on PATH nor in Debian's versioned directories: PostgresMissing names the package to install,
    and VYXOPS_REQUIRE_POSTGRES=1 (CI) is what turns the tests' skip into a failure."""
    from vyxops.testing.postgres import postgres_required
    from vyxops_sandbox import pg_server

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pg_server, "DEBIAN_BIN_GLOB", str(tmp_path / "*" / "bin"))
    with pytest.raises(pg_server.PostgresMissing, match="apt-get install -y postgresql"):
        pg_server.bin_dir()
    monkeypatch.setenv("VYXOPS_REQUIRE_POSTGRES", "1")
    assert postgres_required()
    monkeypatch.setenv("VYXOPS_REQUIRE_POSTGRES", "0")
    assert not postgres_required()


def test_times_and_uuids_read_as_postgrest_renders_them_whatever_the_roles_settings(pg_db: Database) -> None:
    """A role whose TimeZone and DateStyle are not UTC/ISO still reads each timestamptz as PostgreSQL's to_json
    writes it in UTC (fraction's zeros trimmed), each timestamp as written, and each uuid as its text."""
    stamps = ["2025-10-02 16:18:40.5+00", "2025-10-02 16:18:40+00", "2025-10-02 16:18:40.123456+00", "infinity"]
    with psycopg.connect(pg_db.admin, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE \"{pg_db.server.role}\" SET TimeZone TO 'Asia/Kolkata'")
        conn.execute(f"ALTER ROLE \"{pg_db.server.role}\" SET DateStyle TO 'SQL, DMY'")
        conn.execute(
            "CREATE TABLE public.times (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), t timestamptz, l timestamp)"
        )
        for stamp in stamps:
            conn.execute(
                "INSERT INTO public.times (t, l) VALUES (%s::timestamptz, %s::timestamptz::timestamp)", [stamp, stamp]
            )
        conn.execute(f'GRANT SELECT ON public.times TO "{pg_db.server.role}"')
        conn.execute("SET TimeZone TO 'UTC'")
        expected = conn.execute(
            "SELECT id::text, to_json(t) #>> '{}', to_json(t::timestamp) #>> '{}' FROM public.times ORDER BY id"
        ).fetchall()
    with PgClient(pg_db.url) as client:
        got = client.select_all("times", ["id", "t", "l"], order="id")
    assert [(r["id"], r["t"], r["l"]) for r in got] == expected
    assert {r["t"] for r in got} >= {"2025-10-02T16:18:40.5+00:00", "2025-10-02T16:18:40+00:00"}


def test_a_served_worlds_database_follows_the_world(tmp_path: Path, pg_databases: Databases) -> None:
    """What `vyxops sandbox serve --postgres` will run: a server holding the world's table at the URL it prints
    (database `postgres`, as Supabase's), and a row the world changes is the row the database then holds.
    (``pg_databases``: its rule for a machine without PostgreSQL, skip or, in CI, fail.)"""
    from vyxops_sandbox.pg_load import sync_rows, world_database

    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path) as s:
        world = world_of(s)
        contract = pipeline_contract(world)
        with world_database(world) as (server, url):
            assert url.endswith("/postgres") and server.password not in repr(server)
            with PgClient(url) as client:
                before = fetch_machine_rows_direct(client, contract)
                (row,) = world.db_update("machines", {"status": "starting"}, {"status": "failed"})
                sync_rows(server.admin_conninfo("postgres"), world)
                after = fetch_machine_rows_direct(client, contract)
                rest = frames.fetch_machine_rows(s, contract)
    assert before["status"].tolist() == ["starting"] and after["status"].tolist() == ["failed"]
    _frames_equal(after, rest)
    assert after["updated_at_raw"].tolist() == [row["updated_at"]]

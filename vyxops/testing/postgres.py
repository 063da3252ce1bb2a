"""A real PostgreSQL for the tests: one throwaway server per test session, a fresh database per test.

The server's lifecycle lives in :mod:`vyxops_sandbox.pg_server` (``vyxops sandbox serve --postgres`` uses it
too); this module adds what tests need on top: databases made from one template (``CREATE DATABASE …
TEMPLATE``, a file copy, much quicker than a load from nothing), a world's tables loaded into one, and the rule
for a machine without PostgreSQL: skipped, said why, except where ``VYXOPS_REQUIRE_POSTGRES=1`` (CI) makes it
a failure.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from vyxops.core.contract import Columns, Contract, StatusWords, Table
from vyxops_sandbox.pg_load import load_world
from vyxops_sandbox.pg_server import PgServer, PostgresMissing, running_postgres
from vyxops_sandbox.world import World

REQUIRE_ENV = "VYXOPS_REQUIRE_POSTGRES"
TEMPLATE = "vyxops_template"


def postgres_required() -> bool:
    """Whether a missing PostgreSQL fails the run (CI sets VYXOPS_REQUIRE_POSTGRES=1) rather than skips."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


@dataclass(frozen=True)
class Database:
    """One test's database on the session's server."""

    server: PgServer
    name: str

    @property
    def url(self) -> str:
        """The login role's URL (over TCP, with its password): what a user would put in SUPABASE_DB_URL."""
        return self.server.url(self.name)

    @property
    def admin(self) -> str:
        """The superuser's conninfo (Unix socket, trusted): for loading and for checking what was written."""
        return self.server.admin_conninfo(self.name)

    def load(self, world: World) -> dict[str, int]:
        """The world's tables, DDL and rows, loaded into this database (the login role granted them)."""
        return load_world(self.admin, world, grant_to=self.server.role)


class Databases:
    """Fresh databases on one server, each a copy of a template kept empty."""

    def __init__(self, server: PgServer) -> None:
        import psycopg
        from psycopg import sql

        self.server = server
        self._numbers = itertools.count(1)
        with psycopg.connect(server.admin_conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))

    def create(self) -> Database:
        import psycopg
        from psycopg import sql

        name = f"test_{next(self._numbers)}"
        with psycopg.connect(self.server.admin_conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE)
                )
            )
        return Database(self.server, name)

    def drop(self, db: Database) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.server.admin_conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.name)))


def pipeline_contract(world: World) -> Contract:
    """The contract that fits ``world``'s pipeline exactly, from the sandbox's own block (which the product never
    sees): what a team would declare, so that a read through either source is of the right columns."""
    p = world.pipeline
    named = {k: v or "" for k, v in p.columns.items()}
    columns = Columns(key="id", region="region", **named)
    status = StatusWords(**{role: tuple(words) for role, words in p.status.items()})
    return Contract(function=p.function, table=Table(p.table, columns), status=status, source="declared (test)")


@contextmanager
def session_databases() -> Iterator[Databases]:
    """A server for the session, with its template; :class:`PostgresMissing` when the machine has none."""
    with running_postgres() as server:
        yield Databases(server)


__all__ = [
    "REQUIRE_ENV",
    "Database",
    "Databases",
    "PostgresMissing",
    "pipeline_contract",
    "postgres_required",
    "session_databases",
]

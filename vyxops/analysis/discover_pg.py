"""Discovery's view of the tables from the database's own catalog, instead of PostgREST's OpenAPI.

:mod:`vyxops.analysis.discover_table` reads each table as a :class:`~vyxops.analysis.discover_table.TableShape`
whose columns are OpenAPI properties (``type``, ``format``, ``enum``, ``default``, a primary key's ``<pk/>``
description). The catalog (:meth:`vyxops.fetch.clients.postgres.PgClient.tables`) says the same things, and more
(NOT NULLs, CHECK constraints, triggers, kept on :class:`~vyxops.fetch.clients.postgres.CatalogTable`); this module
writes each column as the property PostgREST would have served for it (PostgREST's ``makeProperty``), so that
everything downstream of ``tables_of`` works unchanged whichever way the shape was read."""

from __future__ import annotations

import re
from typing import Any

from vyxops.analysis.discover_table import TableShape, order_column
from vyxops.core.checks import TABLE_NAME
from vyxops.core.errors import ApiError
from vyxops.fetch.clients.postgres import CatalogColumn, CatalogTable, PgClient

#: What PostgREST writes as a primary key column's description (discovery looks for ``<pk/>``).
PK_NOTE = "Note:\nThis is a Primary Key.<pk/>"
#: A default that is a quoted literal with a cast (``'x'::text``): PostgREST serves the literal.
_LITERAL_DEFAULT = re.compile(r"^'((?:[^']|'')*)'::[\w .\"\[\]]+$")


#: PostgreSQL's SQLSTATE for a right the role lacks.
INSUFFICIENT_PRIVILEGE = "42501"


def column_property(column: CatalogColumn) -> dict[str, Any]:
    """The OpenAPI property PostgREST serves for ``column``."""
    out: dict[str, Any] = {}
    if column.default is not None:
        literal = _LITERAL_DEFAULT.match(column.default)
        out["default"] = literal[1].replace("''", "'") if literal else column.default
    if column.primary_key:
        out["description"] = PK_NOTE
    if column.enum is not None:
        out["enum"] = list(column.enum)
    out["format"] = column.type
    out["type"] = column.json_type
    return out


def catalog_shapes(tables: list[CatalogTable]) -> list[TableShape]:
    """The tables as discovery reads them (no rows yet); a name that would not stay one path segment is left out,
    as :func:`vyxops.analysis.discover_table.tables_of` leaves it."""
    return [
        TableShape(t.name, {c.name: column_property(c) for c in t.columns})
        for t in tables
        if TABLE_NAME.fullmatch(t.name)
    ]


def read_tables_direct(client: PgClient, sample: int) -> list[TableShape]:
    """The schema's tables with each one's newest ``sample`` rows, read from the database (discovery's input)."""
    shapes = catalog_shapes(client.tables())
    for t in shapes:
        column = order_column(t)
        try:
            t.rows = client.newest_rows(t.name, column, sample) if column else []
        except ApiError as exc:  # listed for a column right (UPDATE, say) but not readable: says nothing, as
            if exc.code != INSUFFICIENT_PRIVILEGE:  # a view PostgREST may not read says nothing (discover._rows_of)
                raise
            t.rows = []
    return shapes

"""The machine_rows frame read from the database directly (:mod:`vyxops.fetch.clients.postgres`).

The same frame, schema and row order as :func:`vyxops.fetch.frames.fetch_machine_rows` builds from PostgREST: the
contract's columns under the names the contract gives them, ordered by the key (else created_at) ascending
with nulls last, ``app``'s rows only when the table has an app column. The rows arrive rendered as PostgREST's
JSON would render them, column by column, so :func:`vyxops.fetch.frames.table_columns_frame` builds both; only the
frame's ``source`` differs.
"""

from __future__ import annotations

import pandas as pd

from vyxops.core.contract import Contract
from vyxops.core.errors import ApiError, InputError
from vyxops.fetch.clients.postgres import PgClient
from vyxops.fetch.frames import table_columns_frame

#: SQLSTATEs of a table or column the contract names that the database lacks (PostgreSQL's errcodes).
UNDEFINED_TABLE, UNDEFINED_COLUMN = "42P01", "42703"


def fetch_machine_rows_direct(client: PgClient, contract: Contract, *, app: str | None = None) -> pd.DataFrame:
    """Every row of the contract's table (``app``'s only, when the table has an app column) in one read.

    A column or table the contract names that the database lacks is an InputError naming the contract key,
    as through PostgREST.
    """
    t = contract.table
    named = t.columns.named()
    filters: list[tuple[str, object]] = [(named["app"], app)] if app and "app" in named else []
    try:
        columns = client.select_columns(
            t.name, list(named.values()), order=named.get("key") or named["created_at"], filters=filters
        )
    except ApiError as exc:
        if exc.code not in (UNDEFINED_TABLE, UNDEFINED_COLUMN):
            raise
        raise InputError(
            "pipeline.table",
            f"the contract's table {t.name} ({', '.join(named.values())}) does not fit the database: {exc.message}",
            hint="fix vyxops.toml (or --contract FILE), or run `vyxops init` to discover the contract",
        ) from None
    length = len(next(iter(columns.values()), []))
    source = f"postgres SELECT FROM public.{t.name} ({client.target.host})"
    return table_columns_frame(columns, length, contract, source=source)

"""The session's optional direct-database source: ``SUPABASE_DB_URL`` (the CLI's ``--db-url`` puts its value there,
for the kernel too, never into a notebook parameter), read-only unless a fix asks for a writer.

The URL is checked (an InputError naming ``SUPABASE_DB_URL``, before any call) and its password registered for
redaction when the session opens; the connection is made at the first read, so a session that reads nothing from
the table opens none. The URL lives only in this object, which never shows it.
"""

from __future__ import annotations

from collections.abc import Mapping

from vyxops.fetch.clients.postgres import DB_URL_ENV, PgClient, parse_db_url

__all__ = ["DB_URL_ENV", "DirectDb", "direct_db"]


class DirectDb:
    """One database URL: a read-only client made once (:meth:`reader`), a writer made per fix (:meth:`writer`)."""

    def __init__(self, url: str) -> None:
        self.target = parse_db_url(url)  # InputError naming SUPABASE_DB_URL; the password registered
        self.__url = url.strip()
        self._reader: PgClient | None = None

    def __repr__(self) -> str:
        return f"DirectDb({self.target})"

    @property
    def where(self) -> str:
        """Where it points (user@host:port/database), for reports and hints: never the password."""
        return str(self.target)

    def reader(self) -> PgClient:
        """The read-only client, connected at the first call (TransportError when the database cannot be reached)."""
        if self._reader is None:
            self._reader = PgClient(self.__url)
        return self._reader

    def writer(self) -> PgClient:
        """A new client that may write (the caller closes it): only a fix that runs asks for one."""
        return PgClient(self.__url, read_only=False)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def direct_db(env: Mapping[str, str]) -> DirectDb | None:
    """The direct source ``env`` names (``SUPABASE_DB_URL``), or None when it names none."""
    url = (env.get(DB_URL_ENV) or "").strip()
    return DirectDb(url) if url else None

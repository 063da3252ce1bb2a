"""A throwaway PostgreSQL server: ``initdb`` and ``pg_ctl`` in a temporary directory, stopped by whoever started it.

The tests and ``vyxops sandbox serve --postgres`` both use it, so it lives beside the simulator (which the
product never imports) and needs nothing of the product. It listens on a Unix socket in its own directory
(trusted: the superuser ``postgres`` administers through it) and on 127.0.0.1 at a free port, where a login
role with a password authenticates by SCRAM, so the URLs it hands out look like a real project's and a wrong
password is refused as a real server refuses it.

PostgreSQL refuses to run as root: under root the server runs as the ``postgres`` user the Debian package
creates (else ``nobody``), and its directory is made theirs.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

#: Where Debian's ``postgresql`` package puts the server's programs (one directory per major version).
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"
LOGIN_ROLE = "vyxops"
#: Settings for a server whose data is thrown away: no fsync, small, quick to stop.
_SERVER_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "shared_buffers=32MB",
    "max_connections=40",
    "listen_addresses=127.0.0.1",
)
_START_TIMEOUT_S = 30


class PostgresMissing(RuntimeError):
    """No ``initdb``/``pg_ctl`` on this machine (Debian's ``postgresql`` package provides them)."""


class PostgresFailed(RuntimeError):
    """``initdb`` or ``pg_ctl`` failed; the message holds the tail of its log."""


def find_pg_bin(program: str = "pg_ctl") -> Path | None:
    """``program`` (``pg_ctl``, ``initdb``, ``postgres``) from PATH, else the newest Debian version's bin directory.

    PATH's copy is taken only when ``postgres`` sits beside it (Debian links ``pg_ctl`` into PATH but not
    ``initdb`` on every version); otherwise the versioned directory wins, so the programs are one version.
    """
    found = shutil.which(program)
    if found is not None:
        real = Path(found).resolve()
        if (real.parent / "postgres").exists() and (real.parent / "initdb").exists():
            return real
    versions = sorted(glob.glob(DEBIAN_BIN_GLOB), key=_major, reverse=True)
    for directory in versions:
        candidate = Path(directory) / program
        if candidate.exists():
            return candidate
    return None


def _major(directory: str) -> int:
    name = Path(directory).parent.name
    return int(name) if name.isdigit() else 0


def bin_dir() -> Path:
    """The directory holding initdb, pg_ctl and postgres; PostgresMissing when there is none."""
    pg_ctl = find_pg_bin("pg_ctl")
    if pg_ctl is None or not (pg_ctl.parent / "initdb").exists():
        raise PostgresMissing(
            "no PostgreSQL server programs (initdb, pg_ctl) on PATH or in "
            f"{DEBIAN_BIN_GLOB}: install Debian's `postgresql` package (apt-get install -y postgresql)"
        )
    return pg_ctl.parent


@dataclass(frozen=True)
class PgServer:
    """A running throwaway server: where it listens and the login role's credentials."""

    directory: Path  # its data, log and Unix socket
    port: int
    role: str
    password: str = field(repr=False)  # a dataclass repr would print it (a test failure, a log)

    @property
    def socket_dir(self) -> Path:
        return self.directory

    def url(self, database: str, *, role: str | None = None, password: str | None = None) -> str:
        """A libpq URL for ``database`` over TCP on 127.0.0.1, as the login role (password URL-encoded)."""
        user = quote(role or self.role, safe="")
        secret = quote(self.password if password is None else password, safe="")
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/{quote(database, safe='')}"

    def admin_conninfo(self, database: str = "postgres") -> str:
        """Keyword conninfo for the superuser over the Unix socket (trusted: no password)."""
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={database}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when this process is root (the server refuses root), else None."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise PostgresFailed("running as root with neither a `postgres` nor a `nobody` user to run the server as")


def _base_dir(who: tuple[int, int] | None) -> str | None:
    """Where the server's directory goes: the usual temp dir, unless the server runs as another user who could not
    reach it (a TMPDIR under /root): then /tmp. A Unix socket's path is short there too (libpq's limit is 107)."""
    if who is None:
        return None
    base = Path(tempfile.gettempdir()).resolve()
    reachable = all(p.stat().st_mode & 0o001 for p in (base, *base.parents))
    return str(base) if reachable else "/tmp"


def _run(argv: list[str], who: tuple[int, int] | None, log: Path) -> None:
    """Run one of the server's programs (as ``who``, when given), its output appended to ``log``."""
    user, group = who if who is not None else (None, None)
    with log.open("ab") as out:
        done = subprocess.run(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=_START_TIMEOUT_S,
            user=user,
            group=group,
            extra_groups=[] if who is not None else None,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-20:]
        raise PostgresFailed(f"{Path(argv[0]).name} exited {done.returncode}:\n" + "\n".join(tail))


@contextlib.contextmanager
def running_postgres(*, role: str = LOGIN_ROLE, password: str | None = None) -> Iterator[PgServer]:
    """Start a server in a fresh temporary directory; stop it and delete the directory on leaving.

    The login role ``role`` gets ``password`` (random when None) and may create databases; it owns nothing yet.
    """
    import psycopg
    from psycopg import sql

    binaries = bin_dir()
    who = _run_as()
    directory = Path(tempfile.mkdtemp(prefix="vyxops-pg-", dir=_base_dir(who)))
    data, log = directory / "data", directory / "server.log"
    started = False
    try:
        if who is not None:
            os.chown(directory, *who)
        log.touch()
        if who is not None:
            os.chown(log, *who)
        _run(
            [str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "-E", "UTF8", "--no-locale", "--no-sync",
             "--auth-local=trust", "--auth-host=scram-sha-256"],
            who,
            log,
        )  # fmt: skip
        port = _free_port()
        options = " ".join([f"-p {port}", f"-k {directory}", *(f"-c {s}" for s in _SERVER_SETTINGS)])
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o", options, "start"], who, log)
        started = True
        server = PgServer(directory, port, role, password or secrets.token_urlsafe(18))
        with psycopg.connect(server.admin_conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(server.password)
                )
            )
        yield server
    finally:
        if started:
            with contextlib.suppress(PostgresFailed, subprocess.TimeoutExpired):
                _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], who, log)
        shutil.rmtree(directory, ignore_errors=True)

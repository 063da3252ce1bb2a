"""Checks of a user's input that need no platform: each raises an InputError naming the input and what is valid.

Light to import (no pandas): the CLI runs them before it starts any work, and the
package runs the same ones where a notebook passes the same values.
"""

from __future__ import annotations

import math
import os
import re
import socket
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vyxops.core.config import Target, parse_target, writable_dir_problem
from vyxops.core.errors import InputError
from vyxops.core.timeutil import TIME_FORMS, TimeInput, iso, parse_rfc3339_ms, parse_time_input

if TYPE_CHECKING:  # Apprise is imported only when a notification is asked for
    from apprise import Apprise

APP_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
#: A Fly machine id as it may go into a URL path (14 hex characters today; some slack, never a '/').
MACHINE_ID = re.compile(r"[0-9a-z]{8,32}")
#: A table name as it may go into a PostgREST path (``/rest/v1/<table>``, joined unescaped by postgrest-py's
#: ``base_url.joinpath``): a Postgres identifier's letters, digits, ``_`` and ``$`` (and ``-``), at most 63 bytes
#: (NAMEDATALEN - 1), never a '/', '.', '?', '%' or space that would move the request elsewhere.
TABLE_NAME = re.compile(r"(?!\d)[\w$-]{1,63}")
#: Times vyxops accepts: the platforms keep nothing older, and nothing is newer than this century.
EARLIEST_MS = parse_rfc3339_ms("2015-01-01T00:00:00Z")
LATEST_MS = parse_rfc3339_ms("2100-01-01T00:00:00Z")
#: How long a DB row may sit in a transitional status before it is stuck: the one default of `--stuck-after`,
#: the library calls and the notebooks' `stuck_after_minutes` parameter (tests/test_notebooks.py ties them).
STUCK_AFTER_MIN = 10.0
MAX_STUCK_AFTER_MIN = 525_600  # a year of minutes
#: `--fail-on` (and the audit notebook's `fail_on`): the severities an audit may fail at, worst first.
FAIL_ON_LEVELS = ("critical", "warning")
FAIL_ON_DEFAULT = "critical"


def check_app(app: str | None, name: str = "--app") -> str:
    """A Fly app name (it goes into URL paths)."""
    if not app or not APP_NAME.fullmatch(app):
        raise InputError(name, f"{app!r} is not a Fly app name", allowed="lower-case letters, digits and '-'")
    return app


def check_machine_id(machine_id: str | None) -> str | None:
    """A ``--machine`` value goes into a URL path: anything not shaped like a machine id is refused."""
    if machine_id is not None and not MACHINE_ID.fullmatch(machine_id):
        raise InputError(
            "--machine",
            f"{machine_id!r} is not a Fly machine id",
            allowed="lower-case letters and digits, e.g. 5683732efe3208",
        )
    return machine_id


def check_machine_of_app(
    machine_id: str,
    app: str,
    *,
    fly: Mapping[str, int | None],
    rows: Mapping[str, int | None],
    end_ms: int,
    where: str = "",
    hint: str | None = None,
) -> None:
    """``--machine`` names one of the app's machines in the window, or it is bad input (SPEC.md: exit 2).

    The one rule, for the CLI's check before its kernel starts and the investigation's own: a machine is the
    app's when Fly shows it for the app (listed, or read by id: ``fly``, id → created_at in Unix ms) or when one
    of the app's own rows names it (``rows``, id → the earliest such row's created_at). A row is evidence in its
    own right: a machine destroyed past Fly's retention, or one whose create Fly refused after the function wrote
    the row, is known only from it, and the findings name it. It must have existed by the window's end.
    """
    if machine_id in fly:
        created, what = fly[machine_id], "was created"
    elif machine_id in rows:
        created, what = rows[machine_id], "was first named by a row"
    else:
        raise InputError(
            "--machine",
            f"machine {machine_id} is neither one of app {app}'s machines on Fly (listed or read by id) "
            f"nor named by any of its rows{where}",
            allowed=sorted({*fly, *rows})[:20] or "none: the app has no machines and no rows name one",
            hint=hint,
        )
    if created is not None and created > end_ms:
        raise InputError(
            "--machine",
            f"machine {machine_id} {what} at {iso(created)}, after the window ends ({iso(end_ms)})",
            hint="widen the window with --until",
        )


def check_tz(tz: str | None) -> None:
    """``--tz``: an IANA time zone name (None or "" is UTC)."""
    if not tz or tz == "UTC":
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError("--tz", f"{tz!r} is not a time zone", allowed="an IANA name, e.g. UTC, Europe/Paris") from None


def check_time(value: str | None, name: str, tz: str = "UTC") -> int | None:
    """Unix ms of a time (None when not given, or when it is a duration: see :func:`check_time_input`)."""
    given = check_time_input(value, name, tz)
    return None if given is None else given.ms


def check_time_input(value: str | None, name: str, tz: str = "UTC") -> TimeInput | None:
    """A ``--since``/``--until`` value read as :func:`vyxops.core.timeutil.parse_time_input` reads it (any of
    :data:`~vyxops.core.timeutil.TIME_FORMS`, a zone-less time in ``tz``); None when not given. "nan", "now"
    and far-off years are refused, each naming the option and listing the forms it takes."""
    if value is None or str(value).strip() == "":
        return None
    try:
        given = parse_time_input(str(value), tz)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(name, f"{value!r} {exc}", allowed="; ".join(TIME_FORMS)) from None
    if given.ms is not None and not EARLIEST_MS <= given.ms < LATEST_MS:
        raise InputError(name, f"{value!r} is out of range", allowed=f"{iso(EARLIEST_MS)} .. {iso(LATEST_MS)}")
    if given.ago_ms is not None and given.ago_ms >= LATEST_MS - EARLIEST_MS:
        raise InputError(name, f"{value!r} is out of range", allowed="a duration shorter than a few years")
    return given


def check_window(since: str | None, until: str | None, tz: str = "UTC") -> tuple[int | None, int | None]:
    """Both times valid (a zone-less one read in ``tz``), and ``since`` before ``until`` when both are instants.

    A duration is an instant only once the target's now is known (:func:`vyxops.analysis.evidence.parse_window`):
    it reads as None here.
    """
    start, end = check_time(since, "--since", tz), check_time(until, "--until", tz)
    if start is not None and end is not None and start >= end:
        raise InputError("--since/--until", f"since ({iso(start)}) must be before until ({iso(end)})")
    return start, end


def out_path(text: str) -> Path:
    """``--out`` as given: an empty one (a shell's unset variable) is refused, never read as the working directory."""
    if not text.strip():
        raise InputError("--out", "is empty", allowed="a directory path, e.g. out/run1 (made if missing); '.' for here")
    return Path(text)


def check_stuck_after(minutes: float | None) -> float | None:
    """``--stuck-after``: minutes, finite and above zero.

    Zero is refused with the negatives: a row is then "stuck" the moment it is written, so every provisioning in
    flight would be reported as stuck. The top is a year, past every platform's retention.
    """
    # A notebook's parameter arrives as papermill parsed it (`-p stuck_after_minutes abc` is a str, `True` a bool):
    # only a number is minutes, so anything else is this error too, not a TypeError from math.
    number = isinstance(minutes, (int, float)) and not isinstance(minutes, bool)
    if minutes is not None and not (number and math.isfinite(minutes) and 0 < minutes <= MAX_STUCK_AFTER_MIN):
        raise InputError(
            "--stuck-after",
            f"{minutes!r} is not a number of minutes",
            allowed=f"above 0, at most {MAX_STUCK_AFTER_MIN}",
        )
    return minutes


def check_fail_on(level: str) -> str:
    """``--fail-on``: one of :data:`FAIL_ON_LEVELS` (a notebook's ``fail_on`` is checked by the same function)."""
    if level not in FAIL_ON_LEVELS:
        raise InputError("--fail-on", f"{level!r} is not a severity to fail on", allowed=", ".join(FAIL_ON_LEVELS))
    return level


def check_fixes(fixes: Sequence[str] | None, known: Sequence[str]) -> list[str]:
    """``--fix`` (the remediate notebook's ``fixes``): each code one of ``known``, the registered fixes' codes
    (:data:`vyxops.act.fixes.FIX_CODES`, passed in: the registry sits above this module); the codes once each, in
    order."""
    wanted = list(dict.fromkeys(fixes or []))
    for code in wanted:
        if code not in known:
            raise InputError("--fix", f"unknown fix {code!r}", allowed=list(known))
    return wanted


def check_scenario(target: Target, scenario: str | Path | None) -> None:
    """``--scenario`` loads the sandbox: with another target it would be ignored, so it is refused."""
    if target.kind != "sandbox" and scenario:
        raise InputError("--scenario", "only applies to --target sandbox")


def check_inputs(
    *,
    target: str | None = "sandbox",
    scenario: str | Path | None = None,
    apps: Sequence[str] = (),
    machine_id: str | None = None,
    tz: str | None = None,
    since: str | None = None,
    until: str | None = None,
    stuck_after_minutes: float | None = None,
    fail_on: str | None = None,
) -> str | None:
    """A run's inputs that need no platform, in the order the CLI checks its flags; returns the machine id.

    The one set of checks for both doors: :func:`vyxops.shell.cli.check_common` passes the flags, and
    :func:`vyxops.nbtools.setup` a notebook's parameters, so a papermill run with a bad ``tz`` is the same
    InputError as ``--tz``.
    """
    check_scenario(parse_target(target), scenario)
    for app in apps:
        check_app(app)
    machine = check_machine_id(machine_id)
    check_tz(tz)
    check_window(since, until, tz or "UTC")
    check_stuck_after(stuck_after_minutes)
    if fail_on is not None:
        check_fail_on(fail_on)
    return machine


def notify_sender(url: str) -> Apprise:
    """``--notify``: an Apprise sender for ``url``, or the InputError naming it when Apprise cannot use it (nothing is
    sent here: :func:`check_notify_url` runs it before the audit, :func:`vyxops.shell.notify.notify_failure` sends)."""
    import apprise  # only when a notification is asked for

    sender = apprise.Apprise()
    if not sender.add(url):
        scheme = url.split("://", 1)[0] if "://" in url else "(none)"
        raise InputError(
            "--notify",
            f"not a notification URL Apprise knows (scheme {scheme!r})",
            allowed="an Apprise URL, e.g. slack://…, mailto://…, json://host:port/path",
        )
    return sender


def check_notify_url(url: str) -> None:
    """Refuse a URL Apprise cannot use, before the audit runs (nothing is sent)."""
    notify_sender(url)


def check_out(out: Path, writes: tuple[str, ...] = ()) -> Path:
    """``--out`` is (or can be made) a writable directory, and none of the files a run writes there is a directory.

    Nothing is written: :func:`make_out` makes it once every other input has passed.
    """
    problem = writable_dir_problem(out)
    if problem:
        raise InputError("--out", problem, allowed="a writable directory (made if missing)")
    for name in writes:
        if (out / name).is_dir():
            raise InputError(
                "--out",
                f"{out / name} is a directory, but the run writes a file there",
                hint="remove it or choose another --out",
            )
    return out


def make_out(out: Path) -> Path:
    """Make ``--out`` and try a write there (the last check, after every other input passed)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".vyxops-write-check-"):
            pass
    except OSError as exc:
        raise InputError("--out", f"{out} is not a writable directory ({exc.strerror or type(exc).__name__})") from None
    return out


def check_port(port: int) -> int:
    """A TCP port that 127.0.0.1 can listen on now (0: any free one)."""
    if not 0 <= port <= 65535:
        raise InputError("--port", f"{port} is not a TCP port", allowed="1-65535, or 0 for any free port")
    if port == 0:
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise InputError(
                "--port", f"127.0.0.1:{port} is not free ({exc.strerror})", hint="choose another --port"
            ) from None
    return port

"""``vyxops``: one verb per notebook, plus sandbox control (SPEC.md "Entry points").

Exit status: 0 done, 1 findings at or above --fail-on (audit), 2 bad input,
3 the platform could not be reached or refused (or the notebook's kernel was killed: rerun),
130 interrupted (Ctrl-C). Every check that needs no
platform runs before any work starts (:mod:`vyxops.core.checks`); no traceback
reaches a user, and every error line starts with one ``vyxops:``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vyxops import __version__
from vyxops.core import checks  # checks: light (no pandas), its defaults shape the parser
from vyxops.core.errors import InputError, VyxopsError, exit_code_for
from vyxops.core.text import for_terminal, one_line  # the one home of terminal text (for_terminal: say, stderr)

#: What each verb writes into --out (checked to be files, not directories, before a run).
WRITES = {
    "investigate": ("investigate.ipynb", "investigate.html", "findings.json", "timeline.parquet", "postmortem.md"),
    "remediate": ("remediate.ipynb", "remediate.html", "plan.json", "result.json"),
    "audit": ("audit.ipynb", "audit.html", "audit.json"),
    "capture": ("bundle.json", "exchanges.jsonl"),
}
_ARGUMENT = re.compile(r"argument (\S+?):")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as an InputError (exit 2) naming the input.

    Options are never abbreviated (``allow_abbrev=False``, for this parser and, as their class, every verb's):
    ``--ap`` is an unknown option, not ``--app``, so a typo cannot quietly change what a command means.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._seen: list[str] = []

    def parse_known_args(  # type: ignore[override]  # argparse overloads it on the namespace type
        self, args: Any = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._seen = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        unknown = self._unknown_option()
        if unknown is not None:  # said before "--app is required": the typo is what the user must fix
            raise unknown
        named = _ARGUMENT.search(message)
        name = named.group(1).split("/")[0] if named else "usage"
        message = _ARGUMENT.sub("", message).strip() if named else message
        raise InputError(name, message, hint=f"see `{self.prog} --help`")

    def _verbs(self) -> dict[str, _Parser]:
        return {
            name: sp
            for action in self._actions
            if isinstance(action, argparse._SubParsersAction)
            for name, sp in action.choices.items()
            if isinstance(sp, _Parser)
        }

    def _unknown_option(self) -> InputError | None:
        """The first ``--option`` this parser was given and does not know, as an InputError naming it."""
        import difflib

        verbs = self._verbs()
        known = list(self._option_string_actions)
        for token in self._seen:
            if token == "--":
                break
            if token in verbs:  # the rest is the verb's to judge
                return verbs[token]._unknown_option()
            name = token.split("=", 1)[0]
            if name.startswith("--") and name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
                hint = f"did you mean {close[0]}? options are never abbreviated" if close else None
                return InputError(name, "unknown option", hint=hint or f"see `{self.prog} --help`")
        return None


if TYPE_CHECKING:
    # What add_subparsers returns; argparse names no public type for it, typeshed this one.
    _Subparsers = argparse._SubParsersAction[_Parser]


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vyxops", description="Investigate and fix Fly.io + Supabase incidents.")
    p.add_argument("--version", action="version", version=f"vyxops {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser, metavar="VERB")
    _investigate_parser(sub)
    _remediate_parser(sub)
    _audit_parser(sub)
    _capture_parser(sub)
    _init_parser(sub)
    _doctor_parser(sub)
    _sandbox_parsers(sub)
    _log_parser(sub)
    return p


def _common(sp: argparse.ArgumentParser, out: bool = True, db: bool = True) -> None:
    sp.add_argument(
        "--target", default="sandbox", help="where the platforms are: sandbox (default) | live | bundle:PATH"
    )
    sp.add_argument(
        "--scenario", help="sandbox only: a shipped scenario (see `vyxops scenarios`) or a YAML file; default: kept"
    )
    sp.add_argument(
        "--contract",
        metavar="FILE",
        help="the team's pipeline contract (a vyxops.toml); default: the project's vyxops.toml or "
        "[tool.vyxops.pipeline], else discovered from the platforms",
    )
    if db:
        sp.add_argument(
            "--db-url",
            metavar="URL",
            help="the project's PostgreSQL URL (default: $SUPABASE_DB_URL, which keeps it out of the process list): "
            "the table's rows and shape are read from it; it reaches the notebook's kernel through the environment",
        )
    if out:
        sp.add_argument(
            "--out",
            type=_out_path,
            help="directory for the notebook, report and results (default: out/VERB-APP-<UTC time>, made if missing)",
        )


def default_out(verb: str, apps: list[str], all_apps: bool = False, now: float | None = None) -> Path:
    """``out/<verb>-<app>-<UTC time>`` (``YYYYMMDDTHHMMSSZ``, the machine's clock): a fresh folder per run that sorts
    by time; several apps are joined with ``+``, ``--all`` is ``all``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    who = "all" if all_apps else "+".join(apps)
    return Path("out") / "-".join(part for part in (verb, who, stamp) if part)


def _default_out(args: argparse.Namespace) -> None:
    """Give a verb that writes into --out its default folder when none was given."""
    if args.verb in WRITES and getattr(args, "out", "absent") is None:
        apps = getattr(args, "apps", None) or ([args.app] if getattr(args, "app", None) else [])
        args.out = default_out(args.verb, apps, getattr(args, "all_apps", False))


def _out_path(text: str) -> Path:
    from vyxops.core.checks import out_path

    return out_path(text)


def _window(sp: argparse.ArgumentParser) -> None:
    forms = "RFC 3339, the report's own format, or a duration before --until/now (30m, 2h, 1d12h); no zone: --tz"
    sp.add_argument("--since", help=f"start of the window: {forms} (default: 24 h before --until)")
    sp.add_argument("--until", help=f"end of the window: {forms} (default: the target's now)")


def _stuck(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--stuck-after",
        type=float,
        default=checks.STUCK_AFTER_MIN,
        dest="stuck_after_minutes",
        metavar="MIN",
        help=f"minutes a DB row may stay in a transitional status (default {checks.STUCK_AFTER_MIN:g})",
    )


def _tz(sp: argparse.ArgumentParser, shown: str = "times shown in the report and ") -> None:
    sp.add_argument(
        "--tz",
        default="UTC",
        help=f"time zone for {shown}--since/--until given without one, e.g. Europe/Paris (default UTC)",
    )


def _probe(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--probe",
        action="store_true",
        help="provision a canary first (logged in the audit log, cleaned up) to see provisioning work now; "
        "refused up front when it cannot work",
    )


def _investigate_parser(sub: _Subparsers) -> None:
    inv = sub.add_parser("investigate", help="reconstruct an incident and name its root cause")
    _common(inv)
    inv.add_argument("--app", required=True, help="the Fly app whose provisioning to investigate")
    inv.add_argument(
        "--machine", dest="machine_id", metavar="ID", help="focus the timeline and machine findings on one machine"
    )
    _window(inv)
    _stuck(inv)
    _tz(inv)
    _probe(inv)


def _remediate_parser(sub: _Subparsers) -> None:
    rem = sub.add_parser("remediate", help="plan fixes (dry run) and, with --apply --confirm APP, apply them")
    _common(rem)
    rem.add_argument("--app", required=True, help="the Fly app to fix")
    # The codes come from the fix registry (vyxops.act.fixes), read when the command runs: importing it
    # here would cost every verb's start the registry's imports (pandas).
    rem.add_argument(
        "--fix",
        nargs="+",
        dest="fixes",
        metavar="CODE",
        help="only these fixes (codes as in plan.json; an unknown code is refused with the list)",
    )
    rem.add_argument(
        "--strategy",
        choices=("pin", "pin-digest", "latest"),
        default="pin",
        help="pin the image secret to the release's tag (default) or digest, or tag :latest and unset the secret",
    )
    rem.add_argument(
        "--apply", action="store_true", help="change the platforms (default: a dry run that changes nothing)"
    )
    rem.add_argument("--confirm", metavar="APP", help="with --apply: the app's name again, to confirm")
    _stuck(rem)
    _tz(rem)


def _audit_parser(sub: _Subparsers) -> None:
    aud = sub.add_parser("audit", help="scheduled check of one or more apps")
    _common(aud)
    which = aud.add_mutually_exclusive_group()  # --all with --app would be two answers to one question: exit 2
    which.add_argument("--app", action="append", dest="apps", metavar="APP", help="an app to audit (repeatable)")
    which.add_argument("--all", action="store_true", dest="all_apps", help="audit every app of the org")
    aud.add_argument(
        "--fail-on",
        choices=checks.FAIL_ON_LEVELS,
        default=checks.FAIL_ON_DEFAULT,
        help=f"exit 1 at this severity (default {checks.FAIL_ON_DEFAULT})",
    )
    aud.add_argument("--json", action="store_true", help="print the summary as JSON on stdout, nothing else")
    _probe(aud)
    aud.add_argument(
        "--notify",
        metavar="URL",
        help="on failure, notify this Apprise URL (slack://…, mailto://…, json://…); default $VYXOPS_NOTIFY",
    )
    _stuck(aud)
    _tz(aud)


def _capture_parser(sub: _Subparsers) -> None:
    cap = sub.add_parser("capture", help="capture an evidence bundle for offline replay")
    _common(cap, db=False)  # a bundle records HTTP exchanges: a direct read would not be in it
    cap.add_argument("--app", required=True, help="the Fly app whose evidence to capture")
    _window(cap)
    _tz(cap, shown="")  # a bundle keeps RFC 3339 UTC; --tz only reads a zone-less --since/--until


def _init_parser(sub: _Subparsers) -> None:
    ini = sub.add_parser("init", help="discover the team's pipeline contract and write it to vyxops.toml")
    _common(ini, out=False)
    ini.add_argument("--app", required=True, help="an app the pipeline provisions machines for")
    ini.add_argument(
        "--out", type=Path, help="where to write it (default: vyxops.toml at the project's root; - for stdout)"
    )
    ini.add_argument("--force", action="store_true", help="replace a contract file that exists")


def _doctor_parser(sub: _Subparsers) -> None:
    doc = sub.add_parser("doctor", help="check credentials, APIs, permissions and the contract before an incident")
    _common(doc, out=False)
    doc.add_argument("--app", help="an app to check the app-level APIs and the contract for (default: the org's first)")
    doc.add_argument("--json", action="store_true", help="every check as JSON on stdout")


def _sandbox_parsers(sub: _Subparsers) -> None:
    sb = sub.add_parser("sandbox", help="control the sandbox: reset | serve | status")
    sb.add_argument("action", choices=("reset", "serve", "status"), help="start over | serve on 127.0.0.1 | show")
    sb.add_argument("--scenario", help="a shipped scenario (see `vyxops scenarios`) or a YAML file")
    sb.add_argument("--port", type=int, default=8787, help="port for serve (default 8787)")
    sb.add_argument("--json", action="store_true", help="status as JSON, with the sandbox's own credentials")
    sb.add_argument(
        "--postgres",
        action="store_true",
        help="serve only: the scenario's table also in a throwaway PostgreSQL server, kept in step; its URL is "
        "printed (for SUPABASE_DB_URL); needs PostgreSQL's pg_ctl (Debian: apt-get install postgresql)",
    )
    sc = sub.add_parser("scenarios", help="list the shipped sandbox scenarios, their apps and stories")
    sc.add_argument("--json", action="store_true", help="as JSON")


def _log_parser(sub: _Subparsers) -> None:
    log = sub.add_parser("log", help="show the fixes' audit log ($VYXOPS_AUDIT_LOG) as a table")
    log.add_argument("--app", help="only this app's writes")
    log.add_argument("--since", help="only writes from this time on, RFC 3339")
    log.add_argument("--target", help="only this target's writes: sandbox (every scenario), sandbox:NAME or live")
    log.add_argument("--json", action="store_true", help="the rows as JSON")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns (and exits with) the status SPEC.md defines."""
    try:
        args = build_parser().parse_args(argv)
        _default_out(args)
        return {
            "investigate": cmd_investigate,
            "remediate": cmd_remediate,
            "audit": cmd_audit,
            "capture": cmd_capture,
            "init": cmd_init,
            "doctor": cmd_doctor,
            "sandbox": cmd_sandbox,
            "scenarios": cmd_scenarios,
            "log": cmd_log,
        }[args.verb](args)
    except VyxopsError as exc:
        code = getattr(exc, "exit_code", None) or exit_code_for(exc)
        for line in error_lines(str(exc)):
            _error(line)
        return int(code)
    except KeyboardInterrupt:  # outside a notebook run (those become RunStopped): nothing was half done
        _error("vyxops: interrupted (Ctrl-C); nothing more was done")
        return 130


def run() -> None:
    """The ``vyxops`` command: :func:`main`, then a quick exit.

    By the end of a run everything is written, flushed and closed, the kernel
    reaped and the sandbox saved; what is left is interpreter teardown, which
    garbage-collected every module papermill and nbconvert loaded (~0.2 s, an
    eighth of a run). So the process leaves with ``os._exit`` once its output is
    flushed. Tests call :func:`main` instead.
    """
    import logging
    import os

    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reader left (`vyxops … | head -1`): nothing to say to it
    os._exit(code)


_stdout_closed = False


def error_lines(message: str) -> list[str]:
    """An error's lines for stderr: ``vyxops: <message>`` and ``hint: <hint>`` (VyxopsError's shape, the kernel's
    included), each one line: a line break, ANSI or OSC-8 escape, carriage return or bidi control a platform's
    text carried is shown as its escape, so no answer can print a line that reads as vyxops' own."""
    first, *hints = message.split("\nhint: ")
    return [f"vyxops: {one_line(first)}", *(f"hint: {one_line(h)}" for h in hints)]


def say(*lines: str) -> None:
    """Print to stdout; a reader that went away (a closed pipe) is not an error."""
    global _stdout_closed
    if _stdout_closed:
        return
    try:
        print(*map(for_terminal, lines), sep="\n", flush=True)
    except BrokenPipeError:
        _stdout_closed = True
        try:  # make the interpreter's own final flush quiet too
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def terminal_width() -> int | None:
    """Columns to wrap prose to: ``$COLUMNS`` or the terminal's width; None when stdout is not a terminal and
    COLUMNS is unset (a pipe or a file gets whole lines, one record a line, for grep)."""
    import os
    import shutil

    if not os.environ.get("COLUMNS") and not sys.stdout.isatty():
        return None
    return max(40, shutil.get_terminal_size().columns)


def wrapped(line: str, indent: int) -> list[str]:
    """``line`` wrapped to the terminal, its continuation lines indented ``indent`` columns (under its text column,
    past the name column); words (a URL, an image ref) are never split."""
    import textwrap

    width = terminal_width()
    if width is None or len(line) <= width:
        return [line]
    pad = " " * min(indent, width // 2)
    return textwrap.wrap(line, width=width, subsequent_indent=pad, break_long_words=False, break_on_hyphens=False) or [
        line
    ]


def _error(line: str) -> None:
    try:
        print(for_terminal(line), file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):
        pass


# --------------------------------------------------------------------------- checks before any work


def check_common(args: argparse.Namespace, write: bool = True) -> object | None:
    """Every check that needs no platform; returns the sandbox's world (opaque here) when it is the target.

    Target, scenario, apps, machine, window, --tz, --stuck-after, --out (writable, and no file
    it will write is a directory), the sandbox's and audit log's folders, a bundle's app and
    window against its metadata, live variables, and on the sandbox the apps and the machine
    against the world. Only then, with ``write``, the first writes: ``--out`` is made and a
    replayed sandbox saved. So a refused input leaves nothing behind.
    """
    from vyxops.core.config import parse_target

    target = parse_target(args.target)
    apps = getattr(args, "apps", None) or ([args.app] if getattr(args, "app", None) else [])
    machine = checks.check_inputs(
        target=args.target,
        scenario=getattr(args, "scenario", None),
        apps=apps,
        machine_id=getattr(args, "machine_id", None),
        tz=getattr(args, "tz", None),
        since=getattr(args, "since", None),
        until=getattr(args, "until", None),
        stuck_after_minutes=getattr(args, "stuck_after_minutes", None),
        fail_on=getattr(args, "fail_on", None),
    )
    if getattr(args, "out", None) is not None:  # checked here, made last: nothing is written when an input is bad
        checks.check_out(args.out, WRITES.get(args.verb, ()))
    _check_local_paths(args, target.kind)
    db_env(args)  # a malformed --db-url or $SUPABASE_DB_URL is exit 2, named, before the kernel and any call
    from vyxops.core.config import function_jwt

    function_jwt()  # $VYXOPS_FUNCTION_JWT is JWT-shaped or exit 2, named, before the kernel and any call
    if getattr(args, "contract", None):
        from vyxops.core.contract import load_contract_file

        load_contract_file(Path(args.contract))  # a bad file is exit 2, named, before any work
    if target.kind == "bundle":
        _check_bundle(args, Path(target.path or ""))
    if target.kind == "live":
        from vyxops.core.config import live_credentials, live_urls
        from vyxops.fetch.reach import check_reachable

        credentials = live_credentials()  # ConfigError naming every missing variable, before any call
        urls = live_urls()  # and every variable that moves a base URL
        check_reachable({**urls, "supabase": credentials.supabase_url})  # offline: exit 3 in seconds, not 30
    world = None
    if target.kind == "sandbox":
        from vyxops.fetch.targets import sandbox_control

        control = sandbox_control()
        world = control.load_world(args.scenario, apps)
        if machine:
            control.check_machine(world, apps[0], machine, getattr(args, "until", None))
    if write and getattr(args, "out", None) is not None:  # the first write, once every input has passed
        checks.make_out(args.out)
    if write and world is not None:
        control.keep_world(world)
    return world


def db_env(args: argparse.Namespace) -> dict[str, str]:
    """What --db-url adds to the environment of the run (its kernel, or this process's session), checked; a bundle
    target refuses it (a recording answers from what it captured)."""
    from vyxops.core.config import parse_target
    from vyxops.fetch.clients.postgres import DB_URL_ENV, parse_db_url

    url = getattr(args, "db_url", None)
    given = url or os.environ.get(DB_URL_ENV, "").strip()
    if given:
        parse_db_url(given, "--db-url" if url else DB_URL_ENV)
    if url and parse_target(args.target).kind == "bundle":
        raise InputError("--db-url", "a bundle replays what it recorded: no database is read", allowed="sandbox, live")
    return {DB_URL_ENV: url} if url else {}


def _check_local_paths(args: argparse.Namespace, target_kind: str) -> None:
    """The sandbox's directory (its state is saved there) and, where a run writes it, the audit log's folder."""
    from vyxops.core import config

    if target_kind == "sandbox":
        config.check_sandbox_dir()
    if getattr(args, "apply", False) or getattr(args, "probe", False):
        config.check_audit_log()


def _tz_of(args: argparse.Namespace) -> str:
    """The zone a zone-less --since/--until is read in (--tz; UTC for a verb without it)."""
    return str(getattr(args, "tz", None) or "UTC")


def _check_bundle(args: argparse.Namespace, path: Path) -> None:
    """A bundle answers only what was captured: its app, and times inside its window."""
    from vyxops.core.timeutil import iso, parse_rfc3339_ms
    from vyxops.fetch.bundle import names_machine, read_bundle_meta, read_exchanges

    meta = read_bundle_meta(path)
    answers = read_exchanges(path)  # every line an exchange: a garbled one is exit 2 here, not a failure in the kernel
    app = getattr(args, "app", None)
    if app and meta.get("app") and app != meta["app"]:
        raise InputError("--app", f"the bundle at {path} holds app {meta['app']!r}, not {app!r}", allowed=[meta["app"]])
    machine = getattr(args, "machine_id", None)
    if app and machine and not names_machine(answers, app, machine):
        raise InputError("--machine", f"machine {machine} is named by none of the bundle's machine or row answers")
    since, until = checks.check_window(getattr(args, "since", None), getattr(args, "until", None), _tz_of(args))
    if "since" not in meta or "until" not in meta:  # a bundle written by code, not `vyxops capture`
        return
    lo, hi = parse_rfc3339_ms(meta["since"]), parse_rfc3339_ms(meta["until"])
    for name, value in (("--since", since), ("--until", until)):
        if value is not None and not lo <= value <= hi:
            raise InputError(
                name, f"{iso(value)} is outside the bundle's window", allowed=f"{meta['since']} .. {meta['until']}"
            )


def _params(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    contract = str(Path(args.contract).resolve()) if getattr(args, "contract", None) else None
    return {"target": args.target, "scenario": args.scenario, "contract": contract, "out_dir": str(args.out), **extra}


def _run(name: str, args: argparse.Namespace, title: str, **params: Any) -> tuple[Path, Path]:
    """Check every input, start a kernel, run notebook ``name`` into ``--out``, write its report.

    The checks come first, so bad input never waits for a kernel (exit 2 at once). On
    the sandbox, this process then serves it to the kernel (``$VYXOPS_SANDBOX_URL``,
    see :mod:`vyxops_sandbox.hosted`): the platforms' work runs here, on the virtual
    clock, beside the kernel that renders the report. Returns the executed notebook's
    path and the HTML report's.
    """
    world = check_common(args)
    from vyxops.fetch.targets import SANDBOX_URL_ENV, sandbox_control
    from vyxops.shell.runner import Kernel, Reporter, RunStopped, run_notebook, stopped

    # Three threads share this process's GIL while the kernel works: the sandbox
    # server, papermill's message loop and the report's warm-up. At the default 5 ms
    # switch interval, each blocking call the server makes can wait that long for
    # the warm-up to let go, and the kernel waits on the server.
    switch_before = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    hosted = kernel = None
    if world is not None:
        hosted = sandbox_control().HostedSandbox.reserve()
    echo = _ProgressEcho()
    env = {**echo.env, **({SANDBOX_URL_ENV: hosted.url} if hosted else {}), **db_env(args)}
    try:
        progress(f"starting a kernel for {name}.ipynb")
        with Kernel(env=env) as kernel:
            if hosted is not None:
                hosted.start(world, loaded_as=args.scenario)
            # papermill (and jupyter_client under it) load on this thread before the
            # report's warm-up thread loads nbconvert, which shares modules with them:
            # two threads importing one package cycle can see it half-initialised.
            kernel.km  # noqa: B018 - hands the running kernel to jupyter_client
            import papermill  # noqa: F401

            reporter = Reporter()
            progress(f"running {name}.ipynb on {args.target}")
            nb_path, nb = run_notebook(name, _params(args, **params), args.out, kernel=kernel)
        progress("writing the report")
        html = reporter.export(nb, args.out / f"{name}.html", title=title)  # while the kernel stops
    except KeyboardInterrupt:  # Ctrl-C (or, in a race, the kernel died as it came): see vyxops.shell.runner._watched
        raise stopped(kernel).next_step(name, "rerun it") from None
    except RunStopped as exc:
        raise exc.next_step(name, "rerun it") from None
    finally:
        echo.stop()
        if hosted is not None:
            hosted.stop()  # and save what the notebook changed, also when it failed
        if kernel is not None:
            kernel.wait_stopped()
        sys.setswitchinterval(switch_before)
    return nb_path, html


def progress(text: str) -> None:
    """One line of what is happening, on stderr, only when stderr is a terminal (never in scheduled runs)."""
    if sys.stderr.isatty():
        _error(f"vyxops: {text}…")


class _ProgressEcho:
    """Echoes the stages the notebook's kernel reports (:mod:`vyxops.core.progress`) while it runs, on a terminal
    only. Its ``env`` is the kernel's: the stages' file on a terminal, and never a progress bar (no person watches
    the CLI's kernel: a bar would only put a widget, and ipywidgets' imports, into the notebook and its report)."""

    def __init__(self) -> None:
        import tempfile
        import threading

        from vyxops.core.progress import BAR_ENV

        self.env: dict[str, str] = {BAR_ENV: "0"}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not sys.stderr.isatty():
            return
        from vyxops.core.progress import FILE_ENV

        fd, self.path = tempfile.mkstemp(prefix="vyxops-progress-", suffix=".log")
        import os

        os.close(fd)
        self.env[FILE_ENV] = self.path
        self._thread = threading.Thread(target=self._tail, name="vyxops-progress", daemon=True)
        self._thread.start()

    def _tail(self) -> None:
        with open(self.path, encoding="utf-8") as fh:
            while not self._stop.wait(0.2):
                for line in fh.readlines():
                    progress(line.strip())

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=1)
        import os

        try:
            os.unlink(self.path)
        except OSError:
            pass


# --------------------------------------------------------------------------- verbs


def cmd_investigate(args: argparse.Namespace) -> int:
    from vyxops.shell.runner import read_json

    nb, html = _run(
        "investigate",
        args,
        f"Investigation of {args.app}",
        app=args.app,
        machine_id=args.machine_id,
        since=args.since,
        until=args.until,
        stuck_after_minutes=args.stuck_after_minutes,
        tz=args.tz,
        probe=args.probe,
    )
    doc = read_json(args.out / "findings.json")
    root = doc["root_cause"]
    top = next((f for f in doc["findings"] if root and f["code"] == root["code"]), None)
    if root:
        say(f"root cause: {root['code']}: {one_line(top['title']) if top else ''}")
    elif doc.get("verdict") == "inconclusive":
        gaps = "; ".join(g["source"] for g in doc.get("gaps") or [])
        say(f"root cause: none seen — inconclusive: the evidence is incomplete ({gaps}); see the report")
    elif doc.get("resolved"):  # the incident of the window is over (a fix, or provisioning recovered)
        was = doc["resolved"]
        say(f"root cause: none now (healthy) — resolved: {was['code']}: {one_line(was['title'])}")
    else:
        say("root cause: none — nothing critical found (healthy)")
    say(
        f"report:     {html}",
        f"postmortem: {args.out / 'postmortem.md'}",
        f"notebook:   {nb}",
        f"findings:   {args.out / 'findings.json'}",
        f"timeline:   {args.out / 'timeline.parquet'}",
    )
    from vyxops.act.probe_code import PROBE_FAILED  # the code alone: vyxops.act.probe loads the analysis

    failed = next((f for f in doc["findings"] if f["code"] == PROBE_FAILED), None)
    if failed:  # a probe is a check: it failing is the run's status (README "Exit status")
        say(f"probe:      FAILED — {failed['title']}")
    return 1 if failed else 0


def cmd_remediate(args: argparse.Namespace) -> int:
    """Plan (and with --apply, apply) the fixes in a notebook; one apply per app and target at a time."""
    if args.apply and args.confirm != args.app:
        raise InputError(
            "--confirm", f"--apply needs --confirm {args.app} (the app's name) to change anything", allowed=args.app
        )
    if args.confirm and not args.apply:
        raise InputError("--confirm", "only means something with --apply")
    from vyxops.act.fixes import FIX_CODES

    checks.check_fixes(args.fixes, FIX_CODES)
    for name in ("plan.json", "result.json", "remediate.ipynb", "remediate.html"):
        if (args.out / name).is_dir():
            raise InputError("--out", f"{args.out / name} is a directory, where this run writes its {name}")
    from vyxops.shell.kernel import RunStopped

    lock = None
    if args.apply:  # before the kernel starts: a second apply refuses at once, naming the holder (exit 2)
        check_common(args, write=False)  # but bad input first: the lock is a write beside the audit log
        from vyxops.act.fixes.lock import acquire, describe_holder
        from vyxops.core.config import parse_target

        lock = acquire(parse_target(args.target), args.app)
        if lock.took_over:
            say(f"lock:     took over a stale lock left by {describe_holder(lock.took_over)}")
    try:
        nb, html = _run(
            "remediate",
            args,
            f"Remediation of {args.app}",
            app=args.app,
            fixes=args.fixes or [],
            strategy=args.strategy,
            dry_run=not args.apply,
            confirm=args.confirm or "",
            stuck_after_minutes=args.stuck_after_minutes,
            tz=args.tz,
            lock_token=lock.token if lock else "",
        )
    except RunStopped as exc:
        if lock is not None:  # what the next apply settles: the intents this one (and any before it) left open
            from vyxops.core.config import audit_log_path
            from vyxops.shell.runner import open_intents_left_by

            n = open_intents_left_by(audit_log_path(), args.app, exc.kernel_pid)
            raise exc.next_step("the apply", f"rerun the same command to settle {n} open intent(s)") from None
        raise
    finally:
        if lock is not None:
            lock.release()
    return _print_remediation(args, nb, html)


def _print_remediation(args: argparse.Namespace, nb: Path, html: Path) -> int:
    from vyxops.act.fixes.commands import remediate_command
    from vyxops.shell.runner import read_json

    result = read_json(args.out / ("result.json" if args.apply else "plan.json"))
    for a in result["actions"]:
        say(f"{a['status']:>8}  {a['code']:<24} {one_line(a['target'])}  {one_line(a.get('reason') or '')}")
        if not args.apply:
            say(*change_lines(a))
        for warning in a.get("warnings") or []:
            say(f"{'warning':>8}  {'':<24} {one_line(warning)}")
    for note in result.get("notes") or []:
        code, _, why = note.partition(": ")
        say(f"{'-':>8}  {code:<24} {one_line(why)}" if code.isupper() else f"{'-':>8}  {one_line(note)}")
    _print_next_steps(read_json(args.out / "plan.json"))
    if args.apply:
        counts = {s: sum(a["status"] == s for a in result["actions"]) for s in ("applied", "skipped", "failed")}
        head = (
            f"applied {counts['applied']}, skipped {counts['skipped']}, failed {counts['failed']}"
            if result["actions"]
            else "nothing to apply"
        )
    else:
        head = f"dry run: {len(result['actions'])} action(s) planned, nothing changed"
        if result["actions"]:
            command = remediate_command(
                args.app,
                out_dir=str(args.out),
                target=args.target,
                scenario=args.scenario,
                fixes=args.fixes or [],
                strategy=args.strategy,
                stuck_after_minutes=args.stuck_after_minutes,
            )
            head += f"\napply:    {command}"
    say(
        head
        + f"\nreport:   {html}\nnotebook: {nb}\nplan:     {args.out / 'plan.json'}"
        + (f"\nresult:   {args.out / 'result.json'}" if args.apply else "")
    )
    if args.apply:  # where every write of this apply is recorded (`vyxops log` shows it)
        from vyxops.core.config import audit_log_path

        say(f"audit log: {audit_log_path()}")
    return 3 if any(a["status"] == "failed" for a in result["actions"]) else 0


_CHANGE_INDENT = " " * 10
_SQL = re.compile(r"(?i)^\s*(select|update|insert|delete|begin|with)\b")


def change_lines(action: dict[str, Any]) -> list[str]:
    """What a planned action will change, each line indented under it: ``key: before → after`` for each value
    it sets (a secret's image ref, a row's status), then the SQL or native command a person could run instead.
    Values go through redact (an image ref is no secret, but a value read from a platform is not trusted)."""
    from vyxops.core.errors import redact

    lines = [f"{_CHANGE_INDENT}{key}: {old} → {new}" for key, old, new in _changes(action)]
    for native in action.get("native") or []:
        lead = "sql: " if _SQL.match(native) else "$ "
        lines.append(f"{_CHANGE_INDENT}{lead}{native}")
    return [one_line(redact(line)) for line in lines]


def _changes(action: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, before, after) for each value the action sets that differs from what was read: the after's key is
    read from the before under the same name or, for a secret, as ``secret_<key>`` (plan.json's shapes)."""
    before, after = action.get("before") or {}, action.get("after") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [("value", _shown(before), _shown(after))] if before != after else []
    if "ref" in after:  # an image ref names the change; its digest only repeats it
        after = {k: v for k, v in after.items() if k != "digest"}
    rows = []
    for key, new in after.items():
        old = before.get(key, before.get(f"secret_{key}"))
        if old != new:
            rows.append((key, _shown(old), _shown(new)))
    return rows


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _print_next_steps(plan: dict[str, Any]) -> None:
    """One ``next`` line per recommended action of the plan (a root no automated fix mends), then its commands."""
    for step in plan.get("recommendations") or []:
        say(f"{'next':>8}  {one_line(str(step['code'])):<24} {one_line(str(step['title']))}")
        for command in step.get("commands") or []:
            say(f"{'':>8}  {'':<24} $ {one_line(str(command))}")


def cmd_audit(args: argparse.Namespace) -> int:
    """A scheduled run always reports: whatever ends it after its checks (findings, a platform unreachable or
    refusing, an unexpected error), --json prints one summary and --notify sends one message when it failed.

    Bad input (exit 2) does neither: it is found before any work (README), the operator's to fix where the run
    was set up; its `vyxops:` line and exit status say so, the same on every run, and a message would only repeat
    that. An unknown --notify URL is itself such input.
    """
    if not args.apps and not args.all_apps:
        raise InputError("--app/--all", "name the apps to audit", allowed="--app APP (repeatable) or --all")
    notify = _notify_url(args)
    from vyxops.shell.runner import read_json

    started = time.time()
    try:
        _, html = _run_audit(args)
    except Exception as exc:
        code = getattr(exc, "exit_code", None) or exit_code_for(exc)
        if code != 2:
            _report_audit(args, notify, _audit_summary(args, _this_runs_audit(args, started), None, exc, code))
        raise
    doc = read_json(args.out / "audit.json")
    summary = _audit_summary(args, doc, html)
    _report_audit(args, notify, summary)
    for a in doc["apps"]:
        if a.get("error"):
            for line in error_lines(f"{a['app']}: {_said(a['error'])}"):
                _error(line)
    if doc.get("error"):
        for line in error_lines(f"the audit could not finish: {_said(doc['error'])}"):
            _error(line)
    return int(summary["exit_code"])


def _said(error: dict[str, Any]) -> str:
    """An error audit.json records, as a user reads it: a vyxops error's message; an unexpected one's class too."""
    from vyxops.shell.runner import error_class

    cls = error_class(str(error.get("type")))
    known = cls is not None and issubclass(cls, VyxopsError)
    return str(error["message"]) if known else f"{error.get('type')}: {error['message']}"


def _notify_url(args: argparse.Namespace) -> str | None:
    """Where a failing audit is announced (--notify, else VYXOPS_NOTIFY), checked before anything runs; or None."""
    import os

    notify: str | None = args.notify or os.environ.get("VYXOPS_NOTIFY") or None
    if notify:
        checks.check_notify_url(notify)
    return notify


def _run_audit(args: argparse.Namespace) -> tuple[Path, Path]:
    """Run the audit notebook into --out: the executed notebook's path and the report's."""
    return _run(
        "audit",
        args,
        "Audit",
        apps=args.apps or [],
        all_apps=args.all_apps,
        fail_on=args.fail_on,
        stuck_after_minutes=args.stuck_after_minutes,
        tz=args.tz,
        probe=args.probe,
    )


def _this_runs_audit(args: argparse.Namespace, started: float) -> dict[str, Any]:
    """audit.json when this run wrote it before it stopped (an older run's is not this run's), else {}."""
    from vyxops.shell.runner import read_json

    path = args.out / "audit.json"
    try:
        return dict(read_json(path)) if path.stat().st_mtime >= started - 1 else {}
    except (OSError, ValueError):
        return {}


def _audit_summary(
    args: argparse.Namespace,
    doc: dict[str, Any],
    html: Path | None,
    exc: BaseException | None = None,
    code: int | None = None,
) -> dict[str, Any]:
    """What --json prints and a notification carries: where (target, project, org), the exit status and the error
    that ended the run (one line, or null), each app's verdict or error, and the reports' absolute paths."""
    error = doc.get("error")
    line = _error_line(exc) if exc is not None else (f"{error['type']}: {error['message']}" if error else None)
    exit_code = code if code is not None else int(doc["exit_code"])
    audit, notebook = args.out / "audit.json", args.out / "audit.ipynb"
    return {
        "failed": exit_code != 0,
        "exit_code": exit_code,
        "error": " ".join(line.split()) if line else None,
        "target": doc.get("target", args.target),
        "project": doc.get("project"),
        "org": doc.get("org"),
        "fail_on": args.fail_on,
        "report": str(html.resolve()) if html else None,
        "audit": str(audit.resolve()) if doc else None,
        "notebook": str(notebook.resolve()) if notebook.is_file() else None,
        "apps": [
            {k: a.get(k) for k in ("app", "worst", "verdict", "root_cause", "failing", "error")}
            for a in doc.get("apps", [])
        ],
    }


def _error_line(exc: BaseException) -> str:
    """An error that ended a run, as its class and message (a notebook's error already names the kernel's class)."""
    from vyxops.core.errors import redact
    from vyxops.shell.runner import NotebookFailed

    return redact(str(exc) if isinstance(exc, NotebookFailed) else f"{type(exc).__name__}: {exc}")


def _report_audit(args: argparse.Namespace, notify: str | None, summary: dict[str, Any]) -> None:
    """The summary (as JSON with --json, else one line per app and the reports' paths), and one message when the
    run failed."""
    import json

    if args.json:
        say(json.dumps(summary, indent=1))
    else:
        for a in summary["apps"]:
            say(
                f"{one_line(a['app']):<24} {a['worst'] or 'ok':<9} {a.get('verdict') or '':<13} {a['root_cause'] or ''}"
            )
        paths = [("report", summary["report"]), ("notebook", summary["notebook"]), ("audit", summary["audit"])]
        say(*(f"{name + ':':<9} {path}" for name, path in paths if path))
    if summary["failed"] and notify:
        from vyxops.shell.notify import notify_failure

        notify_failure(notify, summary)


def cmd_capture(args: argparse.Namespace) -> int:
    check_common(args)
    from vyxops.analysis.collect import collect_evidence
    from vyxops.analysis.discover import resolve_contract
    from vyxops.analysis.evidence import ProjectReads, parse_window
    from vyxops.core.contract import to_toml
    from vyxops.core.timeutil import iso
    from vyxops.fetch.bundle import CONTRACT_FILE, FUNCTION_BEARER_KEY, write_bundle
    from vyxops.fetch.session import open_session

    with open_session(args.target, scenario=args.scenario, record=True) as session:
        project = ProjectReads(session)
        start, end = parse_window(session.now(), args.since, args.until, args.tz)
        contract = resolve_contract(session, [args.app], declared=args.contract, project=project, since=start,
                                    until=end)  # fmt: skip
        e = collect_evidence(session, args.app, contract=contract, since=start, until=end, project=project)
        meta = {
            "captured_from": session.label,
            "app": args.app,
            "now": iso(session.now()),
            "since": iso(e.since),
            "until": iso(e.until),
            "project_ref": session.project_ref,
            "org": session.org,
            FUNCTION_BEARER_KEY: session.supabase.function_bearer,
        }
        recorder = session.recorder
        assert recorder is not None  # record=True makes one
        path = write_bundle(args.out, recorder, meta)
        if not contract.discovered:  # a discovered one is discovered again on replay, from the same answers
            (path / CONTRACT_FILE).write_text(to_toml(contract), encoding="utf-8")
    exchanges = len(recorder.exchanges)
    say(
        f"bundle: {path} ({exchanges} exchanges)",
        f"replay: vyxops investigate --target bundle:{path} --app {args.app} --out out/{args.app}-replay",
    )
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Discover the team's pipeline contract and write it, with the evidence for each value, to vyxops.toml."""
    from vyxops.core.config import project_dir
    from vyxops.core.contract import CONTRACT_FILE, to_toml

    out = args.out or (project_dir() or Path.cwd()) / CONTRACT_FILE
    to_stdout = str(out) == "-"
    if not to_stdout and out.exists() and not args.force:
        raise InputError(
            "--out", f"{out} exists: nothing was written", hint="pass --force to replace it, or --out FILE"
        )
    args.contract, args.out = None, None  # discovery runs, whatever is declared; the file is checked above
    check_common(args)
    from vyxops.analysis.discover import discover
    from vyxops.fetch.session import open_session

    progress(f"discovering the pipeline of {args.app} on {args.target}")
    with open_session(args.target, scenario=args.scenario, environ={**os.environ, **db_env(args)}) as session:
        contract = discover(session, [args.app])
    text = to_toml(contract)
    if to_stdout:
        say(text.rstrip("\n"))
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    evidence = (wrapped(f"{key:<24} {why.replace(chr(10), '; ')}", 25) for key, why in contract.evidence)
    say(*(w for lines in evidence for w in lines), f"contract: {out}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Exit 0 when every check is ok (or skipped), 1 with one line per problem and its fix (as audit's findings);
    bad input is exit 2 before any call. A platform that does not answer is a problem line, not exit 3: saying so
    is the doctor's job."""
    import json

    from vyxops.act.doctor import run_doctor
    from vyxops.core.config import parse_target

    target = parse_target(args.target)
    if target.kind == "bundle":
        raise InputError("--target", "a bundle is a recording: there is nothing to check", allowed="sandbox, live")
    checks.check_scenario(target, args.scenario)
    if args.app:
        checks.check_app(args.app)
    if args.contract:
        from vyxops.core.contract import load_contract_file

        load_contract_file(Path(args.contract))
    if target.kind == "sandbox":
        from vyxops.fetch.targets import sandbox_control

        sandbox_control().load_world(args.scenario, [args.app] if args.app else [])
    environ = {**os.environ, **db_env(args)}
    outcomes = run_doctor(target, app=args.app, contract=args.contract, scenario=args.scenario, environ=environ)
    problems = [o for o in outcomes if o.status == "problem"]
    if args.json:
        say(json.dumps({"ok": not problems, "checks": [o.as_json() for o in outcomes]}, indent=1))
    else:
        say(*(w for o in outcomes for w in wrapped(o.line(), 9)))
        say(f"{len(problems)} problem(s)" if problems else f"all well: {len(outcomes)} checks")
    return 1 if problems else 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from vyxops.core.config import check_sandbox_dir
    from vyxops.fetch.targets import sandbox_control

    check_sandbox_dir()  # a file or unwritable folder in VYXOPS_SANDBOX_DIR is named before the world is loaded

    if args.action == "serve":
        from vyxops.core.checks import check_port

        check_port(args.port)
    if args.postgres and args.action != "serve":
        raise InputError("--postgres", f"only means something with serve, not {args.action}", allowed="serve")
    return int(sandbox_control().command(args.action, args.scenario, args.port, args.json, args.postgres))


def cmd_scenarios(args: argparse.Namespace) -> int:
    import json

    from vyxops.fetch.targets import sandbox_control

    listed = sandbox_control().scenarios()
    if args.json:
        say(json.dumps(listed, indent=1))
        return 0
    width = max((len(s["name"]) for s in listed), default=10)
    for s in listed:
        say(*wrapped(f"{s['name']:<{width}}  {', '.join(s['apps']):<28} {s['story']}", 4))  # a story is a paragraph
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    """The audit log as a table (or JSON), filtered; an empty selection is said, not an error."""
    from vyxops.core.config import audit_log_path
    from vyxops.views import logview

    if args.app:
        checks.check_app(args.app)
    path = audit_log_path()
    found = logview.select(logview.read(path), app=args.app, target=args.target, since=args.since)
    if args.json:
        say(json.dumps([r.as_json() for r in found], indent=1, ensure_ascii=False))
        return 0
    if found:
        say(*logview.table(found))
    say(f"audit log: {path} ({len(found)} write(s){' shown' if path.is_file() else '; no log yet'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

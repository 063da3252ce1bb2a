"""``vyxops``: one verb per notebook, plus sandbox control (SPEC.md "Entry points").

Exit status: 0 done, 1 findings at or above --fail-on (audit), 2 bad input,
3 the platform could not be reached or refused. Inputs are checked before any
call to a platform.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vyxops.errors import InputError, VyxopsError, exit_code_for

APP_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as an InputError (exit 2) naming the input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(self.prog, message, hint=f"see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vyxops", description="Investigate and fix Fly.io + Supabase incidents.")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    def common(sp: argparse.ArgumentParser, out: bool = True) -> None:
        sp.add_argument("--target", default="sandbox", help="sandbox (default) | live | bundle:PATH")
        sp.add_argument("--scenario", help="sandbox scenario: a shipped name or a YAML file")
        if out:
            sp.add_argument("--out", required=True, type=Path, help="directory for the notebook, report and results")

    inv = sub.add_parser("investigate", help="reconstruct an incident and name its root cause")
    common(inv)
    inv.add_argument("--app", required=True)
    inv.add_argument("--machine", dest="machine_id")
    inv.add_argument("--since")
    inv.add_argument("--until")
    inv.add_argument(
        "--stuck-after",
        type=float,
        default=10.0,
        dest="stuck_after_minutes",
        help="minutes a row may stay in a transitional status",
    )

    rem = sub.add_parser("remediate", help="plan fixes (dry run) and, with --apply --confirm APP, apply them")
    _add_remediate(rem, common)

    aud = sub.add_parser("audit", help="scheduled check of one or more apps")
    common(aud)
    aud.add_argument("--app", action="append", dest="apps")
    aud.add_argument("--all", action="store_true", dest="all_apps")
    aud.add_argument("--fail-on", choices=("critical", "warning"), default="critical")
    aud.add_argument("--stuck-after", type=float, default=10.0, dest="stuck_after_minutes")

    cap = sub.add_parser("capture", help="capture an evidence bundle for offline replay")
    common(cap)
    cap.add_argument("--app", required=True)
    cap.add_argument("--since")
    cap.add_argument("--until")

    sb = sub.add_parser("sandbox", help="control the sandbox: reset | serve | status")
    sb.add_argument("action", choices=("reset", "serve", "status"))
    sb.add_argument("--scenario")
    sb.add_argument("--port", type=int, default=8787)
    sb.add_argument("--json", action="store_true")
    return p


def _add_remediate(rem: argparse.ArgumentParser, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """The remediate verb's arguments."""
    common(rem)
    rem.add_argument("--app", required=True, help="the Fly app whose incident is fixed")
    # The codes come from the fix registry (vyxops.fixes), read when the command runs: importing it
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
        help="pin DOCKER_IMAGE to the release's tag (default) or digest, or tag :latest and unset the secret",
    )
    rem.add_argument("--apply", action="store_true", help="change the platforms (needs --confirm APP)")
    rem.add_argument("--confirm", help="the app's name again: applying changes it")
    rem.add_argument(
        "--stuck-after",
        type=float,
        default=10.0,
        dest="stuck_after_minutes",
        help="minutes a row may stay in a transitional status",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns (and exits with) the status SPEC.md defines."""
    try:
        args = build_parser().parse_args(argv)
        return {
            "investigate": cmd_investigate,
            "remediate": cmd_remediate,
            "audit": cmd_audit,
            "capture": cmd_capture,
            "sandbox": cmd_sandbox,
        }[args.verb](args)
    except VyxopsError as exc:
        code = getattr(exc, "exit_code", None) or exit_code_for(exc)
        print(f"vyxops: {exc}", file=sys.stderr)
        return int(code)
    except KeyboardInterrupt:
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
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# --------------------------------------------------------------------------- checks before any call


def check_common(args: argparse.Namespace) -> Any:
    """Validate target, scenario, app and times; load and return the sandbox world when it is the target."""
    from vyxops.config import parse_target

    target = parse_target(args.target)
    if target.kind != "sandbox" and getattr(args, "scenario", None):
        raise InputError("--scenario", "only applies to --target sandbox")
    if target.kind == "bundle":
        from vyxops.bundle import read_bundle_meta

        read_bundle_meta(Path(target.path or ""))
    if target.kind == "live":
        from vyxops.config import live_credentials

        live_credentials()  # ConfigError naming every missing variable, before any call
    apps = getattr(args, "apps", None) or ([args.app] if getattr(args, "app", None) else [])
    for app in apps:
        if not APP_RE.match(app):
            raise InputError("--app", f"{app!r} is not a Fly app name", allowed="lower-case letters, digits and '-'")
    for name in ("since", "until"):
        value = getattr(args, name, None)
        if value:
            from vyxops.timeutil import to_utc

            try:
                to_utc(value)
            except (ValueError, TypeError):
                raise InputError(
                    f"--{name}", f"{value!r} is not a time", allowed="RFC 3339, e.g. 2025-10-02T16:00:00Z"
                ) from None
    world = None
    if target.kind == "sandbox":
        from vyxops.targets import sandbox_control

        world = sandbox_control().load_world(args.scenario, apps)
    out = getattr(args, "out", None)
    if out is not None and out.exists() and not out.is_dir():
        raise InputError("--out", f"{out} exists and is not a directory")
    return world


def _params(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    return {"target": args.target, "scenario": args.scenario, "out_dir": str(args.out), **extra}


def _run(name: str, args: argparse.Namespace, title: str, **params: Any) -> tuple[Path, Path]:
    """Check the inputs while a kernel boots, run notebook ``name`` into ``--out``, write its report.

    On the sandbox, this process serves it to the kernel (``$VYXOPS_SANDBOX_URL``,
    see :mod:`vyxops_sandbox.hosted`): the platforms' work runs here, on the
    virtual clock, beside the kernel that renders the report. Returns the
    executed notebook's path and the HTML report's.
    """
    from vyxops.runner import Kernel, Reporter, run_notebook

    # Three threads share this process's GIL while the kernel works: the sandbox
    # server, papermill's message loop and the report's warm-up. At the default 5 ms
    # switch interval, each blocking call the server makes can wait that long for
    # the warm-up to let go, and the kernel waits on the server.
    switch_before = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    from vyxops.targets import SANDBOX_URL_ENV, sandbox_control

    hosted = kernel = None
    if args.target == "sandbox":  # the exact word: anything else is checked (and refused) below

        hosted = sandbox_control().HostedSandbox.reserve()
    try:
        with Kernel(env={SANDBOX_URL_ENV: hosted.url} if hosted else None) as kernel:
            world = check_common(args)
            if hosted is not None:
                hosted.start(world, loaded_as=args.scenario)
            # papermill (and jupyter_client under it) load on this thread before the
            # report's warm-up thread loads nbconvert, which shares modules with them:
            # two threads importing one package cycle can see it half-initialised.
            kernel.km  # noqa: B018 - hands the running kernel to jupyter_client
            import papermill  # noqa: F401

            reporter = Reporter()
            nb_path, nb = run_notebook(name, _params(args, **params), args.out, kernel=kernel)
        html = reporter.export(nb, args.out / f"{name}.html", title=title)  # while the kernel stops
    finally:
        if hosted is not None:
            hosted.stop()  # and save what the notebook changed, also when it failed
        if kernel is not None:
            kernel.wait_stopped()
        sys.setswitchinterval(switch_before)
    return nb_path, html


# --------------------------------------------------------------------------- verbs


def cmd_investigate(args: argparse.Namespace) -> int:
    from vyxops.runner import read_json

    nb, html = _run(
        "investigate",
        args,
        f"Investigation of {args.app}",
        app=args.app,
        machine_id=args.machine_id,
        since=args.since,
        until=args.until,
        stuck_after_minutes=args.stuck_after_minutes,
    )
    doc = read_json(args.out / "findings.json")
    root = doc["root_cause"]
    top = next((f for f in doc["findings"] if root and f["code"] == root["code"]), None)
    print(
        f"root cause: {root['code']}: {top['title'] if top else ''}"
        if root
        else "root cause: none — nothing critical found"
    )
    print(
        f"report:   {html}\nnotebook: {nb}\nfindings: {args.out / 'findings.json'}\ntimeline: {args.out / 'timeline.parquet'}"
    )
    return 0


def cmd_remediate(args: argparse.Namespace) -> int:
    """Plan (and with --apply, apply) the fixes in a notebook; one apply per app and target at a time."""
    if args.apply and args.confirm != args.app:
        raise InputError(
            "--confirm", f"--apply needs --confirm {args.app} (the app's name) to change anything", allowed=args.app
        )
    if args.confirm and not args.apply:
        raise InputError("--confirm", "only means something with --apply")
    from vyxops.fixes import FIX_CODES

    for code in args.fixes or []:
        if code not in FIX_CODES:
            raise InputError("--fix", f"unknown fix {code!r}", allowed=list(FIX_CODES))
    for name in ("plan.json", "result.json", "remediate.ipynb", "remediate.html"):
        if (args.out / name).is_dir():
            raise InputError("--out", f"{args.out / name} is a directory, where this run writes its {name}")
    lock = None
    if args.apply:  # before the kernel starts: a second apply refuses at once, naming the holder (exit 2)
        from vyxops.config import parse_target
        from vyxops.fixes.lock import acquire, describe_holder

        lock = acquire(parse_target(args.target), args.app)
        if lock.took_over:
            print(f"lock:     took over a stale lock left by {describe_holder(lock.took_over)}")
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
            lock_token=lock.token if lock else "",
        )
    finally:
        if lock is not None:
            lock.release()
    return _print_remediation(args, nb, html)


def _print_remediation(args: argparse.Namespace, nb: Path, html: Path) -> int:
    from vyxops.fixes.commands import remediate_command
    from vyxops.runner import read_json

    result = read_json(args.out / ("result.json" if args.apply else "plan.json"))
    for a in result["actions"]:
        print(f"{a['status']:>8}  {a['code']:<24} {a['target']}  {a.get('reason') or ''}")
    for note in result.get("notes") or []:
        code, _, why = note.partition(": ")
        print(f"{'-':>8}  {code:<24} {why}" if code.isupper() else f"{'-':>8}  {note}")
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
    print(
        head
        + f"\nreport:   {html}\nnotebook: {nb}\nplan:     {args.out / 'plan.json'}"
        + (f"\nresult:   {args.out / 'result.json'}" if args.apply else "")
    )
    return 3 if any(a["status"] == "failed" for a in result["actions"]) else 0


def cmd_audit(args: argparse.Namespace) -> int:
    if not args.apps and not args.all_apps:
        raise InputError("--app/--all", "name the apps to audit", allowed="--app APP (repeatable) or --all")
    from vyxops.runner import read_json

    nb, html = _run(
        "audit",
        args,
        "Audit",
        apps=args.apps or [],
        all_apps=args.all_apps,
        fail_on=args.fail_on,
        stuck_after_minutes=args.stuck_after_minutes,
    )
    doc = read_json(args.out / "audit.json")
    levels = ("critical",) if args.fail_on == "critical" else ("critical", "warning")
    failing = [a for a in doc["apps"] if a["worst"] in levels]
    for a in doc["apps"]:
        print(f"{a['app']:<24} {a['worst'] or 'ok':<9} {a['root_cause'] or ''}")
    print(f"report:   {html}\nnotebook: {nb}\naudit:    {args.out / 'audit.json'}")
    return 1 if failing else 0


def cmd_capture(args: argparse.Namespace) -> int:
    check_common(args)
    from vyxops.bundle import write_bundle
    from vyxops.evidence import collect_evidence
    from vyxops.session import open_session
    from vyxops.timeutil import iso

    with open_session(args.target, scenario=args.scenario, record=True) as session:
        e = collect_evidence(session, args.app, since=args.since, until=args.until)
        meta = {
            "captured_from": session.label,
            "app": args.app,
            "now": iso(session.now()),
            "since": iso(e.since),
            "until": iso(e.until),
            "project_ref": session.project_ref,
            "machines_table": session.machines_table,
            "org": session.org,
        }
        path = write_bundle(args.out, session.recorder, meta)
    print(
        f"bundle: {path} ({len(session.recorder.exchanges)} exchanges)\nreplay: vyxops investigate --target bundle:{path} --app {args.app} --out DIR"
    )
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from vyxops.targets import sandbox_control

    return sandbox_control().command(args.action, args.scenario, args.port, args.json)


if __name__ == "__main__":
    sys.exit(main())

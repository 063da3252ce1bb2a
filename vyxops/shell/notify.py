"""Telling someone an audit failed, through Apprise (Slack, email, webhooks and the rest).

One message per failed run, whatever failed it: apps at ``--fail-on`` or worse, a
platform that could not be reached or refused (exit 3), or an unexpected error. It
names the target, the Supabase project and the Fly org, counts the verdicts, gives
each app's line (a failing app's error on one line) and the absolute paths of
audit.json and the report. A passing run sends nothing. The URL comes from
``--notify`` or ``$VYXOPS_NOTIFY``; it may hold a service's token, so it is never
printed, and the message is redacted like every other output.

Every message is sent as Apprise's ``failure`` type: without one, Apprise sends
``info`` (``Apprise.notify(..., notify_type=NotifyType.INFO)``), and services colour
and route messages by it. Apprise has four (``apprise/common.py`` ``NotifyType``:
info, success, warning, failure, apprise 2.3.0); the ``json://`` service posts it as
``"type"`` (``apprise/plugins/custom_json.py``). Only failed runs are announced, so
``warning`` and ``success`` are never used: a warning below ``--fail-on`` passes.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from vyxops.core.checks import notify_sender
from vyxops.core.errors import redact

#: The longest an error may be in a message line; the rest is in audit.json and the report.
ERROR_CHARS = 300
#: How a run's worst severity is counted in a message ("error": the app could not be investigated).
_COUNTED = {"error": "could not be investigated", None: "ok"}


def one_line(text: str, limit: int = ERROR_CHARS) -> str:
    """``text`` as one line: control characters and runs of whitespace (newlines too) become one space."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def failure_message(summary: dict[str, Any]) -> tuple[str, str]:
    """(title, body) for a failed audit, from the summary ``--json`` prints (vyxops.shell.cli)."""
    where = f"{summary['target']} (project {summary.get('project') or '?'}, org {summary.get('org') or '?'})"
    apps = summary["apps"]
    if summary.get("error"):
        title = f"vyxops audit could not finish on {where}: {one_line(summary['error'], 120)}"
    else:
        failing = sum(1 for a in apps if a.get("failing"))
        title = f"vyxops audit failed on {where}: {failing} of {len(apps)} app(s) at {summary['fail_on']} or worse"
    counts = Counter(_COUNTED.get(a.get("worst"), a.get("worst")) for a in apps)
    lines = [
        f"target: {summary['target']}   project: {summary.get('project') or '?'}   org: {summary.get('org') or '?'}",
        f"exit status: {summary['exit_code']}   fail on: {summary['fail_on']}",
        f"apps: {len(apps)}"
        + (": " + ", ".join(f"{n} {level}" for level, n in sorted(counts.items())) if apps else ""),
    ]
    if summary.get("error"):
        lines.append(f"error: {one_line(summary['error'])}")
    lines += ["", *(_app_line(a) for a in apps), ""] if apps else [""]
    lines += [
        f"{name}: {summary[key] or 'not written'}" for key, name in (("audit", "audit.json"), ("report", "report"))
    ]
    if summary.get("notebook"):
        lines.append(f"notebook: {summary['notebook']}")
    return redact(title), redact("\n".join(lines))


def _app_line(app: dict[str, Any]) -> str:
    """One app in one line: its error when it could not be investigated, else its worst, verdict and root cause."""
    if app.get("error"):
        error = f"{app['error']['type']}: {app['error']['message']}"
        return f"- {app['app']}: could not be investigated: {one_line(error)}"
    return f"- {app['app']}: {app.get('worst') or 'ok'}, verdict {app.get('verdict') or '?'}" + (
        f", root cause {app['root_cause']}" if app.get("root_cause") else ""
    )


def notify_failure(url: str, summary: dict[str, Any]) -> bool:
    """Send one message (Apprise's failure type) about a failed audit; False, and one line on stderr, when it
    could not be sent: a notifier's failure never changes the audit's outcome."""
    import apprise

    title, body = failure_message(summary)
    try:
        sent = bool(notify_sender(url).notify(title=title, body=body, notify_type=apprise.NotifyType.FAILURE))
    except Exception as exc:  # noqa: BLE001 - a notifier's failure must not change the audit's outcome
        print(f"vyxops: could not send the notification ({type(exc).__name__})", file=sys.stderr)
        return False
    if not sent:
        print("vyxops: could not send the notification (the service refused or did not answer)", file=sys.stderr)
    return sent

"""Telling someone an audit failed, through Apprise (Slack, email, webhooks and the rest).

One message per run, naming the apps, their verdicts and root causes, and the
report's path. The URL comes from ``--notify`` or ``$VYXOPS_NOTIFY``; it may hold
a service's token, so it is never printed, and the message is redacted like
every other output.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vyxops.errors import InputError, VyxopsError, redact


def _apprise(url: str) -> Any:
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


def check_url(url: str) -> None:
    """Refuse a URL Apprise cannot use, before the audit runs (nothing is sent)."""
    _apprise(url)


def failure_message(summary: dict[str, Any]) -> tuple[str, str]:
    """(title, body) for a failed audit: each app with its worst severity, verdict and root cause."""
    failing = [a for a in summary["apps"] if a.get("worst") in _levels(summary["fail_on"])]
    title = f"vyxops audit failed: {len(failing)} of {len(summary['apps'])} app(s) at {summary['fail_on']} or worse"
    lines = [
        f"- {a['app']}: {a.get('worst') or 'ok'}, {a.get('verdict') or '?'}"
        + (f", root cause {a['root_cause']}" if a.get("root_cause") else "")
        for a in summary["apps"]
    ]
    body = "\n".join([*lines, "", f"report: {summary['report']}", f"audit:  {summary['audit']}"])
    return redact(title), redact(body)


def _levels(fail_on: str) -> tuple[str, ...]:
    return ("error", "critical") if fail_on == "critical" else ("error", "critical", "warning")


def notify_failure(url: str, summary: dict[str, Any]) -> bool:
    """Send one message about a failed audit; False (and one line on stderr) when it could not be sent."""
    title, body = failure_message(summary)
    return _send(url, title, body)


def notify_error(url: str, args: argparse.Namespace, exc: VyxopsError) -> bool:
    """Send one message about an audit that could not run (the platform could not be reached)."""
    apps = ", ".join(args.apps or []) or "every app of the org"
    body = f"The audit of {apps} on {args.target} could not run:\n{exc}"
    return _send(url, "vyxops audit could not run", redact(body))


def _send(url: str, title: str, body: str) -> bool:
    try:
        sent = bool(_apprise(url).notify(title=title, body=body))
    except Exception as exc:  # noqa: BLE001 - a notifier's failure must not change the audit's outcome
        sent = False
        print(f"vyxops: could not send the notification ({type(exc).__name__})", file=sys.stderr)
        return sent
    if not sent:
        print("vyxops: could not send the notification (the service refused or did not answer)", file=sys.stderr)
    return sent

"""What the notebooks call to show things: narrative in the notebook, logic here.

``setup()`` makes a vyxops error show as its message and hint instead of a
traceback, and reads a relative ``out_dir`` against the project's root; the rest
render an investigation or a plan as Markdown and tables.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from vyxops.core import checks
from vyxops.core.config import project_dir
from vyxops.core.errors import VyxopsError
from vyxops.nbtools.investigation import (
    show_error,
    show_findings,
    show_fixes,
    show_header,
    show_incomplete,
    show_probe,
    show_summary,
    show_timeline,
)
from vyxops.nbtools.remediation import show_audit, show_plan, show_result, show_verification
from vyxops.views.display import command_block, heading, heading_text, link, md, show_figure, show_html, table


def setup() -> None:
    """Quiet library logs, show vyxops errors as message + hint (the cell still fails), and check the notebook's
    parameters as the CLI checks its flags (:func:`check_parameters`)."""
    for noisy in ("httpx", "httpcore", "matplotlib", "sqlglot"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    pd.set_option("display.max_colwidth", 200)
    pd.set_option("display.width", 200)
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python
        return
    ip = get_ipython()
    if ip is None:
        return
    _out_dir_from_project(ip.user_ns)

    def handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
        # An error output with the name and message, and no traceback frames: papermill
        # reads ename/evalue from it, a person reads the message and hint.
        # The error is named by its nearest class in vyxops.core.errors, which is how the CLI maps it to
        # an exit status (a fixes' LockHeld is an InputError: exit 2); the text keeps its own name.
        stb = [f"{etype.__name__}: {value}"]
        named = next((c for c in etype.__mro__ if c.__module__ == "vyxops.core.errors"), etype)
        shell._showtraceback(named, value, stb)
        return stb

    ip.set_custom_exc((VyxopsError,), handler)
    check_parameters(ip.user_ns)


def check_parameters(namespace: dict[str, Any]) -> None:
    """The notebook's parameters through the CLI's own checks (:func:`vyxops.core.checks.check_inputs`), before any
    work: a papermill run with ``-p tz Mars/Olympus`` is the InputError ``vyxops investigate --tz Mars/Olympus`` is,
    and an unknown code in the remediate notebook's ``fixes`` the one ``vyxops remediate --fix`` is."""
    app = namespace.get("app")
    apps = namespace.get("apps") or ([app] if app else [])
    checks.check_inputs(
        target=namespace.get("target"),
        scenario=namespace.get("scenario"),
        apps=list(apps),
        machine_id=namespace.get("machine_id"),
        tz=namespace.get("tz"),
        since=namespace.get("since"),
        until=namespace.get("until"),
        stuck_after_minutes=namespace.get("stuck_after_minutes"),
        fail_on=namespace.get("fail_on"),
    )
    if "fixes" in namespace:  # the remediate notebook's `fixes`, as `--fix`
        from vyxops.act.fixes import FIX_CODES

        checks.check_fixes(namespace["fixes"], FIX_CODES)


def project_out_dir(out_dir: str | Path, cwd: Path | None = None) -> Path:
    """A notebook's ``out_dir``: an absolute one as it is, a relative one under the project's root.

    JupyterLab starts a notebook's kernel in the notebook's folder (``notebooks/``), where ``out/investigate``
    would land in ``notebooks/out/``; the CLI writes ``out/`` at the top of the checkout. The root is the one the
    sandbox and the audit log are found from (:func:`vyxops.core.config.project_dir`), else the working directory.
    The CLI passes its ``--out`` absolute (vyxops.shell.runner), so its paths stay the ones the user typed.
    """
    path = Path(out_dir).expanduser()
    if path.is_absolute():
        return path
    here = cwd or Path.cwd()
    return (project_dir(here) or here) / path


def _out_dir_from_project(namespace: dict[str, Any]) -> None:
    """The notebook's ``out_dir`` parameter (a str, as papermill injects it), read by :func:`project_out_dir`."""
    value = namespace.get("out_dir")
    if isinstance(value, (str, Path)) and str(value).strip():
        namespace["out_dir"] = str(project_out_dir(value))


__all__ = [
    "setup",
    "check_parameters",
    "project_out_dir",
    "md",
    "heading",
    "heading_text",
    "table",
    "show_html",
    "command_block",
    "link",
    "show_header",
    "show_error",
    "show_probe",
    "show_summary",
    "show_findings",
    "show_timeline",
    "show_fixes",
    "show_incomplete",
    "show_figure",
    "show_plan",
    "show_result",
    "show_verification",
    "show_audit",
]

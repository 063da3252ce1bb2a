"""What the notebooks call to show things: narrative in the notebook, logic here.

``setup()`` makes a vyxops error show as its message and hint instead of a
traceback; the rest render an investigation or a plan as Markdown and tables.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from vyxops.coverage import Gap
from vyxops.errors import VyxopsError
from vyxops.nbtools.display import md, show_figure


def setup() -> None:
    """Quiet library logs and show vyxops errors as message + hint (the cell still fails)."""
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

    def handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
        # An error output with the name and message, and no traceback frames: papermill
        # reads ename/evalue from it, a person reads the message and hint.
        stb = [f"{etype.__name__}: {value}"]
        shell._showtraceback(etype, value, stb)
        return stb

    ip.set_custom_exc((VyxopsError,), handler)


def show_summary(inv: Any) -> None:
    """The headline: root cause code and the chain of evidence, or that nothing is wrong."""
    e = inv.evidence
    head = f"**Target** `{e.target}` · **app** `{e.app}` · **window** {e.since:%Y-%m-%d %H:%M}–{e.until:%Y-%m-%d %H:%M} UTC · **now** {e.now:%Y-%m-%d %H:%M:%S} UTC"
    if inv.root is not None:
        md(f"{head}\n\n### Root cause: `{inv.root.code}`\n\n{inv.summary}")
    elif inv.verdict == "inconclusive":
        md(f"{head}\n\n### Inconclusive: nothing critical seen, but the evidence is incomplete\n\n{inv.summary}")
    else:
        md(f"{head}\n\n### Healthy: nothing critical found\n\n{inv.summary}")


def show_findings(inv: Any) -> None:
    """Each finding, the root cause first, with its evidence table and the fixes that address it."""
    if not inv.findings:
        md("No findings.")
        return
    from IPython.display import HTML, display

    ordered = sorted(inv.findings, key=lambda f: (inv.root is not f, {"critical": 0, "warning": 1}.get(f.severity, 2)))
    for f in ordered:
        root = " — **root cause**" if inv.root is f else ""
        md(
            f"#### `{f.code}` {f.title}{root}\n\n**{f.severity.upper()}** · entity `{f.entity}` · fixes: {', '.join(f'`{x}`' for x in f.fixes) or 'none'}"
        )
        display(HTML(pd.DataFrame(f.evidence, columns=["time", "source", "detail"]).to_html(index=False, escape=True)))


def show_timeline(tl: pd.DataFrame, limit: int = 500) -> None:
    """The timeline as a table a person reads: ms times, left-aligned messages, newest last."""
    from IPython.display import HTML, display

    view = tl[["time", "source", "entity", "kind", "message"]].tail(limit).copy()
    view["time"] = view["time"].dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3]
    note = f"<p>last {limit} of {len(tl)} events</p>" if len(tl) > limit else ""
    html = view.to_html(index=False, escape=True, justify="left").replace("<td>", '<td style="text-align:left">')
    display(HTML(note + html))


def show_fixes(inv: Any) -> None:
    """The fixes the findings recommend, in the order they should be applied."""
    order = ["PIN_SECRET_TO_RELEASE", "TAG_LATEST", "UNSET_SECRET", "RECONCILE_STUCK_ROWS", "VERIFY_PROVISIONING"]
    wanted = [c for c in order if any(c in f.fixes for f in inv.findings if f.severity == "critical" or inv.root is f)]
    if not wanted:
        md("No fix is recommended.")
        return
    lines = [f"1. `{c}`" for c in wanted]
    md(
        "Plan them with `vyxops remediate --app "
        + inv.evidence.app
        + " --out DIR` (dry run), then apply with `--apply --confirm "
        + inv.evidence.app
        + "`:\n\n"
        + "\n".join(lines)
    )


def show_incomplete(gaps: list[Gap]) -> None:
    """What the evidence could not show, each gap with its source and span; nothing when complete."""
    if gaps:
        lines = [f"- `{g.source}`{f' {g.since} – {g.until}' if g.since else ''}: {g.why}" for g in gaps]
        md("**Incomplete evidence** (a missing record is not proof that nothing happened):\n\n" + "\n".join(lines))


from vyxops.nbtools.remediation import show_audit, show_plan, show_result, show_verification

__all__ = [
    "setup",
    "md",
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

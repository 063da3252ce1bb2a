"""The root cause's recommended actions (:mod:`vyxops.analysis.advice`) as a report, a postmortem and a terminal
show them: what to do, each command on its own to copy, the dashboard pages as links, and the evidence it rests on."""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING

from vyxops.core.text import md
from vyxops.views.display import command_block, link

if TYPE_CHECKING:
    from vyxops.analysis.advice import NextStep

HEADING = "Next step"
_URL = re.compile(r"https://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+")


def next_steps_html(steps: list[NextStep]) -> str:
    """Each action: its title, its commands (one ``<pre>`` each), its dashboard links and its evidence; escaped."""
    out = []
    for s in steps:
        commands = command_block(*s.commands)
        links = " · ".join(link(u) for u in s.dashboard)
        evidence = "".join(f"<li>{escape(x)}</li>" for x in s.evidence)
        out.append(
            f"<h4>{HEADING}: {escape(s.code)}</h4><p>{escape(s.title)}.</p>{commands}"
            + (f"<p>Dashboard: {links}</p>" if links else "")
            + (f"<p>It rests on:</p><ul>{evidence}</ul>" if evidence else "")
        )
    return "".join(out)


def next_steps_markdown(steps: list[NextStep]) -> list[str]:
    """Each action as Markdown lines (``postmortem.md``): the title, each command in its own fenced block, the
    dashboard pages as links, the evidence as a list. Platform text is escaped (:func:`vyxops.core.text.md`)."""
    if not steps:
        return []
    out = [f"## {HEADING}", ""]
    for s in steps:
        out += [f"**`{s.code}`** — {md(s.title)}.", ""]
        for c in s.commands:
            fence = "`" * max(3, _longest_backticks(c) + 1)
            out += [fence + "sh", c.replace("\n", " "), fence, ""]
        out += [f"- <{u}>" for u in s.dashboard if _URL.fullmatch(u)]
        out += [f"- {md(x)}" for x in s.evidence]
        out.append("")
    return out


def _longest_backticks(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)

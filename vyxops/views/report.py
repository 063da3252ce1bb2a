"""The HTML report's own furniture: a table of contents built from the notebook's headings."""

from __future__ import annotations

import html
import re

# nbconvert gives every Markdown heading an id and an anchor link: <h2 id="Summary">Summary<a …>¶</a></h2>
_HEADING = re.compile(r'<h([234]) id="([^"]+)">(.*?)<a class="anchor-link"', re.S)
_FIRST_H1_END = re.compile(r"</h1>", re.I)
TOC_STYLE = (
    "<style>.vyxops-toc{border:1px solid #ddd;padding:6px 14px;margin:12px 0;display:inline-block}"
    ".vyxops-toc ul{margin:4px 0;padding-left:18px}.vyxops-toc li.h3,.vyxops-toc li.h4{margin-left:16px}</style>"
)


def add_toc(body: str) -> str:
    """``body`` with a contents list of its h2–h4 headings after the first h1 (or at the top of <body>)."""
    entries = [(int(level), anchor, _text(title)) for level, anchor, title in _HEADING.findall(body)]
    if not entries:
        return body
    items = "".join(f'<li class="h{lvl}"><a href="#{html.escape(a, quote=True)}">{t}</a></li>' for lvl, a, t in entries)
    nav = f'{TOC_STYLE}<nav class="vyxops-toc" aria-label="Contents"><strong>Contents</strong><ul>{items}</ul></nav>'
    found = _FIRST_H1_END.search(body)
    if found:
        return body[: found.end()] + nav + body[found.end() :]
    return body.replace("<body>", "<body>" + nav, 1)


def _text(fragment: str) -> str:
    """A heading's visible text, escaped again (nbconvert already escaped what came from the notebook)."""
    return html.escape(html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip())

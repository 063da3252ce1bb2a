"""How a notebook helper shows something: Markdown text, a figure as PNG, a table, a command to copy, a link.

Tables and commands are HTML built here with every value escaped: what a platform put in a string is data."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def md(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def heading(value: object, level: int = 2) -> None:
    """A Markdown heading naming a platform value (an app from the org's list, say): escaped, so a name that
    holds a link or an image shows as text in the report (vyxops.core.text.md)."""
    md(heading_text(value, level))


def heading_text(value: object, level: int = 2) -> str:
    from vyxops.core.text import md as escaped

    return "#" * level + " " + escaped(value)


def show_html(fragment: str) -> None:
    """An HTML fragment built by the helpers here (escaped already)."""
    from IPython.display import HTML, display

    display(HTML(fragment))


def show_figure(fig: Figure) -> None:
    """Display a matplotlib Figure as a PNG (works without pyplot, headless, in HTML reports)."""
    import io

    from IPython.display import Image, display

    buf = io.BytesIO()
    # The figure lays itself out ("tight" would render twice). zlib's fastest level:
    # a quarter larger, a fifth of the encoding time.
    fig.savefig(buf, format="png", dpi=90, pil_kwargs={"compress_level": 1})
    display(Image(buf.getvalue()))


# !important: the report template's own rule (.jp-RenderedHTMLCommon td, right-aligned) is more specific.
# Cells keep their line breaks; a time never breaks across two lines.
TABLE_STYLE = (
    "<style>.vyxops-table{border-collapse:collapse}.vyxops-table th,.vyxops-table td"
    "{text-align:left !important;vertical-align:top;padding:2px 8px;white-space:pre-wrap}"
    ".vyxops-table .vyxops-time{white-space:nowrap}</style>"
)
#: Columns that hold a time (besides datetime columns): shown on one line.
TIME_COLUMNS = frozenset({"time", "at", "since", "until", "now"})


def table(df: pd.DataFrame, tz: str = "UTC") -> str:
    """A DataFrame as HTML a person reads: escaped, left-aligned, no index, blank for missing, one time format,
    times on one line."""
    import pandas as pd

    from vyxops.core.present import fmt_times

    view = df.copy()
    times = set()
    for column in view.columns:
        if isinstance(view[column].dtype, pd.DatetimeTZDtype):
            view[column] = fmt_times(view[column], tz)
            times.add(column)
        elif str(column) in TIME_COLUMNS or str(column).endswith("_at"):
            times.add(column)
    view = view.astype(object).where(view.notna(), "")
    head = "".join(f"<th>{_text(c)}</th>" for c in view.columns)
    cell = [' class="vyxops-time"' if c in times else "" for c in view.columns]
    rows = "".join(
        "<tr>" + "".join(f"<td{k}>{_text(v)}</td>" for k, v in zip(cell, row, strict=True)) + "</tr>\n"
        for row in view.itertuples(index=False, name=None)
    )
    return f'{TABLE_STYLE}<table class="vyxops-table"><thead><tr>{head}</tr></thead><tbody>\n{rows}</tbody></table>'


def _text(value: object) -> str:
    from html import escape

    return escape(str(value), quote=True)


COMMAND_STYLE = (
    "<style>.vyxops-command{display:flex;align-items:flex-start;gap:6px;margin:4px 0 8px}"
    ".vyxops-command pre{margin:0;padding:6px 8px;background:#f5f5f5;border:1px solid #ddd;text-align:left;"
    "white-space:pre-wrap;overflow-wrap:anywhere;font-family:var(--jp-code-font-family,monospace);flex:1}"
    ".vyxops-copy{flex:none;font-size:12px;padding:2px 8px;cursor:pointer}</style>"
)


def command_block(*commands: str) -> str:
    """Commands as code a person copies: each in its own ``<pre><code>`` block, escaped, with a Copy button (the
    report template's script copies it, offline too: vyxops/views/report_template/index.html.j2)."""
    return COMMAND_STYLE + "".join(
        f'<div class="vyxops-command"><pre><code>{_text(c)}</code></pre>\n'
        '<button type="button" class="vyxops-copy" title="Copy the command">Copy</button></div>'
        for c in commands
    )


def link(url: str, text: str | None = None) -> str:
    """An https URL as a link (escaped; it opens in a new tab); anything else as text, never as a link."""
    shown = _text(text if text is not None else url)
    if not url.startswith("https://"):
        return shown
    return f'<a href="{_text(url)}" target="_blank" rel="noopener noreferrer">{shown}</a>'

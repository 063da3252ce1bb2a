"""The two ways a notebook helper shows something: Markdown text and a figure as PNG."""

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
    holds a link or an image shows as text in the report (vyxops.text.md)."""
    md(heading_text(value, level))


def heading_text(value: object, level: int = 2) -> str:
    from vyxops.text import md as escaped

    return "#" * level + " " + escaped(value)


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
TABLE_STYLE = (
    "<style>.vyxops-table{border-collapse:collapse}.vyxops-table th,.vyxops-table td"
    "{text-align:left !important;vertical-align:top;padding:2px 8px}</style>"
)


def table(df: pd.DataFrame, tz: str = "UTC") -> str:
    """A DataFrame as HTML a person reads: escaped, left-aligned, no index, blank for missing, one time format."""
    import pandas as pd

    from vyxops.present import fmt_times

    view = df.copy()
    for column in view.columns:
        if isinstance(view[column].dtype, pd.DatetimeTZDtype):
            view[column] = fmt_times(view[column], tz)
    view = view.astype(object).where(view.notna(), "")
    return TABLE_STYLE + view.to_html(index=False, escape=True, na_rep="", justify="left", classes="vyxops-table")

"""Ad hoc exploration in JupyterLab: pickers over one target, the timeline filtered live.

:class:`Explorer` holds one app's evidence and answers what the pickers ask: the
rows of a machine, some kinds and a window (:meth:`Explorer.view`), one page of them
(:meth:`Explorer.page`) and their picture (:meth:`Explorer.plot`). :class:`ExplorerUI`
wires ipywidgets to it. Neither needs a browser: tests set widget values and read
the table's HTML.

Times read one way everywhere here, UTC to the millisecond: ``2025-10-02 16:18:40.123``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from vyxops.analysis.collect import collect_evidence
from vyxops.analysis.discover import resolve_contract
from vyxops.analysis.evidence import Evidence, parse_window
from vyxops.core.contract import Contract
from vyxops.core.errors import InputError, VyxopsError
from vyxops.core.timeutil import to_utc

if TYPE_CHECKING:
    from IPython.display import HTML
    from matplotlib.figure import Figure

    from vyxops.fetch.session import Session

COLUMNS = ["time", "source", "entity", "kind", "message"]
PAGE_SIZE = 25
PLOT_LANES = 12  # a fleet's dozens of machines would make the picture taller than the screen
TIME_EXAMPLE = "2025-10-02 16:18:40.123"
ALL_MACHINES = ""  # the machine picker's value for "all" (None would show as no choice at all)
_CELL = "text-align:left;vertical-align:top;padding:2px 10px 2px 0;"
_NOWRAP = "white-space:nowrap;"


def format_time(value: Any) -> str:
    """One time as ``2025-10-02 16:18:40.123`` (UTC, ms); blank when there is none."""
    ts = to_utc(value, "ms")
    return "" if ts is None or pd.isna(ts) else ts.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def format_times(times: pd.Series) -> pd.Series:
    """A time column as :func:`format_time` text, blanks for missing times."""
    utc = pd.to_datetime(times, utc=True)
    return utc.dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3].fillna("")


def read_window(since_text: str, until_text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The window typed into the since/until boxes; InputError naming the box and the format otherwise."""
    bounds = []
    for name, text in (("since", since_text), ("until", until_text)):
        try:
            ts = to_utc((text or "").strip())
        except (ValueError, TypeError):
            ts = None
        if ts is None:
            raise InputError(name, f"{text!r} is not a time", allowed=f"UTC, e.g. {TIME_EXAMPLE}")
        bounds.append(ts)
    since, until = bounds
    if since >= until:
        raise InputError("window", f"since ({format_time(since)}) must be before until ({format_time(until)})")
    return since, until


@dataclass(frozen=True)
class Page:
    """One page of a table: its rows, which page it is (from 0) of how many, over how many rows."""

    rows: pd.DataFrame
    number: int
    count: int
    total: int
    start: int

    def label(self) -> str:
        """What the pager says, e.g. ``rows 26–50 of 193 · page 2 of 8``."""
        if not self.total:
            return "no events in this selection"
        end = self.start + len(self.rows)
        return f"rows {self.start + 1}–{end} of {self.total} · page {self.number + 1} of {self.count}"


def page_of(table: pd.DataFrame, number: int, size: int) -> Page:
    """Page ``number`` (from 0, clamped to the pages there are) of ``table``, ``size`` rows a page."""
    size = max(1, int(size))
    count = max(1, -(-len(table) // size))
    number = min(max(0, int(number)), count - 1)
    start = number * size
    return Page(table.iloc[start : start + size], number, count, len(table), start)


def table_html(rows: pd.DataFrame) -> str:
    """Timeline rows as an HTML table a person reads: ms times, left-aligned, no index, blanks for nothing.

    Styles are inline, so that JupyterLab's right-aligned table style cannot win; only
    the message wraps, so a time stays on one line.
    """
    if rows.empty:
        return "<p>no events in this selection</p>"
    view = rows[COLUMNS].astype("string").fillna("")
    view["time"] = format_times(rows["time"])
    head = "".join(f'<th style="{_CELL}{_NOWRAP}">{name}</th>' for name in COLUMNS)
    styles = [_CELL + ("" if name == "message" else _NOWRAP) for name in COLUMNS]
    body = "".join(
        "<tr>" + "".join(f'<td style="{style}">{escape(value)}</td>' for style, value in zip(styles, row)) + "</tr>"
        for row in view.itertuples(index=False)
    )
    return f'<table class="vyxops-timeline"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def figure_png(fig: Figure, dpi: int = 72) -> bytes:
    """A matplotlib Figure as PNG bytes, for an ipywidgets Image."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


class Explorer:
    """One app's evidence and timeline, sliced by machine, kinds and window, a page at a time."""

    def __init__(
        self,
        session: Session,
        app: str | None = None,
        *,
        since: Any = None,
        until: Any = None,
        page_size: int = PAGE_SIZE,
        contract: Contract | str | Path | None = None,
    ) -> None:
        self.session = session
        self.declared = contract
        self.apps = [a["name"] for a in session.fly.list_apps(session.org)]
        self.app = app or (self.apps[0] if self.apps else "")
        self.page_size = page_size
        self.evidence: Evidence
        self.timeline: pd.DataFrame
        self.since: pd.Timestamp
        self.until: pd.Timestamp
        self.ui: ExplorerUI | None = None
        self.load(self.app, since, until)

    def load(self, app: str, since: Any = None, until: Any = None) -> None:
        """Read ``app``'s evidence for the window (default: the 24 h before the target's now)."""
        from vyxops.analysis.sources import build_timeline

        start, end = parse_window(self.session.now(), since, until)
        contract = resolve_contract(self.session, [app], declared=self.declared, since=start, until=end)
        self.declared = contract  # one project, one pipeline: discovered once for the explorer's apps
        self.evidence = collect_evidence(self.session, app, contract=contract, since=start, until=end)
        self.app = app
        self.timeline = build_timeline(**self.evidence.frames())
        self.since, self.until = self.evidence.since, self.evidence.until

    def set_window(self, since_text: str, until_text: str) -> None:
        """Show the window typed into the boxes; evidence is read again when it reaches past what was read."""
        since, until = read_window(since_text, until_text)
        if since < self.evidence.since or until > self.evidence.until:
            self.load(self.app, since, until)  # logs are read per window
        self.since, self.until = since, until

    def machines(self) -> list[str]:
        """The machines with events in the window, in the order they first appear."""
        tl = self._selected()
        return list(dict.fromkeys(tl.loc[tl["entity_type"] == "machine", "entity"].dropna().tolist()))

    def kinds(self) -> list[str]:
        return sorted(self.timeline["kind"].dropna().unique().tolist())

    def _selected(self, machine_id: str | None = None, kinds: list[str] | None = None) -> pd.DataFrame:
        from vyxops.analysis.timeline import filter_timeline

        tl = filter_timeline(self.timeline, machine_id=machine_id or None, since=self.since, until=self.until)
        return tl[tl["kind"].isin(kinds)].reset_index(drop=True) if kinds else tl

    def view(self, machine_id: str | None = None, kinds: list[str] | None = None) -> pd.DataFrame:
        """The window's timeline for one machine (its rows and logs too) and some kinds; None/empty means all."""
        return self._selected(machine_id, kinds)[COLUMNS]

    def page(self, number: int, machine_id: str | None = None, kinds: list[str] | None = None) -> Page:
        """Page ``number`` (from 0) of :meth:`view`, :attr:`page_size` rows a page."""
        return page_of(self.view(machine_id, kinds), number, self.page_size)

    def plot(self, machine_id: str | None = None) -> Figure:
        """The window's timeline for one machine (or all) as lanes, with releases, secrets and invocations."""
        from vyxops.views.plot import plot_timeline

        title = f"{self.app} · {'machine ' + machine_id if machine_id else 'all machines'} · "
        title += f"{format_time(self.since)} – {format_time(self.until)} UTC"
        roles = self.evidence.contract.status.role
        return plot_timeline(self._selected(machine_id), title=title, max_lanes=PLOT_LANES, roles=roles)

    def table(self, last: int = 20) -> HTML:
        """The window's last ``last`` events as a table (for a notebook run without widgets, e.g. by papermill)."""
        from IPython.display import HTML

        return HTML(table_html(self.view().tail(last)))

    def widget(self) -> Any:
        """Pickers for app, machine, window and kinds over a paged timeline table and its plot."""
        self.ui = ExplorerUI(self)
        return self.ui.box


class ExplorerUI:
    """The ipywidgets of an :class:`Explorer`; every widget is an attribute, so tests can drive it."""

    def __init__(self, explorer: Explorer) -> None:
        import ipywidgets as w

        self.explorer = explorer
        self.page_number = 0
        self._quiet = False  # set while options are replaced, so one change refreshes once
        ex = explorer
        self.app = w.Dropdown(options=ex.apps, value=ex.app or None, description="app")
        self.machine = w.Dropdown(options=self._machine_options(), value=ALL_MACHINES, description="machine")
        self.since = w.Text(value=format_time(ex.since), description="since", placeholder=TIME_EXAMPLE)
        self.until = w.Text(value=format_time(ex.until), description="until", placeholder=TIME_EXAMPLE)
        self.show_window = w.Button(description="show window", tooltip="show the events between since and until (UTC)")
        self.window_note = w.HTML()
        self.kinds = w.SelectMultiple(options=ex.kinds(), value=(), description="kinds", rows=8)
        self.prev = w.Button(description="◀ prev")
        self.next = w.Button(description="next ▶")
        self.pager = w.HTML()
        self.table = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.box = w.VBox(
            [
                w.HBox([self.app, self.machine]),
                w.HBox([self.since, self.until, self.show_window]),
                self.window_note,
                self.kinds,
                w.HBox([self.prev, self.pager, self.next]),
                self.table,
                self.image,
            ]
        )
        self._name_for_css()
        self._wire()
        self.refresh(plot=True)

    def _name_for_css(self) -> None:
        """A class on each widget, so a browser test (or a person's CSS) finds it by name."""
        self.box.add_class("vyxops-explorer")
        for name in ("app", "machine", "since", "until", "show_window", "window_note", "kinds"):
            getattr(self, name).add_class(f"vyxops-{name.replace('_', '-')}")
        for name in ("prev", "next", "pager", "table", "image"):
            getattr(self, name).add_class(f"vyxops-{name}")

    def _wire(self) -> None:
        self.app.observe(self._on_app, names="value")
        self.machine.observe(lambda _: self._first_page(plot=True), names="value")
        self.kinds.observe(lambda _: self._first_page(plot=False), names="value")
        self.show_window.on_click(lambda _: self._on_window())
        self.prev.on_click(lambda _: self._turn(-1))
        self.next.on_click(lambda _: self._turn(+1))

    def _machine_options(self) -> list[tuple[str, str]]:
        return [("all", ALL_MACHINES)] + [(m, m) for m in self.explorer.machines()]

    def _replace_options(self) -> None:
        """New machines and kinds after a reload; kinds still present stay selected."""
        self._quiet = True
        try:
            kept = tuple(k for k in self.kinds.value if k in self.explorer.kinds())
            self.kinds.options = self.explorer.kinds()
            self.kinds.value = kept
            machine = self.machine.value if self.machine.value in self.explorer.machines() else ALL_MACHINES
            self.machine.options = self._machine_options()
            self.machine.value = machine
        finally:
            self._quiet = False

    def _on_app(self, change: Any) -> None:
        try:
            self.explorer.load(change["new"], self.explorer.since, self.explorer.until)
        except VyxopsError as exc:
            self._note(str(exc), error=True)
            return
        self._replace_options()
        self._first_page(plot=True)

    def _on_window(self) -> None:
        try:
            self.explorer.set_window(self.since.value, self.until.value)
        except VyxopsError as exc:
            self._note(str(exc), error=True)
            return
        self.since.value, self.until.value = format_time(self.explorer.since), format_time(self.explorer.until)
        self._replace_options()
        self._first_page(plot=True)

    def _first_page(self, *, plot: bool) -> None:
        self.page_number = 0
        self.refresh(plot=plot)

    def _turn(self, step: int) -> None:
        self.page_number += step
        self.refresh(plot=False)

    def _note(self, text: str, *, error: bool = False) -> None:
        colour = "#b00020" if error else "inherit"
        self.window_note.value = f'<span style="color:{colour}">{escape(text)}</span>'

    def refresh(self, *, plot: bool) -> None:
        """Show the current page of the selection (and draw the selection again when ``plot``)."""
        if self._quiet:
            return
        machine, kinds = self.machine.value, list(self.kinds.value)
        page = self.explorer.page(self.page_number, machine, kinds)
        self.page_number = page.number
        # The pager and the note change last: a front end that sees them change has the rest.
        self.table.value = table_html(page.rows)
        if plot:
            self.image.value = figure_png(self.explorer.plot(machine))
        self.prev.disabled = page.number == 0
        self.next.disabled = page.number >= page.count - 1
        self.pager.value = page.label()
        self._note(f"window {format_time(self.explorer.since)} – {format_time(self.explorer.until)} UTC")

"""The timeline as a picture: one lane per machine and per DB row, markers for what changed.

Built only from a timeline DataFrame (:mod:`vyxops.analysis.timeline`), with the object API
(``matplotlib.figure.Figure``, no pyplot state), so it works headless, in tests and
in notebooks (a Figure displays itself in Jupyter).

- Lanes: every machine (``entity_type == "machine"``, its ``machine.*`` events) and
  every DB row (``db_row``), ordered by first event. A lane's segments are coloured
  by the state its events put it in (a row's state is the word after ``status`` in
  its message); each event is also a dot, because a machine that lives four seconds
  is invisible as a segment on a day-long axis. The last state is written beside it.
- Markers on the same axis: releases (dashed vertical line, ``vN``), secret changes
  (dotted vertical line, the secret's name) and function invocations (a row of
  triangles under the lanes: green for HTTP < 400 on its upper track, red below).
- When the lanes' activity fills under a tenth of the whole time span (seconds of
  machine life against a day of releases and secrets, the seed incident), a second
  panel zooms on it, with the same lanes and markers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num, num2date
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from vyxops.core.contract import FAILED, RUNNING, STARTING, STOPPED

# machine event kind -> the state it leaves the machine in; other kinds keep the state
MACHINE_STATES = {
    "machine.created": "created",
    "machine.launch": "created",
    "machine.start": "started",
    "machine.restart": "started",
    "machine.exit": "stopped",
    "machine.stop": "stopped",
    "machine.suspend": "suspended",
    "machine.launch_failed": "launch_failed",
    "machine.destroy": "destroyed",
}
TERMINAL = {"destroyed"}
STATE_COLOURS = {
    # machines
    "created": "#9ecae1",
    "started": "#31a354",
    "stopped": "#fd8d3c",
    "suspended": "#bcbddc",
    "launch_failed": "#de2d26",
    "destroyed": "#636363",
    "row created": "#d9d9d9",  # a row updated since: the status it was made with is not known
}
#: DB rows, by the role their team's status word plays (vyxops.core.contract): the team's own words are drawn.
ROLE_COLOURS = {STARTING: "#fdd0a2", RUNNING: "#74c476", STOPPED: "#fd8d3c", FAILED: "#a50f15"}
Roles = Callable[[object], "str | None"]
OTHER_COLOUR = "#969696"
OK_COLOUR, ERROR_COLOUR = "#2ca02c", "#d62728"
RELEASE_COLOUR, SECRET_COLOUR = "#3182bd", "#756bb1"
ZOOM_BELOW = 0.1  # zoom when the lanes' activity spans less than this share of the whole
ONE_SECOND = 1 / 86_400  # in matplotlib date units (days)
FIG_WIDTH_IN = 13
# Room, in inches, around the panels for what sits outside them: the title above a
# panel, the tick labels and axis label below it, padding beside the measured parts.
TITLE_IN, XAXIS_IN, PAD_IN = 0.35, 0.65, 0.12


@dataclass
class _Lane:
    label: str
    times: np.ndarray  # matplotlib date numbers
    states: list[str | None]  # the state each event leaves the lane in (None: unchanged)


@dataclass
class _Picture:
    """Everything drawn, read from the timeline once, shared by both panels."""

    lanes: list[_Lane]
    cut: int
    invocations: tuple[np.ndarray, np.ndarray]  # times, ok?
    invocation_label: str
    releases: list[tuple[float, str]]
    secrets: list[tuple[float, str]]
    start: float
    end: float
    states_used: list[str] = field(default_factory=list)
    roles: Roles | None = None  # a row's word -> its role, to colour a team's own words

    def colour(self, state: str) -> str:
        """A machine state's colour, else the colour of the role a row's word plays."""
        if state in STATE_COLOURS:
            return STATE_COLOURS[state]
        role = self.roles(state) if self.roles is not None else None
        return ROLE_COLOURS.get(role or "", OTHER_COLOUR)


def plot_timeline(tl: pd.DataFrame, *, title: str = "", max_lanes: int = 30, roles: Roles | None = None) -> Figure:
    """Draw ``tl`` as lanes of states with release, secret and invocation markers; return the Figure.

    At most ``max_lanes`` lanes (the earliest to appear) are drawn, and the title
    says how many were left out. An empty timeline gives an empty, labelled axis.
    ``roles`` (the contract's ``status.role``) colours a row's words by what they mean.
    """
    pic = _read(tl, max(1, int(max_lanes)))
    pic.roles = roles
    n_rows = len(pic.lanes) + (1 if len(pic.invocations[0]) else 0)
    zoom = _zoom_window(pic)
    panels = 2 if zoom else 1
    height = max(2.6, 1.3 + 0.4 * max(n_rows, 1))
    fig = Figure(figsize=(FIG_WIDTH_IN, height * panels + 0.4))
    axes = fig.subplots(panels, 1, squeeze=False)[:, 0]

    pad = max((pic.end - pic.start) * 0.03, ONE_SECOND)
    _draw(axes[0], pic, (pic.start - pad, pic.end + 2 * pad))
    heading = title or "timeline"
    if pic.cut:
        heading += f"  ({pic.cut} more lane{'s' if pic.cut != 1 else ''} not shown, max_lanes={max_lanes})"
    if not n_rows:
        heading += "  (no machines or DB rows)"
    axes[0].set_title(heading, loc="left", fontsize=10)
    if zoom:
        _draw(axes[1], pic, zoom)
        lo, hi = (num2date(x).strftime("%Y-%m-%d %H:%M:%S") for x in zoom)
        axes[1].set_title(f"zoom on the lanes: {lo} – {hi} UTC", loc="left", fontsize=9)
    legend = _legend(axes[0], pic)
    _place(fig, axes, legend)
    return fig


# --------------------------------------------------------------------------- reading the timeline


def _read(tl: pd.DataFrame, max_lanes: int) -> _Picture:
    kind = tl["kind"]
    machine = (tl["entity_type"] == "machine") & kind.str.startswith("machine.")
    row = tl["entity_type"] == "db_row"
    lane_events = tl[(machine | row).fillna(False).astype(bool)]
    firsts = lane_events.groupby("entity", sort=False, observed=True)["time"].min().sort_values(kind="stable")
    chosen = list(firsts.index[:max_lanes])
    picked = lane_events[lane_events["entity"].isin(chosen)]
    by_entity = {entity: events for entity, events in picked.groupby("entity", sort=False, observed=True)}
    lanes = []
    for entity in chosen:
        events = by_entity[entity]
        is_row = bool((events["entity_type"] == "db_row").any())
        times = date2num(_naive(events["time"]))
        if is_row:
            lanes.append(_Lane(_row_label(entity, events), times, _row_states(events)))
        else:
            lanes.append(_Lane(f"machine {entity}", times, [MACHINE_STATES.get(k) for k in events["kind"]]))

    inv = tl[kind == "function.invoked"]
    codes = pd.to_numeric(inv["status"], errors="coerce").astype("Float64")
    slugs = sorted(set(inv["entity"].dropna()))
    releases, secrets = tl[kind == "release.created"], tl[kind == "secret.updated"]
    times = _naive(tl["time"].dropna())
    if len(times):
        start, end = date2num(times.min()), date2num(times.max())
    else:
        start = date2num(np.datetime64("1970-01-01T00:00:00"))
        end = start + 1 / 24
    return _Picture(
        lanes=lanes,
        cut=len(firsts) - len(chosen),
        invocations=(date2num(_naive(inv["time"])), (codes < 400).fillna(False).to_numpy(dtype=bool)),
        invocation_label="invocations" + (f" ({', '.join(slugs)})" if 0 < len(slugs) <= 2 else ""),
        releases=list(zip(date2num(_naive(releases["time"])), _release_labels(releases))),
        secrets=list(zip(date2num(_naive(secrets["time"])), secrets["entity"].astype(str))),
        start=start,
        end=end,
    )


def _release_labels(releases: pd.DataFrame) -> list[str]:
    """``vN``, or ``<app> vN`` when releases of several apps share the axis."""
    versions = releases["entity"].astype(str).tolist()
    apps = releases["app"].astype(object).where(releases["app"].notna(), "?").tolist()
    if len(set(apps)) <= 1:
        return versions
    return [f"{a} {v}" for a, v in zip(apps, versions)]


def _row_states(events: pd.DataFrame) -> list[str | None]:
    return [
        s if isinstance(s, str) else ("row created" if k == "db.row.created" else None)
        for s, k in zip(events["status"].astype(object).tolist(), events["kind"].tolist())
    ]


def _row_label(entity: str, events: pd.DataFrame) -> str:
    machine = events["machine_id"].dropna()
    return f"row {str(entity)[:8]}" + (f" → {machine.iloc[0]}" if len(machine) else "")


def _zoom_window(pic: _Picture) -> tuple[float, float] | None:
    """The lanes' and invocations' time span, padded, when it is small against the whole."""
    parts = [lane.times for lane in pic.lanes] + [pic.invocations[0]]
    busy = np.concatenate([p for p in parts if len(p)]) if any(len(p) for p in parts) else np.array([])
    if not len(busy) or not pic.lanes:
        return None
    lo, hi = float(busy.min()), float(busy.max())
    whole = pic.end - pic.start
    if whole <= 0 or (hi - lo) >= ZOOM_BELOW * whole:
        return None
    pad = max((hi - lo) * 0.08, 2 * ONE_SECOND)
    return lo - pad, hi + 2.5 * pad  # more room on the right for the state labels


# --------------------------------------------------------------------------- drawing


def _draw(ax: Axes, pic: _Picture, xlim: tuple[float, float]) -> None:
    """Lanes, invocations and change markers on ``ax`` over ``xlim``."""
    labels = []
    for i, lane in enumerate(pic.lanes):
        # a lane's last state holds to the end of what is known: the panel's right edge
        _draw_lane(ax, i, lane, max(pic.end, xlim[1]), pic)
        labels.append(lane.label)
    if len(pic.invocations[0]):
        x, ok = pic.invocations
        y = len(pic.lanes)
        size = 36 if len(x) <= 200 else 14
        # ok and error calls on two tracks of the row, so that neither hides the other when dense
        ax.scatter(x[ok], np.full(int(ok.sum()), y - 0.15), marker="v", s=size, color=OK_COLOUR, zorder=4)
        ax.scatter(x[~ok], np.full(int((~ok).sum()), y + 0.15), marker="v", s=size, color=ERROR_COLOUR, zorder=4)
        labels.append(pic.invocation_label)
    _draw_changes(
        ax,
        [(t, name, RELEASE_COLOUR, "--") for t, name in pic.releases]
        + [(t, name, SECRET_COLOUR, ":") for t, name in pic.secrets],
        xlim,
    )

    n = len(labels)
    ax.set_yticks(range(n), labels, fontsize=8, family="monospace")
    ax.set_ylim(max(n, 1) - 0.4, -1.6)  # first lane on top; room above it for the change labels
    ax.set_xlim(*xlim)
    locator = AutoDateLocator(tz="UTC", minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz="UTC"))
    ax.set_xlabel("time (UTC)")
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)


def _draw_lane(ax: Axes, y: int, lane: _Lane, end: float, pic: _Picture) -> None:
    """Segments from each state change to the next (the last to ``end`` unless terminal), dots at events."""
    used = pic.states_used
    changes: list[tuple[float, str]] = []
    for t, s in zip(lane.times, lane.states):
        if s is not None and (not changes or s != changes[-1][1]):
            changes.append((float(t), s))
    for i, (t, s) in enumerate(changes):
        until = changes[i + 1][0] if i + 1 < len(changes) else (t if s in TERMINAL else end)
        if until > t:
            ax.broken_barh(
                [(t, until - t)],
                (y - 0.3, 0.6),
                facecolors=pic.colour(s),
                edgecolor="none",
                zorder=2,
            )
        if s not in used:
            used.append(s)
    colours = [pic.colour(s) if s else "white" for s in lane.states]
    ax.scatter(lane.times, np.full(len(lane.times), y), s=16, c=colours, edgecolors="black", linewidths=0.5, zorder=3)
    if changes:
        ax.annotate(
            changes[-1][1],
            (float(lane.times.max()), y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
            color="#333333",
            zorder=5,
            annotation_clip=True,
        )


def _draw_changes(ax: Axes, changes: list[tuple[float, str, str, str]], xlim: tuple[float, float]) -> None:
    """A vertical line per change (time, label, colour, style), labelled at the top.

    Labels of one colour at the same instant share a line of text; labels close to
    the previous one drop to the next of three levels so that they do not overlap.
    """
    width = xlim[1] - xlim[0]
    groups: list[tuple[float, str, list[str]]] = []  # (time, colour, names): one label each
    for t, name, colour, style in sorted(changes, key=lambda c: c[0]):
        ax.axvline(t, color=colour, linestyle=style, linewidth=1.0, zorder=1)
        if not xlim[0] <= t <= xlim[1]:
            continue
        same = [g for g in groups if g[1] == colour and abs(t - g[0]) <= 0.004 * width]
        if same:
            same[-1][2].append(name)  # too close to tell apart at this scale: one label
        else:
            groups.append((float(t), colour, [name]))
    level_end = [-1.0, -1.0, -1.0]  # axes fraction where the last label of each level ends (roughly)
    for t, colour, names in groups:
        text = ", ".join(dict.fromkeys(names))
        x = (t - xlim[0]) / width
        level = next((i for i, e in enumerate(level_end) if x > e), int(np.argmin(level_end)))
        level_end[level] = x + 0.0055 * len(text) + 0.01  # ~7 pt characters on a 13 in axis
        ax.annotate(
            text,
            (t, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3 - 10 * level),
            textcoords="offset points",
            va="top",
            ha="left",
            fontsize=7,
            color=colour,
            zorder=5,
        )


def _place(fig: Figure, axes: Any, legend: Any) -> None:
    """Set the margins from the measured lane labels and legend.

    This is what constrained layout would work out, but from the few texts that
    decide it, instead of a full extra draw of every artist (which doubled the
    cost of rendering the figure).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    width, height = fig.get_size_inches()
    labels = [t for ax in axes for t in ax.get_yticklabels() if t.get_text()]
    left = (
        max((t.get_window_extent(renderer).width / fig.dpi for t in labels), default=0.0) + PAD_IN
    )  # the tick marks fit in the pad
    right = legend.get_window_extent(renderer).width / fig.dpi + PAD_IN
    panels = len(axes)
    gap = XAXIS_IN + TITLE_IN - 0.15  # the lower title sits close to the axis above it
    panel = (height - TITLE_IN - XAXIS_IN - gap * (panels - 1)) / panels
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - TITLE_IN / height,
        bottom=XAXIS_IN / height,
        hspace=gap / panel if panels > 1 else 0.2,
    )


def _legend(ax: Axes, pic: _Picture) -> Any:
    handles: list[Any] = [Patch(facecolor=pic.colour(s), label=s) for s in pic.states_used]
    handles += [
        Line2D([], [], color=RELEASE_COLOUR, linestyle="--", label="release (vN)"),
        Line2D([], [], color=SECRET_COLOUR, linestyle=":", label="secret changed"),
    ]
    if len(pic.invocations[0]):
        handles += [
            Line2D([], [], color=OK_COLOUR, marker="v", linestyle="none", label="invocation ok (<400)"),
            Line2D([], [], color=ERROR_COLOUR, marker="v", linestyle="none", label="invocation error"),
        ]
    return ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)


def _naive(times: pd.Series) -> np.ndarray:
    """UTC times as naive datetime64 (what date2num reads), whatever the series' zone."""
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times.to_numpy(dtype="datetime64[ns]")

"""The explorer without a browser: window, paging, one time format, and the widgets driven by their values."""

from __future__ import annotations

import re
from html import unescape

import pandas as pd
import pytest

from vyxops.core.errors import InputError
from vyxops.fetch.session import Session, open_session
from vyxops.testing.fleet import generate_fleet
from vyxops.views.explore import ALL_MACHINES, Explorer, format_time, format_times, page_of, read_window, table_html

MS_TIME = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$"


@pytest.fixture(scope="module")
def fleet_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """A sandbox holding two apps with two dozen machines each over two days (read only by these tests)."""
    root = tmp_path_factory.mktemp("fleet")
    (root / "fleet.yaml").write_text(generate_fleet(apps=2, machines_per_day=12, days=2))
    return open_session("sandbox", scenario=root / "fleet.yaml", sandbox_dir=root / "sandbox")


@pytest.fixture
def explorer(fleet_session: Session) -> Explorer:
    return Explorer(fleet_session, "fleet-app-1")


def cells(html: str, column: int) -> list[str]:
    """The text of one column of a table_html table's body."""
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>", 1)[-1], re.S)
    return (
        [unescape(re.findall(r"<td(?: [^>]*)?>(.*?)</td>", row, re.S)[column]) for row in rows]
        if "<tbody>" in html
        else []
    )


def headers(html: str) -> list[str]:
    return re.findall(r"<th(?: [^>]*)?>(.*?)</th>", html)


# --------------------------------------------------------------------------- pure parts


def test_times_read_to_the_millisecond_without_nanosecond_noise() -> None:
    """A nanosecond timestamp reads `2025-10-02 16:18:40.123`; a missing one reads blank."""
    assert format_time(pd.Timestamp("2025-10-02T16:18:40.123456789Z")) == "2025-10-02 16:18:40.123"
    assert format_time(None) == ""
    times = pd.Series(pd.to_datetime(["2025-10-02T16:18:40Z", None], utc=True))
    assert format_times(times).tolist() == ["2025-10-02 16:18:40.000", ""]


def test_window_reads_the_explorers_format_and_rfc3339() -> None:
    """The since/until boxes take the format the explorer shows, with or without ms, and RFC 3339."""
    since, until = read_window("2025-10-02 16:18:40.123", "2025-10-02T17:25:00Z")
    assert since == pd.Timestamp("2025-10-02T16:18:40.123Z")
    assert until == pd.Timestamp("2025-10-02T17:25:00Z")
    assert read_window("2025-10-02 16:00", " 2025-10-02 17:00 ")[0].minute == 0


@pytest.mark.parametrize(
    ("since", "until", "named", "says"),
    [
        ("yesterday", "2025-10-02 17:00", "since", "2025-10-02 16:18:40.123"),
        ("2025-10-02 16:00", "", "until", "is not a time"),
        ("2025-10-02 17:00", "2025-10-02 16:00", "window", "must be before until"),
        ("2025-10-02 17:00", "2025-10-02 17:00", "window", "must be before until"),
    ],
)
def test_bad_window_is_an_input_error_naming_the_box(since: str, until: str, named: str, says: str) -> None:
    """A window that is not two times in order raises InputError naming the box and what it takes."""
    with pytest.raises(InputError) as info:
        read_window(since, until)
    assert info.value.name == named
    assert says in str(info.value)


def test_pages_cover_every_row_once_and_clamp_at_the_ends() -> None:
    """193 rows at 25 a page are 8 pages, the last of 18 rows; asking past either end gives the end."""
    table = pd.DataFrame({"n": range(193)})
    pages = [page_of(table, i, 25) for i in range(8)]
    assert [len(p.rows) for p in pages] == [25] * 7 + [18]
    assert pd.concat([p.rows for p in pages])["n"].tolist() == list(range(193))
    assert pages[1].label() == "rows 26–50 of 193 · page 2 of 8"
    assert page_of(table, 99, 25).number == 7 and page_of(table, -3, 25).number == 0


def test_an_empty_selection_is_one_page_that_says_so() -> None:
    """No rows make one empty page whose label says there is nothing to show."""
    page = page_of(pd.DataFrame({"n": []}), 2, 25)
    assert (page.number, page.count, page.total) == (0, 1, 0)
    assert page.label() == "no events in this selection"


def test_table_is_left_aligned_without_index_with_ms_times_and_blanks() -> None:
    """The table has the five columns and no index, every cell left-aligned, ms times, blanks, escaped text."""
    rows = pd.DataFrame(
        {
            "time": pd.to_datetime(["2025-10-02T16:18:40.123456789Z"], utc=True),
            "source": ["fly.events"],
            "entity": pd.array([None], dtype="string"),
            "kind": ["machine.start"],
            "message": ["<b>started</b>"],
        }
    )
    html = table_html(rows)
    assert headers(html) == ["time", "source", "entity", "kind", "message"]
    styles = re.findall(r'<t[hd] style="([^"]*)"', html)
    assert len(styles) == 10 == len(re.findall(r"<t[hd][ >]", html))
    assert all(style.startswith("text-align:left;") for style in styles)
    assert cells(html, 0) == ["2025-10-02 16:18:40.123"]
    assert cells(html, 2) == [""]
    assert "&lt;b&gt;started&lt;/b&gt;" in html


# --------------------------------------------------------------------------- the explorer over a fleet


def test_view_holds_only_the_window(explorer: Explorer) -> None:
    """The default window is the 24 h before the target's now, and the view holds nothing outside it."""
    view = explorer.view()
    assert explorer.until == explorer.session.now()
    assert explorer.until - explorer.since == pd.Timedelta(hours=24)
    assert len(view) and view["time"].between(explorer.since, explorer.until).all()
    assert len(view) < len(explorer.timeline)


def test_machine_picker_lists_the_machines_of_the_window(explorer: Explorer) -> None:
    """The machines offered are those with events in the window, and choosing one shows only its events."""
    machines = explorer.machines()
    assert len(machines) > 5
    view = explorer.view(machines[2])
    assert len(view) and ((view["entity"] == machines[2]) | view["message"].str.contains(machines[2])).all()
    explorer.set_window("2025-09-02 12:00", "2025-09-02 14:00")
    assert set(explorer.machines()) < set(machines)


def test_a_wider_window_reads_the_logs_again(explorer: Explorer) -> None:
    """A window reaching before what was read reads the evidence again, so its logs are there too."""
    before = len(explorer.view(kinds=["function.log"]))
    explorer.set_window("2025-09-01 00:00:00.000", format_time(explorer.until))
    logs = explorer.view(kinds=["function.log"])
    assert len(logs) > before
    assert logs["time"].min() < pd.Timestamp("2025-09-02T00:00:00Z")


# --------------------------------------------------------------------------- the widgets, driven by their values


def test_widget_pages_the_table(explorer: Explorer) -> None:
    """next shows the following rows (later in time), prev comes back, and the ends disable their button."""
    explorer.widget()
    ui = explorer.ui
    assert ui is not None
    first = cells(ui.table.value, 0)
    assert len(first) == 25 and ui.prev.disabled and not ui.next.disabled
    assert ui.pager.value.startswith("rows 1–25 of ")
    ui.next.click()
    second = cells(ui.table.value, 0)
    assert ui.pager.value.startswith("rows 26–50 of ") and second[0] >= first[-1] and second != first
    ui.prev.click()
    assert cells(ui.table.value, 0) == first
    while not ui.next.disabled:
        ui.next.click()
    assert ui.page_number == int(ui.pager.value.rsplit(" ", 1)[1]) - 1


def test_widget_filters_by_machine_and_kind(explorer: Explorer) -> None:
    """Picking a machine and then a kind narrows the table to them, back on the first page."""
    explorer.widget()
    ui = explorer.ui
    assert ui is not None
    ui.next.click()
    machine = explorer.machines()[1]
    ui.machine.value = machine
    assert ui.page_number == 0
    assert all(machine in e or machine in m for e, m in zip(cells(ui.table.value, 2), cells(ui.table.value, 4)))
    ui.kinds.value = ("machine.start",)
    assert cells(ui.table.value, 3) == ["machine.start"]
    assert ui.pager.value == "rows 1–1 of 1 · page 1 of 1"


def test_widget_window_shows_its_events_and_refuses_bad_input(explorer: Explorer) -> None:
    """A valid window narrows the table to it; a bad one says why in red and leaves the table as it was."""
    explorer.widget()
    ui = explorer.ui
    assert ui is not None
    ui.since.value, ui.until.value = "2025-09-02 06:00", "2025-09-02 07:00:00.000"
    ui.show_window.click()
    times = cells(ui.table.value, 0)
    assert times and all("2025-09-02 06:00:00.000" <= t <= "2025-09-02 07:00:00.000" for t in times)
    assert ui.since.value == "2025-09-02 06:00:00.000"
    before = ui.table.value
    ui.since.value = "2025-09-02 08:00"
    ui.show_window.click()
    assert "must be before until" in ui.window_note.value and "#b00020" in ui.window_note.value
    assert ui.table.value == before


def test_widget_plot_follows_machine_and_app(explorer: Explorer) -> None:
    """The plot is a PNG drawn again for another machine and another app, and the machine list follows the app."""
    explorer.widget()
    ui = explorer.ui
    assert ui is not None
    all_machines = ui.image.value
    assert all_machines[:8] == b"\x89PNG\r\n\x1a\n"
    ui.machine.value = explorer.machines()[0]
    assert ui.image.value != all_machines
    ui.app.value = "fleet-app-2"
    assert ui.machine.value == ALL_MACHINES and ui.machine.label == "all"
    assert [v for _, v in ui.machine.options][1:] == explorer.machines()
    assert all(m not in Explorer(explorer.session, "fleet-app-1").machines() for m in explorer.machines())


def test_notebook_table_shows_the_windows_last_events(explorer: Explorer) -> None:
    """explorer.table() is the window's last events in the explorer's table format."""
    html = explorer.table(last=5).data
    assert cells(html, 0) == [format_time(t) for t in explorer.view()["time"].tail(5)]

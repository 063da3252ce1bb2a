"""explore.ipynb in a real JupyterLab, driven by Playwright on Debian's Chromium (issue 12, "A real browser in CI").

One JupyterLab and one Chromium serve the module (starting them is most of the cost);
every test clears the notebook's outputs and runs all cells again, so it starts from
a fresh explorer. The sandbox holds a generated fleet (two apps, two dozen machines
each), enough for several machines and several pages. Skipped outside CI when
Chromium, Playwright or JupyterLab is missing; failed under CI=true (see browser.py).
"""

from __future__ import annotations

import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import chromium, chromium_page, chromium_process, jupyterlab, require_browser

from vyxops.testing.fleet import generate_fleet

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parent.parent
MS_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
FIRST_PAGE = re.compile(r"^rows 1–25 of (\d+) · page 1 of (\d+)$")
LAB_VIEWPORT = {"width": 1400, "height": 3000}  # tall enough for the whole explorer in one screenshot
RUN_TIMEOUT_MS = 90_000  # the first run imports pandas and matplotlib in a cold kernel


@pytest.fixture(scope="module")
def lab_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """explore.ipynb open in JupyterLab (a copy, over a fleet sandbox), in a Chromium page; all stopped after."""
    require_browser(jupyterlab=True)
    from vyxops_sandbox.world import World

    work = tmp_path_factory.mktemp("lab")
    root = work / "notebooks"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "explore.ipynb", root / "explore.ipynb")
    (work / "fleet.yaml").write_text(generate_fleet(apps=2, machines_per_day=12, days=2))
    World.load(work / "fleet.yaml", work / "sandbox")
    env = {"VYXOPS_SANDBOX_DIR": str(work / "sandbox"), "VYXOPS_AUDIT_LOG": str(work / "audit.jsonl")}
    with jupyterlab(root, work, env) as lab, chromium(work) as browser:
        page = browser.new_context(viewport=LAB_VIEWPORT).new_page()  # type: ignore[arg-type]
        page.set_default_timeout(30_000)
        page.goto(lab.open("explore.ipynb"))
        wait_for_kernel(page)
        close_file_browser(page)
        yield page


class ExplorerPage:
    """The explorer's widgets in the page, and the few things a person does with them."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.box = page.locator(".vyxops-explorer")
        self.pager = self.box.locator(".vyxops-pager")
        self.note = self.box.locator(".vyxops-window-note")
        self.table = self.box.locator(".vyxops-table table")
        self.image = self.box.locator("img.vyxops-image")

    def column(self, name: str) -> list[str]:
        index = self.headers().index(name) + 1
        return self.table.locator(f"tbody tr td:nth-child({index})").all_inner_texts()

    def headers(self) -> list[str]:
        return self.table.locator("thead th").all_inner_texts()

    def rows(self) -> list[list[str]]:
        return [row.locator("td").all_inner_texts() for row in self.table.locator("tbody tr").all()]

    def after(self, changed: Locator, action: object) -> None:
        """Do ``action``, wait until ``changed`` shows something new, then until the kernel is idle again.

        The kernel sends every widget change of one callback before it reports idle, so
        after both the whole page shows the action's outcome.
        """
        from playwright.sync_api import expect

        before = changed.inner_text()
        action()  # type: ignore[operator]
        expect(changed).not_to_have_text(before, use_inner_text=True)
        wait_for_kernel(self.page)

    def click(self, name: str) -> None:
        self.after(self.pager, lambda: self.box.locator(f".vyxops-{name}").click())

    def pick_machine(self, label: str) -> None:
        self.after(self.pager, lambda: self.box.locator(".vyxops-machine select").select_option(label=label))

    def machines(self) -> list[str]:
        return self.box.locator(".vyxops-machine select option").all_inner_texts()[1:]  # after "all"

    def pick_kinds(self, kinds: list[str]) -> None:
        self.after(self.pager, lambda: self.box.locator(".vyxops-kinds select").select_option(kinds))

    def type_window(self, since: str, until: str) -> None:
        self.box.locator(".vyxops-since input").fill(since)
        self.box.locator(".vyxops-until input").fill(until)
        self.after(self.note, lambda: self.box.locator(".vyxops-show-window").click())


def wait_for_kernel(page: Page) -> None:
    """Wait until the notebook's kernel is started and idle."""
    page.wait_for_function(
        """() => {
            const status = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
            const name = document.querySelector('.jp-NotebookPanel .jp-Toolbar-kernelName');
            return status && status.dataset.status === 'idle' && name && !/No Kernel/.test(name.textContent);
        }""",
        timeout=RUN_TIMEOUT_MS,
    )


def close_file_browser(page: Page) -> None:
    """Collapse the left sidebar (a click on its open tab), so the explorer gets the page's width."""
    from playwright.sync_api import expect

    tab = page.locator('.jp-SideBar.jp-mod-left [data-id="filebrowser"]')
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "false")


def menu(page: Page, top: str, item: str) -> None:
    page.get_by_role("menuitem", name=top, exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


@pytest.fixture
def explorer(lab_page: Page) -> ExplorerPage:
    """The notebook with its outputs cleared and all cells run again: a fresh explorer on its first page."""
    from playwright.sync_api import expect

    menu(lab_page, "Edit", "Clear Outputs of All Cells")
    expect(lab_page.locator(".vyxops-explorer")).to_have_count(0)
    menu(lab_page, "Run", "Run All Cells")
    ui = ExplorerPage(lab_page)
    expect(ui.pager).to_have_text(FIRST_PAGE, timeout=RUN_TIMEOUT_MS)
    wait_for_kernel(lab_page)
    return ui


def test_run_all_shows_the_windows_first_page_and_its_plot(
    explorer: ExplorerPage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run all shows 25 rows of many, five left-aligned columns and no index, ms times, and the plot."""
    total = int(FIRST_PAGE.match(explorer.pager.inner_text()).group(1))  # type: ignore[union-attr]
    assert total > 50
    assert explorer.headers() == ["time", "source", "entity", "kind", "message"]
    assert len(explorer.rows()) == 25
    assert all(MS_TIME.match(t) for t in explorer.column("time"))
    aligned = explorer.table.locator("th, td").evaluate_all("cells => cells.map(c => getComputedStyle(c).textAlign)")
    assert set(aligned) == {"left"}
    explorer.page.wait_for_function(  # the plot, decoded: wider than a broken-image icon
        "() => { const img = document.querySelector('.vyxops-explorer img.vyxops-image');"
        " return img && img.complete && img.naturalWidth > 600; }"
    )
    assert len(explorer.machines()) > 5
    shot = tmp_path / "explore.png"
    explorer.box.screenshot(path=str(shot))
    with capsys.disabled():
        print(f"\nscreenshot of the explorer in JupyterLab: {shot}")


def test_next_and_prev_page_through_the_timeline(explorer: ExplorerPage) -> None:
    """next shows rows 26–50, later than the first page's; prev shows the first page again."""
    first = explorer.rows()
    assert explorer.box.locator(".vyxops-prev").is_disabled()
    explorer.click("next")
    assert explorer.pager.inner_text().startswith("rows 26–50 of ")
    second = explorer.rows()
    assert len(second) == 25 and second[0][0] >= first[-1][0] and second != first
    explorer.click("prev")
    assert explorer.rows() == first


def test_picking_a_machine_then_kinds_narrows_the_table(explorer: ExplorerPage) -> None:
    """Another machine shows only its events and its own plot; kinds then keep only those kinds."""
    total = int(FIRST_PAGE.match(explorer.pager.inner_text()).group(1))  # type: ignore[union-attr]
    plot = explorer.image.get_attribute("src")
    machine = explorer.machines()[2]
    explorer.pick_machine(machine)
    rows = explorer.rows()
    assert 0 < len(rows) < total
    assert all(machine in entity or machine in message for _, _, entity, _, message in rows)
    assert explorer.image.get_attribute("src") != plot
    explorer.pick_kinds(["machine.launch", "machine.start"])
    assert sorted(explorer.column("kind")) == ["machine.launch", "machine.start"]
    assert set(explorer.column("entity")) == {machine}


def test_window_shows_only_its_events_and_bad_input_says_why(explorer: ExplorerPage) -> None:
    """A typed window narrows the table to it; since after until is refused in words and changes nothing."""
    explorer.type_window("2025-09-02 06:00", "2025-09-02 08:00:00.000")
    assert explorer.note.inner_text() == "window 2025-09-02 06:00:00.000 – 2025-09-02 08:00:00.000 UTC"
    times = explorer.column("time")
    assert times and all("2025-09-02 06:00:00.000" <= t <= "2025-09-02 08:00:00.000" for t in times)
    shown = explorer.rows()
    explorer.type_window("2025-09-02 09:00", "2025-09-02 08:00")
    assert "must be before until" in explorer.note.inner_text()
    assert explorer.rows() == shown


def test_picking_another_app_lists_its_machines(explorer: ExplorerPage) -> None:
    """Another app replaces the machine list and the table with that app's."""
    machines, rows = explorer.machines(), explorer.rows()
    # The table changes after the machine list (the pager may read the same for both apps).
    explorer.after(explorer.table, lambda: explorer.box.locator(".vyxops-app select").select_option("fleet-app-2"))
    assert explorer.machines() and not set(explorer.machines()) & set(machines)
    assert explorer.rows() != rows


# --------------------------------------------------------------------------- the helpers other browser tests use


def test_chromium_page_opens_a_local_html_file(tmp_path: Path) -> None:
    """chromium_page shows a local file (as an HTML report is opened) and its text can be read."""
    report = tmp_path / "report.html"
    report.write_text("<html><body><nav><a href='#f'>Findings</a></nav><h2 id='f'>Findings</h2></body></html>")
    with chromium_page(report, tmp_path) as page:
        assert page.url == report.as_uri()
        assert page.locator("nav a").all_inner_texts() == ["Findings"]


def test_chromium_is_stopped_even_when_the_test_fails_inside(tmp_path: Path) -> None:
    """An error inside the block still stops Chromium: its DevTools port stops answering."""
    require_browser()

    def answers(endpoint: str) -> bool:
        try:
            with urllib.request.urlopen(endpoint + "/json/version", timeout=2):
                return True
        except OSError:
            return False

    with pytest.raises(RuntimeError, match="the test failed"), chromium_process(tmp_path) as endpoint:
        assert answers(endpoint)
        raise RuntimeError("the test failed")
    assert not answers(endpoint)

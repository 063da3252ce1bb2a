"""Each HTML report opened in a real browser: its table of contents works, the root cause comes first, it asks
nothing of any host but 127.0.0.1 while it loads, and its Copy buttons copy the commands."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import chromium, open_page, require_browser

from vyxops.shell.cli import main

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

APP = "vyx-app"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """investigate, remediate and audit reports of the seed, written before any browser opens."""
    require_browser()
    import os

    base = tmp_path_factory.mktemp("reports")
    os.environ["VYXOPS_SANDBOX_DIR"] = str(base / "sandbox")
    os.environ["VYXOPS_AUDIT_LOG"] = str(base / "audit.jsonl")
    try:
        seed = ["--scenario", "stub-image", "--app", APP]
        assert main(["investigate", *seed, "--out", str(base / "investigate")]) == 0
        assert main(["remediate", *seed, "--out", str(base / "remediate")]) == 0
        assert main(["audit", *seed, "--out", str(base / "audit")]) == 1
    finally:
        os.environ.pop("VYXOPS_SANDBOX_DIR")
        os.environ.pop("VYXOPS_AUDIT_LOG")
    return {name: base / name / f"{name}.html" for name in ("investigate", "remediate", "audit")}


@pytest.mark.parametrize("name", ["investigate", "remediate", "audit"])
def test_every_entry_of_the_contents_leads_to_its_heading(reports: dict[str, Path], name: str, tmp_path: Path) -> None:
    """Clicking each table-of-contents link brings its heading into view; the contents sit above the first heading."""
    with chromium(tmp_path) as browser:
        page = open_page(browser, reports[name])
        links = page.locator("nav.vyxops-toc a")
        assert links.count() >= 2, f"{name}.html has no table of contents"
        for i in range(links.count()):
            link = links.nth(i)
            target = link.get_attribute("href") or ""
            link.click()
            heading = page.locator(f"[id='{target[1:]}']")
            heading.wait_for(state="attached", timeout=5000)
            assert heading.is_visible() and heading.evaluate(
                "h => { const r = h.getBoundingClientRect(); return r.top >= -2 && r.top < window.innerHeight; }"
            ), f"{target} not scrolled into view"
        toc_top = page.locator("nav.vyxops-toc").bounding_box()["y"]  # type: ignore[index]
        first_h2 = page.locator("h2").first.bounding_box()["y"]  # type: ignore[index]
        assert toc_top < first_h2


def test_the_investigation_shows_the_root_cause_first_and_the_sections_in_order(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    """As rendered: Summary, Findings (root cause first), Recommended fixes, Incident timeline, Full timeline."""
    with chromium(tmp_path) as browser:
        page = open_page(browser, reports["investigate"])
        sections = [t.strip() for t in page.locator("h2").all_inner_texts() if t.strip()]
        order = ["Summary", "Findings", "Recommended fixes", "Incident timeline", "Full timeline"]
        assert [s.rstrip("¶") for s in sections if s.rstrip("¶") in order] == order
        findings = [t.rstrip("¶").strip() for t in page.locator("h4").all_inner_texts()]
        assert findings[0] == "SECRET_IMAGE_NOT_CURRENT_RELEASE — root cause"
        aligns = page.locator("table.vyxops-table td").evaluate_all("cs => cs.map(c => getComputedStyle(c).textAlign)")
        assert aligns and set(aligns) == {"left"}, "tables must read left-aligned as rendered"
        shot = tmp_path / "investigate.png"
        page.screenshot(path=str(shot), full_page=False)
        print(f"screenshot: {shot}")


# ------------------------------------------------------------------ offline, self-contained, copyable (issue 20)

LOCAL = ("file://", "data:", "about:", "blob:")


@contextmanager
def served(root: Path) -> Iterator[str]:
    """``root`` over HTTP on 127.0.0.1 (a thread this test starts and stops), as a person's local server would."""
    handler = partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="report-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def load_recording(browser: Browser, url: str) -> tuple[Page, list[str]]:
    """``url`` loaded in a fresh context that records every request the page makes; any that would leave
    127.0.0.1 (or the file system) is recorded and aborted, never sent."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[arg-type]
    requests: list[str] = []

    def route(r: Route) -> None:
        if r.request.url.startswith(LOCAL) or r.request.url.startswith("http://127.0.0.1:"):
            r.continue_()
        else:
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url, wait_until="load")
    page.wait_for_timeout(1500)  # scripts that load more later (MathJax's config, a dynamic import) have done so
    return page, requests


@pytest.mark.parametrize("name", ["investigate", "remediate", "audit"])
def test_no_request_leaves_127_0_0_1_while_a_report_loads(reports: dict[str, Path], name: str, tmp_path: Path) -> None:
    """Opened from disk and from a server on 127.0.0.1, a report asks nothing of any other host: no script, style
    sheet, font or image from a CDN; and it holds no <script src>."""
    report = reports[name]
    with served(report.parent) as base, chromium(tmp_path) as browser:
        for url in (report.resolve().as_uri(), f"{base}/{report.name}"):
            page, requests = load_recording(browser, url)
            away = [u for u in requests if not (u.startswith(LOCAL) or u.startswith(base))]
            assert requests and not away, f"{name}.html ({url.split(':')[0]}) asked for {away[:5]}"
            assert page.locator("script[src]").count() == 0
            assert page.evaluate("() => typeof window.MathJax === 'undefined' && typeof window.require === 'undefined'")


def test_each_copy_button_copies_its_command_exactly(reports: dict[str, Path], tmp_path: Path) -> None:
    """In remediate.html each by-hand command is a <pre> block whose Copy button puts exactly that command (its `$`
    and quotes as printed) on the clipboard, through the Clipboard API."""
    plan = json.loads((reports["remediate"].parent / "plan.json").read_text())
    natives = [c for a in plan["actions"] for c in a["native"]]
    with chromium(tmp_path) as browser:
        context = browser.new_context()
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.goto(reports["remediate"].resolve().as_uri())
        blocks = page.locator("div.vyxops-command")
        shown = page.locator("div.vyxops-command pre").all_inner_texts()
        assert all(c in shown for c in natives) and any("$" in c for c in natives)
        for i in range(blocks.count()):
            block = blocks.nth(i)
            button = block.locator("button.vyxops-copy")
            button.click()
            button.filter(has_text="Copied").wait_for(timeout=5000)  # written (the API answers asynchronously)
            assert page.evaluate("() => navigator.clipboard.readText()") == block.locator("pre code").text_content()
        assert blocks.count() == len(natives) + 1  # the by-hand commands and the apply command of the dry run


def test_the_copy_button_works_without_the_clipboard_api(reports: dict[str, Path], tmp_path: Path) -> None:
    """Where the Clipboard API is missing (an older browser, a page it is not offered to), the button copies
    through a selected textarea and execCommand('copy'): what is selected then is exactly the command."""
    with chromium(tmp_path) as browser:
        context = browser.new_context()
        context.add_init_script(
            "Object.defineProperty(navigator, 'clipboard', {value: undefined});"
            "window.__copied = [];"
            "const exec = document.execCommand.bind(document);"
            "document.execCommand = (cmd, ...rest) => {"
            "  if (cmd === 'copy') { window.__copied.push(document.activeElement.value"
            "    .slice(document.activeElement.selectionStart, document.activeElement.selectionEnd)); }"
            "  return exec(cmd, ...rest); };"
        )
        page = context.new_page()
        page.goto(reports["remediate"].resolve().as_uri())
        first = page.locator("div.vyxops-command").first
        first.locator("button.vyxops-copy").click()
        copied = page.evaluate("() => window.__copied")
        assert copied == [first.locator("pre code").text_content()]
        assert first.locator("button.vyxops-copy").inner_text() in ("Copied", "Select and copy")
        assert page.locator("textarea").count() == 0  # the buffer is gone again

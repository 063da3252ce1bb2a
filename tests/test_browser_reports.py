"""Each HTML report opened in a real browser: its table of contents works and the root cause comes first."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import chromium, open_page, require_browser

from vyxops.cli import main

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

"""The reports people read: order, contents, one time format, runnable commands, hostile data kept as text."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from vyxops.shell.cli import build_parser, main
from vyxops.views.report import add_toc

APP = "vyx-app"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_IMG = "<img src=x onerror=alert(2)>"


@pytest.fixture(scope="module")
def seed_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed-report")
    import os

    os.environ["VYXOPS_SANDBOX_DIR"] = str(out / "sandbox")
    os.environ["VYXOPS_AUDIT_LOG"] = str(out / "audit.jsonl")
    try:
        assert main(["investigate", "--scenario", "stub-image", "--app", APP, "--out", str(out / "r")]) == 0
    finally:
        os.environ.pop("VYXOPS_SANDBOX_DIR")
        os.environ.pop("VYXOPS_AUDIT_LOG")
    return out / "r"


def visible_text(html: str) -> str:
    body = html.split("<body", 1)[1]
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


def test_the_report_reads_summary_findings_fixes_then_timelines_with_contents(seed_report: Path) -> None:
    """Sections come in the order a person reads them, a table of contents lists them, the root cause comes first."""
    html = (seed_report / "investigate.html").read_text()
    order = ["Summary", "Findings", "Recommended-fixes", "Incident-timeline", "Full-timeline"]
    at = [html.index(f'<h2 id="{name}"') for name in order]
    assert at == sorted(at)
    toc = html[html.index('<nav class="vyxops-toc"') : html.index("</nav>")]
    assert all(f'href="#{name}"' in toc for name in order) and html.index("<nav") < at[0]
    findings = re.findall(r'<h4 id="([A-Z_]+)', html)
    assert findings[0] == "SECRET_IMAGE_NOT_CURRENT_RELEASE"


def test_tables_are_left_aligned_without_an_index_and_times_have_one_format(seed_report: Path) -> None:
    """No pandas index column, left-aligned cells, every shown time as 'YYYY-MM-DD HH:MM:SS.mmm UTC', no NaN/None."""
    html = (seed_report / "investigate.html").read_text()
    assert "vyxops-table" in html and "text-align:left" in html
    assert "<th></th>" not in html  # an index header
    text = visible_text(html)
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text), "an RFC 3339 time in the report's text"
    assert re.search(r"2025-10-02 16:18:44\.130 UTC", text)
    assert not re.search(r"\b(NaN|None|<NA>|NaT)\b", text)


def test_the_report_says_impact_and_links_the_dashboards(seed_report: Path) -> None:
    """The summary counts the failed sessions and users and links Fly's and Supabase's pages for the app."""
    html = (seed_report / "investigate.html").read_text()
    assert "1 session(s) for 1 user(s) failed at 2025-10-02 16:18:44.130 UTC" in html  # the one time format
    assert 'href="https://fly.io/apps/vyx-app/machines"' in html
    assert "https://supabase.com/dashboard/project/vyxsandboxprojectref/" in html


def test_every_command_a_report_prints_runs_as_printed(seed_report: Path) -> None:
    """The remediate commands in the report and the postmortem parse as complete CLI invocations."""
    texts = [visible_text((seed_report / "investigate.html").read_text()), (seed_report / "postmortem.md").read_text()]
    commands = [m.strip().strip("`") for t in texts for m in re.findall(r"vyxops remediate[^\n`]*", t)]
    assert commands
    for command in commands:
        words = shlex.split(command.replace("&#x27;", "'"))[1:]
        if "--apply" not in words and "add" in words:
            continue
        args = build_parser().parse_args(words)  # raises on anything incomplete
        assert args.out and args.app == APP and "DIR" not in command


def test_the_postmortem_has_every_section_and_pastes_as_markdown(seed_report: Path) -> None:
    """postmortem.md holds summary, impact, timeline, root cause with evidence, what was done and action items."""
    text = (seed_report / "postmortem.md").read_text()
    for heading in (
        "## Summary",
        "## Impact",
        "## Timeline",
        "## Root cause and evidence",
        "## What was done",
        "## Action items",
    ):
        assert heading in text
    assert "SECRET_IMAGE_NOT_CURRENT_RELEASE" in text and "- [ ] `PIN_SECRET_TO_RELEASE`" in text
    assert "| time | source | what happened |" in text and "<script" not in text


def test_a_postmortem_after_fixes_says_what_was_done(sandbox_env: Path, tmp_path: Path) -> None:
    """After `remediate --apply`, the next investigation's postmortem lists the applied actions from the audit log."""
    assert (
        main(
            [
                "remediate",
                "--scenario",
                "stub-image",
                "--app",
                APP,
                "--apply",
                "--confirm",
                APP,
                "--out",
                str(tmp_path / "fix"),
            ]
        )
        == 0
    )
    assert main(["investigate", "--scenario", "stub-image", "--app", APP, "--out", str(tmp_path / "after")]) == 0
    text = (tmp_path / "after" / "postmortem.md").read_text()
    done = text.split("## What was done", 1)[1].split("##", 1)[0]
    assert "PIN_SECRET_TO_RELEASE" in done and "applied" in done


def test_hostile_strings_from_the_platforms_stay_text_in_every_report(sandbox_env: Path, tmp_path: Path) -> None:
    """A user id, region and row error holding HTML reach investigate.html and postmortem.md escaped, not as markup."""
    scenario = tmp_path / "hostile.yaml"
    scenario.write_text(
        f"""name: hostile
now: 2025-10-02T17:25:00Z
fly: {{org: personal, apps: [vyx-app]}}
supabase: {{project_ref: vyxsandboxprojectref, machines_table: machines}}
pipeline: {{table: {{columns: {{error: error}}}}}}  # a table that keeps an error column, to plant text in
images:
  registry.fly.io/vyx-app:stub: {{behaviour: exit, exit_code: 0, after_s: 2}}
steps:
  - at: 2025-10-02T16:00:00Z
    deploy: {{app: vyx-app, image: registry.fly.io/vyx-app:deployment-01K6JV132H7B7Y5PP8Y5QSR23X}}
  - at: 2025-10-02T16:10:00Z
    set_secret: {{name: DOCKER_IMAGE, value: registry.fly.io/vyx-app:stub}}
  - at: 2025-10-02T16:18:40Z
    invoke:
      function: provision-machine
      body: {{user_id: "{HOSTILE}", region: "{HOSTILE_IMG}"}}
      machine_id: 5683732efe3208
  - at: 2025-10-02T16:30:00Z
    db_update: {{table: machines, match: {{fly_machine_id: 5683732efe3208}}, set: {{error: "{HOSTILE}"}}}}
"""
    )
    assert main(["investigate", "--scenario", str(scenario), "--app", APP, "--out", str(tmp_path / "r")]) == 0
    html = (tmp_path / "r" / "investigate.html").read_text()
    assert HOSTILE not in html and HOSTILE_IMG not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    assert HOSTILE not in (tmp_path / "r" / "postmortem.md").read_text()


def test_the_table_of_contents_escapes_heading_text() -> None:
    """A heading holding markup is listed as text."""
    body = (
        '<h1 id="t">T<a class="anchor-link" href="#t">¶</a></h1>'
        '<h2 id="x">&lt;b&gt;x<a class="anchor-link" href="#x">¶</a></h2>'
    )
    out = add_toc(body)
    assert '<a href="#x">&lt;b&gt;x</a>' in out and out.index("<nav") > out.index("</h1>")


# ------------------------------------------------------------------ self-contained, copyable, quiet reports (issue 20)

SEEN_BY_A_FOREIGN_TOKEN = "stub-image-in-repository-the-token-cannot-see"  # one image the token may not check
# What a page loads: <script src>, <link href>, <img src>, <iframe src>, CSS @import and url(), JS import().
LOADED = re.compile(
    r"<(?:script|img|iframe|source|embed)\b[^>]*?\bsrc\s*=\s*[\"']?([^\"'\s>]+)"
    r"|<link\b[^>]*?\bhref\s*=\s*[\"']?([^\"'\s>]+)"
    r"|@import\s+(?:url\()?[\"']?([^\"')\s;]+)"
    r"|url\(\s*[\"']?([^\"')\s]+)"
    r"|\bimport\(\s*[\"']([^\"']+)",
    re.I,
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shipped runs a person reads: the seed's remediate dry run, a healthy investigation, an investigation and
    an --all audit that meet an image the token may not check (an incomplete frame), and a capture of it."""
    out = tmp_path_factory.mktemp("runs")
    import os

    os.environ["VYXOPS_SANDBOX_DIR"] = str(out / "sandbox")
    os.environ["VYXOPS_AUDIT_LOG"] = str(out / "audit.jsonl")
    try:
        assert main(["remediate", "--scenario", "stub-image", "--app", APP, "--out", str(out / "remediate")]) == 0
        assert main(["investigate", "--scenario", "healthy", "--app", APP, "--out", str(out / "healthy")]) == 0
        foreign = ["--scenario", SEEN_BY_A_FOREIGN_TOKEN]
        assert main(["investigate", *foreign, "--app", APP, "--out", str(out / "foreign")]) == 0
        assert main(["audit", *foreign, "--all", "--out", str(out / "audit")]) == 1
    finally:
        os.environ.pop("VYXOPS_SANDBOX_DIR")
        os.environ.pop("VYXOPS_AUDIT_LOG")
    return out


def reports_of(runs: Path, seed_report: Path) -> list[Path]:
    return [seed_report / "investigate.html", *sorted(runs.glob("*/*.html"))]


def test_no_report_loads_anything_from_elsewhere(runs: Path, seed_report: Path) -> None:
    """No script, style sheet, font or image from a CDN or any other host: a report reads offline and calls no
    third party (no MathJax, require.js, Mermaid or widget renderer)."""
    reports = reports_of(runs, seed_report)
    assert {p.name for p in reports} == {"investigate.html", "remediate.html", "audit.html"}
    for report in reports:
        html = report.read_text()
        loaded = [next(g for g in m.groups() if g) for m in LOADED.finditer(html)]
        foreign = [u for u in loaded if re.match(r"^[a-z][a-z0-9+.-]*:|^//", u, re.I) and not u.startswith("data:")]
        assert not foreign, f"{report.parent.name}/{report.name} loads {foreign[:5]}"
        assert "mathjax" not in html.lower() and "require.min.js" not in html and "unpkg.com" not in html


def test_the_executed_notebooks_and_capture_print_no_warning(
    runs: Path, seed_report: Path, sandbox_env: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """No stderr output in any executed notebook (a red box atop the report), even where a frame is incomplete;
    `vyxops capture` of that evidence prints nothing on stderr when it succeeds."""
    import json

    for notebook in [seed_report / "investigate.ipynb", *sorted(runs.glob("*/*.ipynb"))]:
        cells = json.loads(notebook.read_text())["cells"]
        errs = [
            o for c in cells for o in c.get("outputs", []) if o.get("name") == "stderr" or o["output_type"] == "error"
        ]
        assert not errs, f"{notebook.parent.name}/{notebook.name}: {errs[0]}"
    assert "Incomplete evidence" in (runs / "foreign" / "investigate.html").read_text()  # said there, as text
    capfd.readouterr()
    assert main(["capture", "--scenario", SEEN_BY_A_FOREIGN_TOKEN, "--app", APP, "--out", str(tmp_path / "b")]) == 0
    captured = capfd.readouterr()
    assert captured.err == "" and "bundle:" in captured.out


def test_each_by_hand_command_is_its_own_code_block_and_dashboards_are_links(runs: Path) -> None:
    """remediate.html shows every native command of plan.json in a <pre><code> block of its own with a Copy button,
    never lines joined by a literal "\\n"; each dashboard page is a link."""
    import html as h
    import json

    page = (runs / "remediate" / "remediate.html").read_text()
    plan = json.loads((runs / "remediate" / "plan.json").read_text())
    blocks = re.findall(
        r'<div class="vyxops-command"><pre><code>(.*?)</code></pre>\s*<button[^>]*>Copy</button>', page, re.S
    )
    natives = [c for a in plan["actions"] for c in a["native"]]
    assert natives and all(c in [h.unescape(b) for b in blocks] for c in natives)
    assert "\\n" not in visible_text(page)
    dashboards = [u for a in plan["actions"] for u in a["dashboard"]]
    assert dashboards and all(f'<a href="{h.escape(u, quote=True)}"' in page for u in dashboards)
    # the apply command of the dry run is a block too
    assert any(b.startswith("vyxops remediate ") and "--apply" in b for b in map(h.unescape, blocks))


def test_the_audit_table_has_no_index_and_no_nan(runs: Path) -> None:
    """audit.html's table of apps: the frame's own columns, left-aligned, blank where there is nothing."""
    page = (runs / "audit" / "audit.html").read_text()
    head = re.search(r'<table class="vyxops-table"><thead><tr>(.*?)</tr>', page, re.S)
    assert head and re.findall(r"<th>(.*?)</th>", head.group(1))[0] == "app"
    assert "<th></th>" not in page and 'class="dataframe"' not in page
    assert not re.search(r"\b(NaN|None|<NA>|NaT)\b", visible_text(page))


def test_the_healthy_report_has_no_empty_table_and_times_stay_on_one_line(runs: Path) -> None:
    """A healthy run's incident timeline says there was none instead of a header over nothing; time cells never
    wrap."""
    page = (runs / "healthy" / "investigate.html").read_text()
    incident = page[page.index('id="Incident-timeline"') : page.index('id="Full-timeline"')]
    assert "<table" not in incident and "No incident in the window" in incident
    for table in re.findall(r"<table.*?</table>", page, re.S):
        assert "<td" in table, "a table with a header and no rows"
    assert '<td class="vyxops-time">' in page and ".vyxops-table .vyxops-time{white-space:nowrap}" in page


def test_links_and_command_blocks_keep_hostile_text_as_text() -> None:
    """Only an https URL becomes a link, its quotes and markup escaped; a command holding markup is shown, not run."""
    from vyxops.views.display import command_block, link

    evil = 'https://x.example/"><script>alert(1)</script>'
    assert link(evil).startswith('<a href="https://x.example/&quot;&gt;&lt;script&gt;') and "<script>" not in link(evil)
    assert link("javascript:alert(1)") == "javascript:alert(1)" and "<a" not in link("http://plain.example")
    block = command_block(f"echo {HOSTILE} $HOME")
    assert "<pre><code>echo &lt;script&gt;alert(1)&lt;/script&gt; $HOME</code></pre>" in block

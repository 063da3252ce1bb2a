"""The reports people read: order, contents, one time format, runnable commands, hostile data kept as text."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from vyxops.cli import build_parser, main
from vyxops.report import add_toc

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
    assert "1 session(s) for 1 user(s) failed at 2025-10-02 16:18 UTC" in html
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

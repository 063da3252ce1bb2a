"""Time in and out (issue 20): --since/--until take RFC 3339, the report's own format and durations; a zone-less
time is read in --tz and the report says so; every time a person reads is told in --tz."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from vyxops.analysis.evidence import parse_window
from vyxops.analysis.investigate import Investigation, investigate
from vyxops.core.checks import check_window
from vyxops.core.coverage import Gap
from vyxops.core.errors import InputError
from vyxops.core.present import fmt_time
from vyxops.core.timeutil import TIME_FORMS, iso, parse_time_input
from vyxops.fetch.session import open_session
from vyxops.shell.cli import main
from vyxops.views.postmortem import render_postmortem

APP = "vyx-app"
SEED = "stub-image"
NOW = pd.Timestamp("2025-10-02T17:25:00Z")
#: A time as the report prints it (vyxops.core.present.fmt_time): date, clock to the ms, the zone's name or offset.
SHOWN_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} (?:[A-Z]{2,6}|[+-]\d{2,4})")


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["--since", "2 hours"], "--since"),
        (["--until", "tomorrow"], "--until"),
        (["--since", "2025-10-26 02:30", "--tz", "Europe/Paris"], "--since"),  # twice that night in Paris
        (["--since", "2025-10-02 18:00 CEST"], "--since"),  # CEST is not what --tz UTC calls it
        (["--since", "2025-10-02 19:40", "--until", "2025-10-02T17:30:00Z", "--tz", "Europe/Paris"], "--since/--until"),
    ],
)
def test_bad_time_input_exits_2_naming_the_option_and_the_forms_before_a_kernel(
    args: list[str], name: str, sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_kernel: None
) -> None:
    out = tmp_path / "out"
    assert main(["investigate", "--scenario", SEED, "--app", APP, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vyxops: {name}")
    if name != "--since/--until":
        assert all(form in err for form in TIME_FORMS)  # what would be valid, each form with an example
    assert not out.exists()


def test_the_window_reads_durations_from_until_or_now_and_zone_less_times_in_tz() -> None:
    assert parse_window(NOW, "2h") == (NOW - pd.Timedelta(hours=2), NOW)
    assert parse_window(NOW, "1d12h", "30m") == (
        NOW - pd.Timedelta(hours=36, minutes=30),
        NOW - pd.Timedelta(minutes=30),
    )
    start, end = parse_window(NOW, "2025-10-02 19:00", "2025-10-02 19:20:00.000 CEST", tz="Europe/Paris")
    assert (start, end) == (pd.Timestamp("2025-10-02T17:00:00Z"), pd.Timestamp("2025-10-02T17:20:00Z"))
    # The CLI's check reads the same zone: 19:00 in Paris is before 17:30 UTC, in UTC it is not.
    check_window("2025-10-02 19:00", "2025-10-02T17:30:00Z", "Europe/Paris")
    with pytest.raises(InputError, match="--since/--until"):
        check_window("2025-10-02 19:00", "2025-10-02T17:30:00Z", "UTC")


def _run(sandbox_dir: Path, tz: str, **kw: Any) -> Investigation:
    with open_session("sandbox", scenario=SEED, sandbox_dir=sandbox_dir) as s:
        return investigate(s, APP, tz=tz, **kw)


def _report_text(inv: Investigation, tz: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """What the investigate notebook shows (header, summary with impact, findings) and the postmortem, as text."""
    from vyxops import nbtools

    shown: list[str] = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **k: shown.extend(str(o.data) for o in objs))
    nbtools.show_header(inv, tz)
    nbtools.show_summary(inv, tz)
    nbtools.show_incomplete(inv.gaps, tz)
    nbtools.show_findings(inv, tz)
    return "\n".join(shown) + "\n" + render_postmortem(inv, tz=tz)


def test_a_zone_less_since_is_read_in_tz_and_the_report_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = _run(tmp_path, "Europe/Paris", since="2025-10-02 19:00")
    assert inv.evidence.since == pd.Timestamp("2025-10-02T17:00:00Z")
    text = _report_text(inv, "Europe/Paris", monkeypatch)
    assert "--since 2025-10-02 19:00 was given without a zone: read in --tz Europe/Paris" in text
    assert "2025-10-02 19:00:00.000 CEST" in text  # the window's start, as read


def test_with_tz_every_time_a_person_reads_is_in_that_zone_and_the_same_instant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed told in Asia/Tokyo and in UTC: the same times in the same places, each the same instant; no human
    text says UTC (impact line, evidence details, summary, timeline, postmortem); findings.json's RFC 3339 fields
    stay UTC."""
    utc = _run(tmp_path / "utc", "UTC")
    tokyo = _run(tmp_path / "tokyo", "Asia/Tokyo")
    utc_text, tokyo_text = _report_text(utc, "UTC", monkeypatch), _report_text(tokyo, "Asia/Tokyo", monkeypatch)
    assert "UTC" not in tokyo_text.replace("UTC instant", "")
    assert "UTC" not in tokyo.document["summary"] and "UTC" not in str(tokyo.document["findings"])
    in_utc, in_tokyo = SHOWN_TIME.findall(utc_text), SHOWN_TIME.findall(tokyo_text)
    assert len(in_utc) == len(in_tokyo) > 10
    for a, b in zip(in_utc, in_tokyo):
        assert b.endswith(" JST") and parse_time_input(b, "Asia/Tokyo").ms == parse_time_input(a).ms, (a, b)
    assert tokyo.impact.sentence("Asia/Tokyo").count(fmt_time(tokyo.impact.first, "Asia/Tokyo")) == 1
    assert tokyo.document["window"] == utc.document["window"]  # machine-readable: RFC 3339 UTC
    assert [f["evidence"][0]["time"] for f in tokyo.document["findings"]] == [
        f["evidence"][0]["time"] for f in utc.document["findings"]
    ]


def test_a_gap_s_span_and_reason_are_told_in_tz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gap's reason and span, which vyxops writes in RFC 3339 UTC (vyxops.fetch.frames), read in --tz in the report
    and the postmortem; the Gap itself (findings.json's ``gaps``) keeps RFC 3339."""
    inv = _run(tmp_path, "Asia/Tokyo")
    kept_from = pd.Timestamp("2025-10-02T08:00:00Z")
    why = f"the Fly logs API keeps about 7 days, so lines before {iso(kept_from)} could not be read"
    inv.gaps.append(Gap("fly.logs", why, iso(inv.evidence.since), iso(kept_from)))
    text = _report_text(inv, "Asia/Tokyo", monkeypatch)
    gap_lines = [line for line in text.splitlines() if "Fly logs API keeps" in line]
    assert len(gap_lines) == 2  # the report's incomplete-evidence list and the postmortem's
    for line in gap_lines:
        assert "Z" not in re.sub(r"[A-Za-z]{2,}", "", line) and "UTC" not in line
        assert f"lines before {fmt_time(kept_from, 'Asia/Tokyo')} could not be read" in line
        assert fmt_time(inv.evidence.since, "Asia/Tokyo") in line


@pytest.mark.parametrize(
    ("scenario", "app"),
    [
        ("release-image-crashes", "api-app"),
        ("release-crashes-after-good", "api-app"),
        ("machine-keeps-restarting-on-failure", "queue-app"),
    ],
)
def test_next_steps_and_release_health_tell_times_in_tz(scenario: str, app: str, tmp_path: Path) -> None:
    """A recommended action rests on evidence with times (a machine's exit, a release that served): with --tz
    they read in that zone, in the report's one format, never as RFC 3339 UTC."""
    path = Path(__file__).parent / "scenarios" / f"{scenario}.yaml"
    with open_session("sandbox", scenario=str(path) if path.exists() else scenario, sandbox_dir=tmp_path) as s:
        inv = investigate(s, app, tz="Asia/Tokyo")
    said = [x for step in inv.next_steps for x in step.evidence]
    assert said, f"{scenario}: no recommended action"
    timed = [x for x in said if SHOWN_TIME.search(x)]
    assert timed and all(" JST" in x for x in timed), timed
    assert not [x for x in said if re.search(r"\d{2}:\d{2}:\d{2}(?:\.\d+)?Z|UTC", x)], said

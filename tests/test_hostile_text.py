"""Text from the platforms is data (issue 19): surrogates, control characters, image references, Markdown, the
terminal, and audits that keep going past one poisoned app.

The platforms' answers are poisoned on the wire, as the harness's proxy did: the served sandbox's answers are
rewritten (marker -> the hostile text as JSON escapes) and every request it receives is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import pytest
from markdown_it import MarkdownIt

from vyxops.core.images import checked_image_ref, manifest_path, reference_problem
from vyxops.core.text import loads_answer, md, one_line
from vyxops.fetch.frames import make_frame
from vyxops.shell.cli import main
from vyxops.testing.hostile import HOSTILE_IMAGE_REFS, HOSTILE_TEXT, as_json_text
from vyxops_sandbox.router import SandboxApp

APP = "vyx-app"
SURROGATE = HOSTILE_TEXT["lone_surrogate"]
SCENARIOS = Path(__file__).parent / "scenarios"


@dataclass
class Wire:
    """What the sandbox was asked (``"GET /path?query"``) and how its answers are poisoned."""

    subs: list[tuple[bytes, bytes]] = field(default_factory=list)
    answer: Callable[[httpx.Request, httpx.Response], httpx.Response | None] | None = None
    sent: list[str] = field(default_factory=list)

    def plant(self, marker: str, hostile: str) -> None:
        """Every ``marker`` in an answer's JSON becomes ``hostile`` (as JSON text: a surrogate as ``\\ud800``)."""
        self.subs.append((marker.encode(), as_json_text(hostile).encode()))


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    w = Wire()
    handle = SandboxApp.handle

    def poisoned(self: SandboxApp, request: httpx.Request) -> httpx.Response:
        w.sent.append(f"{request.method} {request.url.raw_path.decode('ascii', 'replace')}")
        response = handle(self, request)
        if w.answer is not None:
            response = w.answer(request, response) or response
        content = response.content
        for marker, hostile in w.subs:
            content = content.replace(marker, hostile)
        if content == response.content:
            return response
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=content)

    monkeypatch.setattr(SandboxApp, "handle", poisoned)
    return w


def scenario(tmp_path: Path, *, row_image: str | None = None) -> Path:
    """stub-image's story (the secret points at a stub that exits 0) with markers where platform text goes:
    a user id, a row's error, a function log line, an extra secret's name; ``row_image`` sets the row's image."""
    image = f", image: {json.dumps(row_image)}" if row_image is not None else ""
    path = tmp_path / "hostile.yaml"
    path.write_text(
        f"""name: hostile
now: 2025-10-02T17:25:00Z
fly: {{org: personal, apps: [vyx-app]}}
supabase: {{project_ref: vyxsandboxprojectref, machines_table: machines}}
pipeline: {{table: {{columns: {{error: error}}}}}}
images:
  registry.fly.io/vyx-app:stub: {{behaviour: exit, exit_code: 0, after_s: 2}}
steps:
  - at: 2025-10-02T16:00:00Z
    deploy: {{app: vyx-app, image: registry.fly.io/vyx-app:deployment-01K6JV132H7B7Y5PP8Y5QSR23X}}
  - at: 2025-10-02T16:05:00Z
    set_secret: {{name: MARKSECRET, value: plain}}
  - at: 2025-10-02T16:10:00Z
    set_secret: {{name: DOCKER_IMAGE, value: registry.fly.io/vyx-app:stub}}
  - at: 2025-10-02T16:18:40Z
    invoke:
      function: provision-machine
      body: {{user_id: "uMARKUSER [click](http://evil.example/) ![](http://pixel.example/p.gif)", region: ord}}
      machine_id: 5683732efe3208
  - at: 2025-10-02T16:30:00Z
    db_update:
      table: machines
      match: {{fly_machine_id: 5683732efe3208}}
      set: {{error: "eMARKERROR <b>bold</b> *x* `y` a|b"{image}}}
"""
    )
    return path


def plant_surrogates(wire: Wire) -> None:
    """A lone surrogate in a user id, a row error, a secret's name, a release's description and a Fly log line."""
    for marker in ("MARKUSER", "MARKERROR", "MARKSECRET"):
        wire.plant(marker, f"{marker}{SURROGATE}")
    wire.plant("Deploy image", f"Deploy{SURROGATE} image")
    wire.plant("Configuring firecracker", f"Configuring{SURROGATE} firecracker [click](http://evil.example/)")


def investigate(out: Path, *extra: str) -> int:
    return main(["investigate", "--app", APP, "--out", str(out), *extra])


# --------------------------------------------------------------------------- surrogates


def test_a_lone_surrogate_in_any_platform_text_leaves_the_investigation_whole(
    sandbox_env: Path, tmp_path: Path, wire: Wire
) -> None:
    """Surrogates in a log line, a row, a release description and a secret's name: the investigation completes
    with its diagnosis, and the text shows U+FFFD where the platform's text could not be kept."""
    plant_surrogates(wire)
    assert investigate(tmp_path / "r", "--scenario", str(scenario(tmp_path))) == 0
    findings = json.loads((tmp_path / "r" / "findings.json").read_text())
    assert findings["root_cause"]["code"] == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
    timeline = pd.read_parquet(tmp_path / "r" / "timeline.parquet")
    shown = "\n".join(timeline["message"].dropna())
    for text in ("Configuringa\ufffdb firecracker", "secret MARKSECRETa\ufffdb updated", "MARKUSERa\ufffdb"):
        assert text in shown
    assert "\ufffd" in (tmp_path / "r" / "postmortem.md").read_text()


def test_the_frame_boundary_replaces_what_cannot_be_kept_and_says_how_many() -> None:
    """Surrogates, control and bidi characters become U+FFFD in every text column; the frame counts them."""
    rows = [
        {"app": APP, "message": f"line{SURROGATE}\nnext\tcol", "level": "info\x1b[31m", "region": "ord"},
        {"app": APP, "message": "fine", "level": "info", "region": "\u202eord"},
        {"app": APP, "message": "fine", "level": "info", "region": "ord"},
    ]
    df = make_frame("fly_logs", rows)
    assert list(df["message"]) == ["linea\ufffdb\nnext\tcol", "fine", "fine"]  # a message keeps its lines
    assert list(df["level"]) == ["info\ufffd[31m", "info", "info"] and df["region"][1] == "\ufffdord"
    assert df.attrs["sanitised"] == 3 and df.attrs["sanitised_columns"] == {"region": 1, "level": 1, "message": 1}
    assert "3 text value(s) (region 1, level 1, message 1)" in df.attrs["note"]
    assert make_frame("fly_logs", rows[2:]).attrs["sanitised"] == 0


def test_an_answer_with_a_surrogate_escape_or_bytes_that_are_not_utf8_decodes() -> None:
    """JSON's \\ud800 escape and a stray byte read as U+FFFD; a surrogate pair stays the character it encodes."""
    assert loads_answer(b'{"a": "x\\ud800y", "b": ["\\ud83d\\ude00"]}') == {"a": "x\ufffdy", "b": ["\U0001f600"]}
    assert loads_answer(b'{"a": "caf\xe9"}') == {"a": "caf\ufffd"}
    json.dumps(loads_answer(b'{"\\udc00": 1}'), ensure_ascii=False).encode()  # encodes: nothing lone is left
    with pytest.raises(ValueError):
        loads_answer(b"<html>")


# --------------------------------------------------------------------------- image references


@pytest.mark.parametrize("name", sorted(HOSTILE_IMAGE_REFS))
def test_the_reference_grammar_refuses_what_is_not_an_image_reference(name: str) -> None:
    ref = HOSTILE_IMAGE_REFS[name]
    assert reference_problem(ref) is not None
    with pytest.raises(ValueError):
        manifest_path(ref)


def test_the_reference_grammar_accepts_what_registries_accept() -> None:
    digest = "sha256:" + "a" * 64
    for ref in (
        "registry.fly.io/vyx-app:deployment-01K6JV132H7B7Y5PP8Y5QSR23X",
        f"registry.fly.io/vyx-app@{digest}",
        "localhost:5000/team/app__x--y.z:v1.2",
        "nginx",
    ):
        assert reference_problem(ref) is None, ref
    both = checked_image_ref(f"registry.fly.io/vyx-app:v1@{digest}")
    assert (both.repository, both.digest) == ("vyx-app", digest)  # name:tag@digest: the digest decides
    with pytest.raises(ValueError):
        manifest_path("registry.fly.io/vyx-app:stub", "sha256:../../v1/apps")  # a registry's digest, checked too


def registry_gaps(out: Path) -> list[str]:
    gaps = json.loads((out / "findings.json").read_text())["gaps"]
    return [g["why"] for g in gaps if g["source"] == "fly.registry"]


def test_a_control_character_in_a_rows_image_is_a_registry_gap_not_a_crash(
    sandbox_env: Path, tmp_path: Path, wire: Wire
) -> None:
    """A row's image holding BEL is never sent (no InvalidURL): it is a fly.registry gap naming why."""
    wire.plant("MARKBELL", "\x07")
    path = scenario(tmp_path, row_image="registry.fly.io/vyx-app:MARKBELLstub")
    assert investigate(tmp_path / "r", "--scenario", str(path)) == 0
    assert any("not an image reference" in why for why in registry_gaps(tmp_path / "r"))
    assert not any("stub" in s and "/manifests/" in s and not s.endswith("/manifests/stub") for s in wire.sent)


def test_a_path_traversal_reference_never_reaches_a_request(sandbox_env: Path, tmp_path: Path, wire: Wire) -> None:
    """`x/../../../v1/apps/…` in a row's image: no request leaves for it (recorded at the sandbox); it is a gap."""
    path = scenario(tmp_path, row_image=HOSTILE_IMAGE_REFS["path_traversal"])
    assert investigate(tmp_path / "r", "--scenario", str(path)) == 0
    manifests = [s for s in wire.sent if "/manifests/" in s]
    assert manifests and all(s.split(" ", 1)[1].startswith(f"/v2/{APP}/manifests/") for s in manifests)
    assert not any(".." in s or "/x/" in s for s in wire.sent)
    assert any("not an image reference" in why for why in registry_gaps(tmp_path / "r"))


# --------------------------------------------------------------------------- Markdown


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").enable("strikethrough").render(markdown)


def test_the_postmortem_shows_links_images_and_markup_from_the_platforms_as_text(
    sandbox_env: Path, tmp_path: Path, wire: Wire
) -> None:
    """A user id, a log line and a row error holding a link, an image, HTML, emphasis, a code span and a pipe
    render in postmortem.md as the text they are: no phishing link, no tracking pixel, no broken table."""
    wire.plant("Configuring firecracker", "[click](http://evil.example/) ![](http://pixel.example/p.gif)")
    assert investigate(tmp_path / "r", "--scenario", str(scenario(tmp_path))) == 0
    html = rendered((tmp_path / "r" / "postmortem.md").read_text())
    assert "evil.example" in html and "pixel.example" in html  # the text is there ...
    assert "<a " not in html and "<img" not in html and "<b>" not in html  # ... as text
    assert "<em>x</em>" not in html and "<code>y</code>" not in html
    rows = [line for line in html.splitlines() if line.startswith("<td>")]
    assert rows and all(line.endswith("</td>") for line in rows)  # no cell split by a pipe


def test_markdown_escape_covers_every_kind_of_markup() -> None:
    text = md("[a](http://e) ![](http://p) <http://auto> <b>x</b> *e* _f_ ~~s~~ `c` a|b &amp; \\ line\nbreak")
    html = rendered(f"| x |\n|---|\n| {text} |")
    for markup in ("<a ", "<img", "<b>", "<em>", "<del>", "<code>", "<br"):
        assert markup not in html, markup
    assert html.count("<td>") == 1 and "\n" not in text


# --------------------------------------------------------------------------- terminal


ERROR_BODY = (
    "\x1b[31mred\x1b[0m \x1b]8;;http://evil.example/\x07click\x1b]8;;\x07 over\rwritten \u202eevil\u202c"
    "\nvyxops: all well\nhint: nothing to do"
)


def test_an_error_body_reaches_the_terminal_as_text_with_no_line_of_its_own(
    sandbox_env: Path, tmp_path: Path, wire: Wire, capsys: pytest.CaptureFixture[str]
) -> None:
    """ANSI, OSC-8, CR and U+202E in an error body are shown escaped on stderr; its newline cannot forge a
    `vyxops:` line."""

    def refuse(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method == "GET" and request.url.path == f"/v1/apps/{APP}/machines":
            return httpx.Response(400, json={"error": ERROR_BODY})
        return None

    wire.answer = refuse
    code = investigate(tmp_path / "r", "--scenario", "stub-image")
    err = capsys.readouterr().err
    assert code != 0 and "red" in err
    for raw in ("\x1b", "\r", "\u202e", "\x07"):
        assert raw not in err, repr(raw)
    assert [line for line in err.splitlines() if line.startswith("vyxops:")] == [err.splitlines()[0]]
    assert not any(line.startswith("hint: nothing to do") for line in err.splitlines())


def test_one_line_escapes_every_control_and_line_break() -> None:
    for name, value in HOSTILE_TEXT.items():
        shown = one_line(value)
        assert shown.isprintable(), name
    assert one_line("a\nb\u2028c\r") == "a\\nb\\u2028c\\r"


# --------------------------------------------------------------------------- audits


def test_an_audit_of_the_org_reports_a_poisoned_app_and_an_odd_name_and_completes(
    sandbox_env: Path, tmp_path: Path, wire: Wire
) -> None:
    """`audit --all` with a lone surrogate in one app's text and an odd name in the org's list: every real app
    is audited, the odd name is its own error row (never read), and audit.json is written."""
    odd = "Odd_App/../v1"

    def org_list(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method != "GET" or request.url.path != "/v1/apps" or response.status_code != 200:
            return None
        body = json.loads(response.content)
        body["apps"].append({**body["apps"][0], "name": odd, "id": "odd"})
        return httpx.Response(200, json=body)

    wire.answer = org_list
    wire.plant("alpha-app:", f"alpha{SURROGATE}-app:")  # alpha's image references and log lines, poisoned
    out = tmp_path / "a"
    code = main(["audit", "--all", "--scenario", str(SCENARIOS / "two-apps-only-beta-broken.yaml"), "--out", str(out)])
    doc = json.loads((out / "audit.json").read_text())
    rows = {a["app"]: a for a in doc["apps"]}
    assert code == 1 and set(rows) == {"alpha-app", "beta-app", odd}
    assert rows["beta-app"]["root_cause"] == "LATEST_TAG_MISSING"
    assert rows["alpha-app"]["worst"] != "error"
    assert rows[odd]["worst"] == "error" and "not a Fly app name" in rows[odd]["error"]["message"]
    assert not any("Odd_App" in s for s in wire.sent)


def test_an_error_of_any_class_in_one_app_is_that_apps_row(tmp_path: Path) -> None:
    """An error vyxops has no type for (a decoding error, a KeyError) is the app's error row; the rest complete."""
    from vyxops.analysis.audit import run_audit
    from vyxops.fetch.session import open_session

    with open_session("sandbox", scenario=SCENARIOS / "two-apps-only-beta-broken.yaml", sandbox_dir=tmp_path) as s:
        real = s.fly.list_machines

        def poisoned(app: str, **kw: object) -> list[dict[str, object]]:
            if app == "alpha-app":
                raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
            return real(app, **kw)  # type: ignore[arg-type]

        s.fly.list_machines = poisoned  # type: ignore[method-assign]
        audit = run_audit(s, ["alpha-app", "beta-app"])
    rows = {a["app"]: a for a in audit.document("critical")["apps"]}
    assert rows["alpha-app"]["error"]["type"] == "UnexpectedAppError"
    assert "UnicodeDecodeError" in rows["alpha-app"]["error"]["message"]
    assert rows["beta-app"]["root_cause"] == "LATEST_TAG_MISSING"


def test_an_app_heading_in_a_report_shows_a_hostile_name_as_text() -> None:
    """The audit notebook heads each app's section with its name, which may come from the org's list: a link or an
    image in it is escaped, not rendered (markdown-it, as the postmortem test renders)."""
    from markdown_it import MarkdownIt

    from vyxops.nbtools import heading_text

    html = MarkdownIt().render(heading_text("[click](http://evil.example) ![](http://pixel.example/p.png)"))
    assert html.startswith("<h2>") and "<a " not in html and "<img" not in html

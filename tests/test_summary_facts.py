"""Summaries say only what the evidence says: each scenario's root summary and finding titles, read
against the evidence frames of the same run (exit events, releases and their images, release commands).

Nothing here is a sentence copied from the code: every claim is found by its shape in the text and
checked against the frames (issue 20: "exit code not reported" over six exit events with code 3, an
earlier release's image never named as that release's, a failed release command left out).
"""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from vyxops.analysis.investigate import Investigation, investigate
from vyxops.core import facts
from vyxops.fetch.session import open_session

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "vyxops" / "scenarios").glob("*.yaml")) + sorted(
    (ROOT / "tests" / "scenarios").glob("*.yaml")
)
MACHINE_ID = re.compile(r"\b[0-9a-f]{14}\b")
CODE_CLAIM = re.compile(r"(?:exited with code|exit code) (\d+)")
NOT_REPORTED = "exit code not reported"
DIGEST = re.compile(r"sha256:[0-9a-f]{8,}")


def _app_of(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("fly:"):
            return line.split("apps: [")[1].split("]")[0].split(",")[0].strip()
    raise AssertionError(path)


@functools.cache
def _run(path: Path, machine_id: str | None = None) -> Investigation:
    with tempfile.TemporaryDirectory() as d, open_session("sandbox", scenario=path, sandbox_dir=Path(d)) as s:
        return investigate(s, _app_of(path), machine_id=machine_id)


def _sentences(text: str) -> list[str]:
    """A summary's sentences (a time's ``12:00:00.000`` never ends one: a sentence ends with ". " + capital)."""
    return [s for s in re.split(r"(?<=[.:])\s+(?=[A-Z])", text) if s]


def _claims(inv: Investigation) -> list[tuple[str, set[str]]]:
    """Each sentence of the summary and each finding's title, with the machines it names."""
    out = [(s, set(MACHINE_ID.findall(s))) for s in _sentences(inv.summary)]
    for f in inv.findings:
        mids = set(MACHINE_ID.findall(f.title)) | ({f.facts["machine_id"]} if f.facts.get("machine_id") else set())
        out.append((f.title, {m for m in mids if isinstance(m, str)}))
    return out


def _exit_codes(inv: Investigation, mids: set[str]) -> tuple[set[int], bool]:
    """The codes the exit events of ``mids`` carry, and whether one of them says oom_killed (only an exit
    event carries either: vyxops.core.facts.read_exit_event fills the frame's columns)."""
    ev = inv.evidence.machine_events
    exits = ev[ev["machine_id"].isin(mids)]
    codes = {int(c) for c in exits["exit_code"].dropna().tolist()}
    return codes, bool(exits["oom_killed"].fillna(False).astype(bool).any())


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_exit_codes_said_are_the_exit_events_codes(path: Path) -> None:
    """ "exit code N" matches an exit event of the machine the sentence names; "not reported" only when none has one."""
    inv = _run(path)
    for text, mids in _claims(inv):
        claimed = {int(c) for c in CODE_CLAIM.findall(text)}
        if not claimed and NOT_REPORTED not in text:
            continue
        assert mids, f"an exit code is claimed for no machine: {text!r}"
        codes, oom = _exit_codes(inv, mids)
        if oom:
            codes.add(facts.OOM_EXIT_CODE)  # the kernel's SIGKILL code, said for an OOM kill without one
        assert claimed <= codes, f"{text!r} claims codes {claimed}, the exit events of {mids} carry {codes}"
        if NOT_REPORTED in text:
            assert not codes - {0}, f"{text!r} says not reported, the exit events of {mids} carry {codes}"


def _release_images(inv: Investigation) -> dict[str, set[int]]:
    """Every name of a release's image (its reference, the digest the registry answers, the platform child's)
    -> the versions of the releases that ran it (a failed release never ran its image)."""
    rel = inv.evidence.releases
    out: dict[str, set[int]] = {}
    for version, image, status in zip(rel["version"], rel["image"], rel["status"]):
        if not isinstance(image, str) or status == facts.RELEASE_FAILED:
            continue
        _, digest = inv.evidence.head(image)
        for name in {image, digest, inv.context.identity.of(digest)} - {None}:
            out.setdefault(str(name), set()).add(int(version))
    return out


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_a_releases_image_is_named_as_that_releases(path: Path) -> None:
    """An image (by reference or digest, even cut short) that some release ran is named with that release."""
    inv = _run(path)
    images, text = _release_images(inv), inv.summary
    said = {name for name in images if name in text}
    said |= {name for d in DIGEST.findall(text) for name in images if name.startswith(d)}
    for name in said:
        versions = images[name]
        assert any(f"release v{v}" in text for v in versions), f"{name} is release v{versions}'s image: {text!r}"


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_a_failed_machine_is_told_with_the_release_whose_image_it_ran(path: Path) -> None:
    """A failed machine's creation names the release whose image it ran, by the digest the machine records:
    after a rollback ``:latest`` names another image, so the reference alone would hide that it was v2's."""
    inv = _run(path)
    images, machines = _release_images(inv), inv.evidence.machines.set_index("machine_id")
    for f in inv.findings:
        mid = f.facts.get("machine_id")
        created = [x["detail"] for x in f.evidence if x["detail"].startswith(f"machine {mid} created with ")]
        if not isinstance(mid, str) or not created or mid not in machines.index:
            continue
        m = machines.loc[mid]
        ran = images.get(str(m["image"]), set()) | images.get(str(m["image_digest"]), set())
        if ran:
            assert any(f"release v{v}" in created[0] or f"v{v} and" in created[0] for v in ran), (mid, created, ran)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_a_failed_release_command_on_the_secrets_image_is_linked(path: Path) -> None:
    """When the image provisioning uses is one whose release command exited non-zero, the summary says so."""
    inv = _run(path)
    led, ref = inv.context.ledger, inv.context.provisioning.ref
    failed = led[
        (led["process_group"] == facts.RELEASE_COMMAND_GROUP)
        & (led["image"] == ref)
        & (led["exit_code"].fillna(0) != 0)
    ]
    for mid, code in zip(failed["machine_id"], failed["exit_code"]):
        said = [s for s in _sentences(inv.summary) if "release command" in s and mid in s]
        assert said, f"the release command {mid} on {ref} exited {code}; the summary does not say: {inv.summary!r}"
        assert f"code {int(code)}" in said[0]


def _machine_roots() -> list[tuple[Path, str, str]]:
    """(scenario, root's machine, another machine of the app) for each scenario whose root is a machine's."""
    out = []
    for path in SCENARIOS:
        whole = _run(path)
        root_mid = whole.root.facts.get("machine_id") if whole.root is not None else None
        others = [m for m in whole.context.ledger["machine_id"].tolist() if m != root_mid]
        if isinstance(root_mid, str) and others:
            out.append((path, root_mid, others[0]))
    return out


def test_machine_focus_keeps_every_finding_of_the_root_machine_and_its_own() -> None:
    """--machine keeps the root whole: with the root machine's failure stay its row findings (stuck, drift), on a
    focus on another machine as on its own; nothing of a third machine, nor a row naming no machine, stays."""
    roots = _machine_roots()
    assert roots
    for path, root_mid, other in roots:
        whole = _run(path)
        want = {(f.code, f.entity) for f in whole.findings if f.facts.get("machine_id") == root_mid}
        for focus in (root_mid, other):
            focused = _run(path, focus)
            got = {(f.code, f.entity) for f in focused.findings if f.facts.get("machine_id") == root_mid}
            assert want <= got, f"{path.stem}: --machine {focus} drops {want - got} of root machine {root_mid}"
            mine = {(f.code, f.entity) for f in whole.findings if f.facts.get("machine_id") == focus}
            assert mine <= {(f.code, f.entity) for f in focused.findings}, (path.stem, focus)
            others = {f.facts.get("machine_id") for f in focused.findings if f.code != "RELEASE_COMMAND_FAILED"}
            assert not others - {None, focus, root_mid}
            assert not [f for f in focused.findings if "row" in f.facts and f.facts.get("machine_id") is None]


def test_the_summary_of_a_machine_focus_tells_the_root_machines_row() -> None:
    """The root's story keeps its DB row's sentence under a focus on another machine."""
    roots = _machine_roots()
    assert roots
    for path, root_mid, other in roots:
        whole, focused = _run(path), _run(path, other)
        if "Its DB row" in whole.summary:
            assert "Its DB row" in focused.summary, (path.stem, focused.summary)


def test_stories_this_file_reads_are_here() -> None:
    """The stories of issue 20 are among the scenarios read: a restart loop, a rollback with the secret on the
    crashed release, a release command that failed under the secret's image."""
    names = {p.stem for p in SCENARIOS}
    assert {
        "machine-keeps-restarting-on-failure",
        "rollback-secret-still-on-crashed-release",
        "secret-on-image-whose-release-command-failed",
        "image-pull-fails",
    } <= names
    assert not pd.isna(_run(ROOT / "tests/scenarios/machine-keeps-restarting-on-failure.yaml").root.facts["code"])

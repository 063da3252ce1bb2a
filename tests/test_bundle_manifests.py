"""A bundle captured when a manifest was checked with a HEAD (then a GET on a 404) still replays: the manifest's
one GET is answered with the HEAD's status and headers."""

from __future__ import annotations

import json
from pathlib import Path

from vyxops.analysis.investigate import investigate
from vyxops.fetch.bundle import write_bundle
from vyxops.fetch.session import open_session


def _as_an_older_capture(bundle: Path) -> int:
    """Rewrite each manifest GET answered 200 as the HEAD an older vyxops sent (no body); returns how many."""
    lines, changed = [], 0
    for line in (bundle / "exchanges.jsonl").read_text().splitlines():
        ex = json.loads(line)
        method, path, *rest = json.loads(ex["key"])
        if method == "GET" and "/manifests/" in path and ex["status"] == 200 and ":" not in path.rsplit("/", 1)[1]:
            ex["key"], ex["body_b64"], changed = json.dumps(["HEAD", path, *rest]), "", changed + 1
        lines.append(json.dumps(ex, sort_keys=True))
    (bundle / "exchanges.jsonl").write_text("\n".join(lines) + "\n")
    return changed


def test_a_bundle_with_manifest_heads_replays_to_the_findings_it_was_captured_with(tmp_path: Path) -> None:
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path / "run", record=True) as s:
        document = investigate(s, "vyx-app").document
        meta = {"project_ref": s.project_ref, "now": str(s.now()), "captured_from": s.label}
        bundle = write_bundle(tmp_path / "bundle", s.recorder, meta)  # type: ignore[arg-type]
    assert _as_an_older_capture(bundle) >= 1
    with open_session(f"bundle:{bundle}") as replay:
        replayed = investigate(replay, "vyx-app").document
    replayed.pop("target"), document.pop("target")  # bundle:PATH vs sandbox:stub-image, by design
    assert replayed == document

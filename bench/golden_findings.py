"""Capture the findings document of every shipped and test scenario (each app), to check a change keeps them.

    .venv/bin/python bench/golden_findings.py capture DIR      # one JSON file per scenario and app
    .venv/bin/python bench/golden_findings.py compare OLD NEW  # the files that differ, byte for byte

Run `capture` on the commit before a change (in a `git worktree`, with PYTHONPATH set to it) and after it,
then `compare`: a refactor or a speed-up must leave every document as it was.
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def capture(out: Path) -> int:
    from vyxops.analysis.investigate import investigate
    from vyxops.fetch.session import open_session
    from vyxops_sandbox.scenario import load_scenario

    warnings.simplefilter("ignore")
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted((ROOT / "vyxops" / "scenarios").glob("*.yaml")) + sorted(
        (ROOT / "tests" / "scenarios").glob("*.yaml")
    )
    for path in paths:
        scenario = load_scenario(path)
        for app in scenario.apps:
            with (
                tempfile.TemporaryDirectory() as tmp,
                open_session("sandbox", scenario=str(path), sandbox_dir=Path(tmp)) as s,
            ):
                try:
                    doc = investigate(s, app).document
                except Exception as exc:  # a story the product cannot read is a result too
                    doc = {"error": f"{type(exc).__name__}: {exc}"}
            text = json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n"
            (out / f"{scenario.name}__{app}.json").write_text(text)
    print(f"{len(list(out.glob('*.json')))} documents in {out}")
    return 0


def compare(old: Path, new: Path) -> int:
    names = sorted(p.name for p in old.glob("*.json"))
    differ = [n for n in names if not (new / n).is_file() or (old / n).read_bytes() != (new / n).read_bytes()]
    for name in differ:
        print(f"differs: {name}")
    print(f"{len(names) - len(differ)} of {len(names)} identical")
    return 1 if differ else 0


if __name__ == "__main__":
    verb, *args = sys.argv[1:] or ["help"]
    if verb == "capture" and len(args) == 1:
        sys.exit(capture(Path(args[0])))
    if verb == "compare" and len(args) == 2:
        sys.exit(compare(Path(args[0]), Path(args[1])))
    print(__doc__)
    sys.exit(2)

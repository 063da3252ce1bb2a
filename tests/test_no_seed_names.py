"""The seed team is one of many: only the contract module names its pipeline, and the product never reads the
sandbox's scenario (SPEC.md "Any team's pipeline")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The seed team's names, and its status word as a quoted literal.
SEED_NAMES = re.compile(r"provision-machine|DOCKER_IMAGE|fly_machine_id|['\"]starting['\"]")
#: Where they may appear: the contract module (its defaults), and Fly's own machine states in the platforms'
#: vocabulary (Fly calls a machine on its way up `starting` too: facts.LAUNCHING_STATES).
ALLOWED = {"vyxops/core/contract.py": None, "vyxops/core/facts.py": "LAUNCHING_STATES"}


def _product_files() -> list[Path]:
    files = [p for p in (ROOT / "vyxops").rglob("*.py") if "scenarios" not in p.parts]
    return sorted(files + list((ROOT / "notebooks").glob("*.py")) + list((ROOT / "notebooks").glob("*.ipynb")))


@pytest.mark.parametrize("path", _product_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_product_module_but_the_contract_names_the_seed_teams_pipeline(path: Path) -> None:
    """grep for provision-machine, DOCKER_IMAGE, fly_machine_id or 'starting' finds only the contract module."""
    rel = str(path.relative_to(ROOT))
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if SEED_NAMES.search(line) and rel not in ALLOWED:
            pytest.fail(f"{rel}:{n} names the seed team's pipeline: {line.strip()}")
        if SEED_NAMES.search(line) and ALLOWED.get(rel) and ALLOWED[rel] not in line:
            pytest.fail(f"{rel}:{n} names the seed team's pipeline outside {ALLOWED[rel]}: {line.strip()}")


def test_the_grep_finds_a_seed_name_where_one_is_written(tmp_path: Path) -> None:
    """The check itself: each of the four names is caught in a line of code."""
    for text in ('x = "provision-machine"', "s = 'DOCKER_IMAGE'", 'c = "fly_machine_id"', "if w == 'starting':"):
        assert SEED_NAMES.search(text), text


@pytest.mark.parametrize(
    "path", [p for p in _product_files() if "testing" not in p.parts], ids=lambda p: str(p.relative_to(ROOT))
)
def test_the_product_never_reaches_into_the_sandboxs_world_or_its_scenario(path: Path) -> None:
    """No product module imports the simulator's scenario or pipeline, nor reads the world a session's handles hold
    for tests: what the product knows of a sandbox team comes from the platforms' answers alone."""
    text = path.read_text(encoding="utf-8")
    for needle in ("vyxops_sandbox.scenario", "vyxops_sandbox.pipeline", "sandbox.world", "WORLD_HANDLE",
                   '["pipeline"]', "machines_table"):  # fmt: skip
        assert needle not in text, f"{path.relative_to(ROOT)} mentions {needle}"

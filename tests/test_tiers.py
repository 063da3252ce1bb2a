"""The suite's tiers (tests/tiers.py): each test file listed once, an unlisted one stops collection, unit first."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiers

HERE = Path(__file__).parent
#: The inner runs load the tiers plugin (this module, with FILES replaced by a small tree's).
INNER = ("-p", "tiers")
SMALL = {"unit": ("test_c_unit.py",), "sandbox": ("test_b_sandbox.py",), "e2e": ("test_a_e2e.py",)}


def test_every_test_file_is_listed_once_and_every_listed_file_exists() -> None:
    """The registry and the folder agree: no test file without a tier, no tier for a file that is gone."""
    on_disk = {p.name for p in HERE.glob("test_*.py")}
    listed = [name for names in tiers.FILES.values() for name in names]
    assert len(listed) == len(set(listed)), sorted(n for n in listed if listed.count(n) > 1)
    assert sorted(on_disk - set(listed)) == []
    assert sorted(set(listed) - on_disk) == []
    assert set(tiers.FILES) == set(tiers.TIERS)


def _tree(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Test files of these names, each one passing test that prints its file's name; SMALL is the registry."""
    monkeypatch.setattr(tiers, "FILES", SMALL)
    for name in names:
        pytester.makepyfile(**{name.removesuffix(".py"): f"def test_it():\n    print('RAN {name}')\n"})


def test_tiers_run_unit_then_sandbox_then_e2e(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files named in reverse alphabetical tier order still run unit first, e2e last; -m unit runs unit alone."""
    _tree(pytester, monkeypatch, "test_a_e2e.py", "test_b_sandbox.py", "test_c_unit.py")
    result = pytester.runpytest(*INNER, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_c_unit.py::test_it PASSED*", "*test_b_sandbox.py*", "*test_a_e2e.py*"])
    alone = pytester.runpytest(*INNER, "-v", "-m", "unit")
    alone.assert_outcomes(passed=1, deselected=2)
    alone.stdout.fnmatch_lines(["*test_c_unit.py::test_it PASSED*"])


def test_an_unlisted_test_file_fails_collection_naming_where_to_add_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new test file without a tier stops the run before any test, and the error names tests/tiers.py."""
    _tree(pytester, monkeypatch, "test_c_unit.py", "test_brand_new.py")
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*test_brand_new.py has no tier: add it to FILES in tests/tiers.py under unit*"])
    assert "RAN" not in result.stdout.str()

"""A registry fills itself from its package's modules: a new detector, fix or action is its module alone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vyxops.core.plugins import import_submodules


def test_every_module_of_a_package_is_imported_in_name_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module dropped into the package registers itself without a line anywhere else, in a stable order."""
    pkg = tmp_path / "reg_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("SEEN = []\n")
    for name in ("zeta", "alpha", "mid"):
        (pkg / f"{name}.py").write_text(f"from reg_pkg import SEEN\nSEEN.append({name!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import reg_pkg  # type: ignore[import-not-found]

        assert import_submodules("reg_pkg", reg_pkg.__path__) == ["alpha", "mid", "zeta"]
        assert reg_pkg.SEEN == ["alpha", "mid", "zeta"]
    finally:
        for name in [n for n in sys.modules if n == "reg_pkg" or n.startswith("reg_pkg.")]:
            del sys.modules[name]


def _declaring(package_file: str, marker: str) -> set[str]:
    """The modules of a package whose source registers something (``marker`` in it)."""
    return {p.stem for p in Path(package_file).parent.glob("*.py") if marker in p.read_text(encoding="utf-8")}


def test_the_product_registries_hold_every_module_that_registers() -> None:
    """Every fix, detector and action module is in its registry, with no list of names kept anywhere."""
    import vyxops.act.fixes as fixes
    import vyxops.analysis.advice as advice
    import vyxops.analysis.detect as detect

    assert {f.plan.__module__.rsplit(".", 1)[1] for f in fixes.fixes()} == _declaring(
        fixes.__file__, "\nFIX = register("
    )
    registered = {d.detect.__module__.rsplit(".", 1)[1] for d in detect.DETECTORS}
    assert registered == _declaring(detect.__file__, "@register(")
    assert {k.advise.__module__.rsplit(".", 1)[1] for k in advice.kinds()} == _declaring(advice.__file__, "@register(")

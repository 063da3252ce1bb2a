"""No import circles in vyxops or its simulator (issue 21).

A circle is a set of modules each of which reaches the others by imports. An import inside a
function still counts: it runs when the function is called, and one placed there to dodge a
circle hides the circle without breaking it. Only ``if TYPE_CHECKING:`` imports, which never run,
are left out. The graph is :mod:`vyxops.testing.imports` (bench/house.py counts the same circles).
"""

from __future__ import annotations

from pathlib import Path

from vyxops.testing.imports import circles, describe, import_graph

#: Circles known and not yet broken, each as its sorted module names; any other circle fails (none left: issue 21).
KNOWN: list[tuple[str, ...]] = []


def test_no_import_circles() -> None:
    """No two modules of vyxops or vyxops_sandbox reach each other by imports (function-level ones too)."""
    graph = import_graph()
    found = circles(graph)
    new = [c for c in found if c not in KNOWN]
    report = "\n".join(describe(c, graph) for c in new)
    print(report)
    assert not new, f"import circles:\n{report}"
    gone = [c for c in KNOWN if c not in found]
    assert not gone, f"circles broken since: take them off KNOWN: {gone}"


def test_the_checker_sees_a_circle_through_a_function_level_import(tmp_path: Path) -> None:
    """The checker itself: a function-level import closes a circle; a TYPE_CHECKING one does not."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.c import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.c"} and graph["pkg.c"] == set()
    assert circles(graph) == []
    (pkg / "c.py").write_text("from . import a\n")
    assert circles(import_graph(tmp_path, ("pkg",))) == [("pkg.a", "pkg.b", "pkg.c")]

"""DESIGN.md's layering as a test: a lower layer never imports a higher one; the product never imports the simulator."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Every product module's layer, lowest first (docs/DESIGN.md draws the same picture).
#: A module may import modules of its own layer or lower ones; names are dotted
#: module paths, a package name covers its submodules (but ``vyxops`` itself, the root, covers only
#: its ``__init__``: a module listed nowhere has no layer, and the test says where to add it).
ROOT_PACKAGE = "vyxops"
LAYERS: list[tuple[str, ...]] = [
    (
        ROOT_PACKAGE,
        "vyxops.errors",
        "vyxops.redaction",
        "vyxops.timeutil",
        "vyxops.images",
        "vyxops.config",
        "vyxops.facts",
        "vyxops.coverage",
        "vyxops.checks",
        "vyxops.present",
        "vyxops.progress",
        "vyxops.contract",
        "vyxops.refusals",
        "vyxops.flytokens",
        "vyxops.shapes",
        "vyxops.answers",
        "vyxops.function_auth",
        "vyxops.reach",
        "vyxops.text",
        "vyxops.safeyaml",
        "vyxops.fanout",
        "vyxops.budget",
        "vyxops.pools",
        "vyxops.heap",
        "vyxops.scenarios",  # data: the packaged scenarios
        "vyxops.report_template",  # data: the report's template
    ),
    ("vyxops.http",),
    ("vyxops.clients",),
    ("vyxops.session", "vyxops.targets", "vyxops.recording", "vyxops.bundle"),
    ("vyxops.frames", "vyxops.logreads"),
    ("vyxops.evidence",),
    ("vyxops.discover", "vyxops.discover_table"),
    ("vyxops.timeline", "vyxops.detect"),
    ("vyxops.investigate", "vyxops.impact", "vyxops.resolved", "vyxops.advice"),
    ("vyxops.audit", "vyxops.fixes", "vyxops.probe", "vyxops.doctor"),
    ("vyxops.plot", "vyxops.explore", "vyxops.nbtools", "vyxops.postmortem", "vyxops.report"),
    ("vyxops.runner", "vyxops.kernel", "vyxops.cli", "vyxops.notify", "vyxops.logview"),
]
#: Test support may import anything, the simulator included.
FREE = ("vyxops.testing",)
SANDBOX = "vyxops_sandbox"
#: What the simulator may import of the product: leaf modules, and the session types its openers return.
SANDBOX_MAY_IMPORT = (
    "vyxops",
    "vyxops.errors",
    "vyxops.timeutil",
    "vyxops.images",
    "vyxops.config",
    "vyxops.facts",
    "vyxops.shapes",
    "vyxops.flytokens",
    "vyxops.answers",  # the reads and their shapes, for the fault matrix's wrong-shaped answers
)
SANDBOX_OPENERS_MAY_IMPORT = ("vyxops.session", "vyxops.targets", "vyxops.http")
SANDBOX_OPENERS = ("vyxops_sandbox.target", "vyxops_sandbox.client", "vyxops_sandbox.testing", "vyxops_sandbox.hosted")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (at the top or inside functions), as dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("vyxops", SANDBOX)}


def layer_of(name: str) -> int | None:
    best: tuple[int, int] | None = None  # (length of the matching prefix, layer)
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if name == prefix or (prefix != ROOT_PACKAGE and name.startswith(prefix + ".")):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), i)
    return None if best is None else best[1]


def product_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "vyxops").rglob("*.py") if not module_name(p).startswith(FREE))


@pytest.mark.parametrize("path", product_modules(), ids=lambda p: module_name(p))
def test_a_product_module_imports_only_its_own_layer_or_lower(path: Path) -> None:
    """No upward import, and no import of the simulator, in any product module."""
    me = module_name(path)
    mine = layer_of(me)
    assert mine is not None, f"{me} has no layer in tests/test_layers.py: add it where it belongs"
    for name in imports_of(path):
        assert not name.startswith(SANDBOX), f"{me} imports {name}: the product reaches the sandbox via vyxops.targets"
        theirs = layer_of(name)
        if theirs is None:  # e.g. `from vyxops import frames` names a module through its package
            continue
        assert theirs <= mine, f"{me} (layer {mine}) imports {name} (layer {theirs}): an upward arrow"


@pytest.mark.parametrize("path", sorted((ROOT / SANDBOX).rglob("*.py")), ids=lambda p: module_name(p))
def test_the_simulator_imports_only_the_products_leaf_modules(path: Path) -> None:
    """The sandbox depends on errors, images, time and config; only its openers see the session types."""
    me = module_name(path)
    allowed = SANDBOX_MAY_IMPORT + (SANDBOX_OPENERS_MAY_IMPORT if me in SANDBOX_OPENERS else ())
    for name in imports_of(path):
        if name.startswith(SANDBOX):
            continue
        assert any(name == a or name.startswith(a + ".") and layer_of(name) == layer_of(a) for a in allowed), (
            f"{me} imports {name}: the simulator may import only {', '.join(allowed)}"
        )


def test_the_layer_test_fails_on_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an http module importing frames is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from vyxops.frames import make_frame\nimport vyxops_sandbox.world\n")
    names = imports_of(bad)
    assert "vyxops.frames" in names and "vyxops_sandbox.world" in names
    assert layer_of("vyxops.frames") > layer_of("vyxops.http")  # type: ignore[operator]


def test_the_layer_test_fails_on_a_module_listed_nowhere() -> None:
    """A new module must be placed: one listed nowhere has no layer (the root package covers only itself)."""
    assert layer_of("vyxops.brand_new_module") is None
    assert layer_of("vyxops") == 0 and layer_of("vyxops.fixes.pin_secret") == layer_of("vyxops.fixes")

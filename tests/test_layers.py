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
    (ROOT_PACKAGE, "vyxops.core", "vyxops.scenarios"),  # the vocabulary; scenarios are data
    ("vyxops.fetch.reach", "vyxops.fetch.fanout", "vyxops.fetch.budget", "vyxops.fetch.pools", "vyxops.fetch.heap"),
    ("vyxops.fetch.http",),
    ("vyxops.fetch.clients",),
    (
        "vyxops.fetch.session",
        "vyxops.fetch.targets",
        "vyxops.fetch.recording",
        "vyxops.fetch.bundle",
        "vyxops.fetch.direct",
    ),
    ("vyxops.fetch.frames", "vyxops.fetch.logreads", "vyxops.fetch.pg_frames"),
    ("vyxops.analysis.evidence",),
    ("vyxops.analysis.discover", "vyxops.analysis.discover_table", "vyxops.analysis.discover_pg"),
    ("vyxops.analysis.timeline", "vyxops.analysis.detect"),
    ("vyxops.analysis.sources",),  # the sources table: reads, coverage and timeline mapping of every frame
    ("vyxops.analysis.collect",),
    ("vyxops.analysis.investigate", "vyxops.analysis.impact", "vyxops.analysis.resolved", "vyxops.analysis.advice"),
    ("vyxops.analysis.audit", "vyxops.act"),
    ("vyxops.views", "vyxops.nbtools"),  # nbtools, the notebooks' API, stays at the root: notebooks import it
    ("vyxops.shell",),
]
#: The folders of the root, in the pipeline's order: a module imports only from its own folder or earlier ones.
FOLDERS = ("vyxops.core", "vyxops.fetch", "vyxops.analysis", "vyxops.act", "vyxops.views", "vyxops.shell")
#: Test support may import anything, the simulator included.
FREE = ("vyxops.testing",)
SANDBOX = "vyxops_sandbox"
#: What the simulator may import of the product: leaf modules, and the session types its openers return.
SANDBOX_MAY_IMPORT = (
    "vyxops",
    "vyxops.core.errors",
    "vyxops.core.timeutil",
    "vyxops.core.images",
    "vyxops.core.config",
    "vyxops.core.facts",
    "vyxops.core.shapes",
    "vyxops.core.flytokens",
    "vyxops.core.answers",  # the reads and their shapes, for the fault matrix's wrong-shaped answers
)
SANDBOX_OPENERS_MAY_IMPORT = ("vyxops.fetch.session", "vyxops.fetch.targets", "vyxops.fetch.http", "vyxops.fetch.pools")
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
    if me in FOLDERS:  # a folder's own __init__ says what the folder holds, and imports nothing
        assert not imports_of(path), f"{me}/__init__.py imports: keep a folder's package empty"
        return
    mine = layer_of(me)
    assert mine is not None, f"{me} has no layer in tests/test_layers.py: add it where it belongs"
    for name in imports_of(path):
        assert not name.startswith(SANDBOX), (
            f"{me} imports {name}: the product reaches the sandbox via vyxops.fetch.targets"
        )
        theirs = layer_of(name)
        if theirs is None:  # e.g. `from vyxops.fetch import frames` names a module through its package
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
    bad.write_text("from vyxops.fetch.frames import make_frame\nimport vyxops_sandbox.world\n")
    names = imports_of(bad)
    assert "vyxops.fetch.frames" in names and "vyxops_sandbox.world" in names
    assert layer_of("vyxops.fetch.frames") > layer_of("vyxops.fetch.http")  # type: ignore[operator]


def test_the_layer_test_fails_on_a_module_listed_nowhere() -> None:
    """A new module must be placed: one listed nowhere has no layer (the root package covers only itself)."""
    assert layer_of("vyxops.brand_new_module") is None
    assert layer_of("vyxops") == 0 and layer_of("vyxops.act.fixes.pin_secret") == layer_of("vyxops.act.fixes")


def folder_of(name: str) -> int | None:
    """The rank of the folder ``name`` lives in (FOLDERS), or None for the root's own modules."""
    return next((i for i, f in enumerate(FOLDERS) if name == f or name.startswith(f + ".")), None)


@pytest.mark.parametrize("path", product_modules(), ids=lambda p: module_name(p))
def test_a_module_imports_only_from_its_own_folder_or_earlier_ones(path: Path) -> None:
    """The folders read in the pipeline's order (core, fetch, analysis, act, views, shell): no arrow goes back."""
    me = module_name(path)
    mine = folder_of(me)
    if mine is None:
        return  # the root's own modules (the package, nbtools, scenarios) are placed by LAYERS alone
    for name in imports_of(path):
        theirs = folder_of(name)
        assert theirs is None or theirs <= mine, f"{me} ({FOLDERS[mine]}) imports {name} ({FOLDERS[theirs]})"


def test_every_folder_is_listed_and_the_layers_follow_the_folders() -> None:
    """Each folder on disk is in FOLDERS, and a lower layer never lives in a later folder than a higher one."""
    on_disk = {f"vyxops.{p.parent.name}" for p in (ROOT / "vyxops").glob("*/__init__.py")}
    assert on_disk - set(FOLDERS) - {"vyxops.nbtools", "vyxops.scenarios", "vyxops.testing"} == set()
    ranks = [[folder_of(m) for m in layer if folder_of(m) is not None] for layer in LAYERS]
    for low, high in zip(ranks, ranks[1:]):
        if low and high:
            assert max(low) <= min(high), (low, high)

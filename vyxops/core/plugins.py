"""The one way a registry fills itself: every module of its package is imported, and each registers what it holds.

Detectors, fixes and recommended actions each live one per module and register on import; their packages call
:func:`import_submodules` instead of keeping a list of names, so adding one is adding its module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable


def import_submodules(package: str, path: Iterable[str]) -> list[str]:
    """Import every direct submodule of ``package`` (its ``__path__`` is ``path``), by name, so the order a
    registry sees them in is the same on every run; returns their names."""
    names = sorted(m.name for m in pkgutil.iter_modules(list(path)))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names

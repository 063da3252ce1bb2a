"""Every fix, registered once: its code, where it sits in a plan, how it is planned and applied, and by hand.

A fix is one module that ends with a call to :func:`register`. Planning, applying,
the CLI's ``--fix`` choices and the notebook views all read this registry, so adding
a fix is that module plus its import in ``vyxops/act/fixes/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vyxops.act.fixes.model import Action, Outcome
from vyxops.analysis.advice.place import FLY_DASHBOARD, SUPABASE_DASHBOARD, Place
from vyxops.core.checks import check_fixes

if TYPE_CHECKING:
    from vyxops.act.fixes.context import ApplyContext, PlanContext

__all__ = ["Fix", "Place", "register", "fixes", "get", "codes", "FLY_DASHBOARD", "SUPABASE_DASHBOARD"]

Planner = Callable[["PlanContext"], list[Action]]
Applier = Callable[["ApplyContext", Action], Outcome]
ByHand = Callable[[Action, Place], list[str]]


@dataclass(frozen=True)
class Fix:
    """One fix: ``plan`` adds its actions (or notes) to a plan; ``apply`` carries one action out.

    ``order`` places it in a plan (image before rows before verification); ``native``
    gives the commands a person could type instead, ``dashboard`` the pages to do or
    see it by hand.
    """

    code: str
    order: int
    description: str
    plan: Planner
    apply: Applier
    native: ByHand
    dashboard: ByHand


_FIXES: dict[str, Fix] = {}


def register(fix: Fix) -> Fix:
    """Add ``fix`` to the registry (a code registered twice is a programming error)."""
    if fix.code in _FIXES and _FIXES[fix.code] is not fix:
        raise ValueError(f"fix {fix.code} is registered twice")
    _FIXES[fix.code] = fix
    return fix


def fixes() -> list[Fix]:
    """Every registered fix, in plan order."""
    return sorted(_FIXES.values(), key=lambda f: (f.order, f.code))


def codes() -> tuple[str, ...]:
    """Every fix code, in plan order (the CLI's ``--fix`` choices)."""
    return tuple(f.code for f in fixes())


def get(code: str) -> Fix:
    """The fix registered as ``code``; InputError naming ``--fix`` for an unknown one."""
    check_fixes([code], codes())
    return _FIXES[code]

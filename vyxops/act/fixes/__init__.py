"""Fixes: planned from an investigation, dry-run by default, applied with guards, verified, logged.

A :class:`Plan` is data: one :class:`Action` per platform change, in the order the
registry gives (leftover canaries, the image, the rows, the verification), each
recording what was read when it was planned, the command a person could type
instead and the dashboard page. :func:`apply_plan` changes nothing unless
``dry_run=False`` and ``confirm`` is the app's name; then it takes the app's lock,
and each action re-reads the world right before acting and

* is ``skipped`` ("already done: …") when the desired state already holds — so a plan
  applied twice changes nothing the second time;
* is ``skipped`` with the reason when the world moved since planning: a person re-plans;
* makes each platform write a transaction: an intent line in the audit log before it,
  the call, a re-read, and an outcome line; ``applied`` only when the re-read shows it.

One module per fix registers it (:mod:`vyxops.act.fixes.registry`); adding a fix is one
module (:func:`vyxops.core.plugins.import_submodules` imports every module here).
"""

from __future__ import annotations

from vyxops.act.fixes.apply import apply_plan
from vyxops.act.fixes.audit_log import History, read_history
from vyxops.act.fixes.lock import LockHeld
from vyxops.act.fixes.model import NOT_RUN, REMEDIATION_SCHEMA, Action, Outcome, Plan, Result
from vyxops.act.fixes.plan import STRATEGIES, plan_fixes
from vyxops.act.fixes.registry import Fix, Place, codes, fixes, get, register
from vyxops.core.plugins import import_submodules

# The fixes register themselves on import, in any order: the registry sorts them.
import_submodules(__name__, __path__)

#: Every fix code, in the order a plan applies them.
FIX_CODES = codes()

__all__ = [
    "FIX_CODES",
    "STRATEGIES",
    "REMEDIATION_SCHEMA",
    "NOT_RUN",
    "Action",
    "Plan",
    "Outcome",
    "Result",
    "History",
    "LockHeld",
    "Fix",
    "Place",
    "plan_fixes",
    "apply_plan",
    "read_history",
    "register",
    "fixes",
    "codes",
    "get",
]

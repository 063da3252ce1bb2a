"""Detectors and the causal ranking that names the root cause (SPEC.md "Findings").

Each detector module registers its detectors (:func:`vyxops.analysis.detect.model.register`)
with the link of the chain they speak for; every module of this package is
imported here, so a new detector is one new module. :func:`run_detectors` runs
them over one :class:`~vyxops.analysis.detect.context.Context`; :func:`rank` names the root.
"""

from __future__ import annotations

from vyxops.analysis.detect.context import Context, build_context
from vyxops.analysis.detect.model import CODES, DETECTORS, Finding, Link, Thresholds, detector_for, ev, register
from vyxops.analysis.detect.rank import rank
from vyxops.analysis.detect.summary import FINDINGS_SCHEMA, findings_document, summarize, verdict
from vyxops.core.plugins import import_submodules

import_submodules(__name__, __path__)  # each detector module registers its detectors

__all__ = [
    "CODES",
    "DETECTORS",
    "FINDINGS_SCHEMA",
    "Context",
    "Finding",
    "Link",
    "Thresholds",
    "build_context",
    "detector_for",
    "ev",
    "findings_document",
    "rank",
    "register",
    "run_detectors",
    "summarize",
    "verdict",
]


def run_detectors(ctx: Context) -> list[Finding]:
    """Every registered detector's findings, each stamped with its link, in a stable order (code, entity)."""
    found: list[Finding] = []
    for d in DETECTORS:
        for f in d.detect(ctx):
            f.link, f.symptom = d.link, d.symptom
            found.append(f)
    return sorted(found, key=lambda f: (CODES.index(f.code), f.entity))

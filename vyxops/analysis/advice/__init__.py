"""Every root cause's next step: an automated fix remediate plans, or, where none is safe, a recommended action.

A recommended action (:class:`NextStep`) has a stable code, a title, the platforms' own
commands (the contract's names, never a token), the dashboard pages, and the evidence
it rests on (the release named with its image and digest, the machines that served or
failed). One module per concern registers its actions (:func:`register`); adding one is
that module (every module here is imported: :func:`vyxops.core.plugins.import_submodules`).
:func:`next_steps` is what findings.json, the report, the postmortem and the plan show; :func:`settle_fixes`
keeps a finding from asking for a fix remediate would refuse.
"""

from __future__ import annotations

from vyxops.analysis.advice.model import (
    IMAGE_FAILURES,
    Kind,
    NextStep,
    Situation,
    advised_roots,
    kinds,
    register,
    release_fails,
)
from vyxops.analysis.advice.place import Place
from vyxops.analysis.advice.served import ReleaseHealth, release_health
from vyxops.analysis.advice.steps import next_steps, settle_fixes
from vyxops.core.plugins import import_submodules

import_submodules(__name__, __path__)  # each module registers its actions

__all__ = [
    "IMAGE_FAILURES",
    "Kind",
    "NextStep",
    "Place",
    "ReleaseHealth",
    "Situation",
    "advised_roots",
    "kinds",
    "next_steps",
    "register",
    "release_fails",
    "release_health",
    "settle_fixes",
]

"""The code of ``--probe``'s failure finding, apart from the probe itself.

The CLI reads it to set investigate's exit status once the notebook has run; importing
:mod:`vyxops.act.probe` for it would load the fixes and the analysis (pandas among them)
into the CLI's process after the report is written, where nothing else needs them.
"""

from __future__ import annotations

#: A probe whose canary did not provision, or was not cleaned up: critical, so that investigate and audit
#: exit non-zero (README "Finding codes"). Not one of SPEC's codes, which all read old evidence.
PROBE_FAILED = "PROVISIONING_PROBE_FAILED"

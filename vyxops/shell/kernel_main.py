"""The CLI's kernel process: ipykernel's own launcher (``ipykernel_launcher``), less the debugger.

ipykernel imports debugpy as it starts (about a sixth of a kernel's boot, on the run's critical
path) for the debugger JupyterLab attaches; nothing attaches one to the kernel a CLI run
starts. A ``None`` in ``sys.modules`` makes ``import debugpy`` an ImportError, and ipykernel
starts without a debugger, as it does where debugpy is not installed.

Public API: the ``sys.modules`` entry (Python's documented way to block an import) and
ipykernel's launch, as ``ipykernel_launcher`` does it (ipykernel 7.4.0). Relied on: ipykernel
treats debugpy's ImportError as "no debugger" (``ipykernel.debugger._is_debugpy_available``),
which tests/test_kernel_contract.py pins.
"""

from __future__ import annotations

import sys
from pathlib import Path

BLOCKED = ("debugpy",)


def main() -> None:
    # As ipykernel_launcher: the cwd leaves sys.path while the kernel loads (its shell puts it back).
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    for name in BLOCKED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()

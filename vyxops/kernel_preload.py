"""Imported by the CLI's notebook kernel while it boots (see :class:`vyxops.runner.Kernel`).

The notebooks' heavy modules load before the kernel says it is ready, so their
cost overlaps the CLI's own start (papermill, input checks, serving the sandbox)
instead of following it. Nothing here runs at ``import vyxops``.
"""

from __future__ import annotations

import gc
import sys
import warnings

# A few hundred thousand objects are created below and live as long as the kernel.
# The cyclic collector would walk them several times while they load (~0.08 s) and
# again in every full collection later; it is paused while they load, and then they
# are frozen out of its sight (see the end of this module).
gc.disable()
try:
    # matplotlib registers its 3D projection at import time by importing
    # mpl_toolkits.mplot3d: 60 ms, a twentieth of a whole run, for axes the reports
    # never draw. Blocked for that one import, then unblocked, so that an explicit
    # ``import mpl_toolkits.mplot3d`` in the kernel still works.
    _blocked = "mpl_toolkits.mplot3d" not in sys.modules
    if _blocked:
        sys.modules["mpl_toolkits.mplot3d"] = None  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Unable to import Axes3D")
            import matplotlib.backends.backend_agg
            import matplotlib.figure  # noqa: F401
    finally:
        if _blocked:
            del sys.modules["mpl_toolkits.mplot3d"]

    import pandas  # noqa: F401
    import postgrest  # noqa: F401

    import vyxops.investigate
    import vyxops.nbtools
    import vyxops.plot
    import vyxops.session
    import vyxops.timeline  # noqa: F401
finally:
    gc.freeze()
    gc.enable()

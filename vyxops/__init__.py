"""vyxops: operations notebooks for Fly.io + Supabase incidents.

Importing the package is cheap on purpose: the heavy modules (pandas, httpx,
duckdb, matplotlib) load only when the submodule that needs them is used.
"""

from __future__ import annotations

from vyxops.core.errors import VyxopsError

__version__ = "0.1.0"
__all__ = ["VyxopsError", "__version__"]

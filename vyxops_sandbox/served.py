"""What a served sandbox and the client that reaches it agree on over HTTP (a leaf: imports nothing).

The server (:mod:`vyxops_sandbox.server`) answers an injected timeout with this header instead of
hanging up; the sandbox-served opener's transport (:mod:`vyxops_sandbox.client`) turns it back into
``httpx.ReadTimeout``, so a served sandbox times out like the in-process one.
"""

from __future__ import annotations

FAULT_HEADER = "x-vyxops-sandbox-fault"  # a served sandbox's "this request timed out"

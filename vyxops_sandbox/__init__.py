"""vyxops_sandbox: a deterministic simulator of Fly.io and Supabase for vyxops (an optional extra).

The product reaches it only through :mod:`vyxops.fetch.targets` (the ``sandbox`` and
``sandbox-served`` openers); tests reach the world behind a session through
:func:`vyxops_sandbox.testing.world_of`. It may import vyxops's leaf modules
(errors, images, timeutil), and its openers the types they return (:mod:`vyxops.fetch.targets`), nothing above.
"""

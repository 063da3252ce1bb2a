"""Kept for ``import vyxops.kernel_preload``: the preload lives in :func:`vyxops.kernel.preload`."""

from vyxops.kernel import preload

preload()

"""Changing the platforms, guarded: the fixes, the canary probe, and doctor's checks before them."""

"""Helpers that tests and benchmarks share: fleet generators, planted credentials, hostile strings, and
:mod:`vyxops.testing.runs` (a scenario investigated, findings and actions by code).

The one bridge between the product and the simulator: :mod:`vyxops.testing.fleet`
reads a sandbox world's state and follows its lifecycle timings, so it may import
``vyxops_sandbox``; product modules may not (tests/test_layers.py).
"""

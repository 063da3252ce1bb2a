"""The suite's three tiers, fastest first, and the one place that says which tier each test file is in.

- ``unit``: the product's own code alone: no sandbox world (in-process or served), no kernel, no subprocess.
- ``sandbox``: a sandbox world in this process, or served from this process on 127.0.0.1 (the simulator's
  own tests too), and the CLI run in-process when it stops before any kernel.
- ``e2e``: papermill kernels (the CLI's investigate, remediate and audit), CLI or other subprocesses, a browser.

A file's tier is the heaviest thing any of its tests does. The conftest marks every test with its file's tier
(so ``pytest -m unit`` runs the fast ones alone; the markers are registered in pyproject.toml) and runs the
tiers in this order, so ``make test`` fails fast. A test file listed nowhere fails collection, naming this file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

TIERS = ("unit", "sandbox", "e2e")

FILES: dict[str, tuple[str, ...]] = {
    "unit": (
        "test_budget.py",
        "test_config.py",
        "test_contract.py",
        "test_frame_building.py",
        "test_http.py",
        "test_import_circles.py",
        "test_layers.py",
        "test_plugins.py",
        "test_no_seed_names.py",
        "test_pools.py",  # a plain HTTP server on 127.0.0.1, not a sandbox
        "test_project_reads.py",
        "test_refusals.py",
        "test_tiers.py",  # pytester runs in this process
        "test_timeutil.py",
    ),
    "sandbox": (
        "test_bad_input.py",  # the CLI in-process, stopped before any kernel (no_kernel)
        "test_concurrency.py",
        "test_detect.py",
        "test_direct_fixes.py",  # and a throwaway PostgreSQL server
        "test_direct_investigation.py",  # and a throwaway PostgreSQL server
        "test_self_hosted.py",  # a served sandbox and a throwaway PostgreSQL server
        "test_doctor.py",
        "test_doctor_database.py",  # and a throwaway PostgreSQL server
        "test_explore.py",
        "test_fault_matrix.py",
        "test_fault_matrix_investigate.py",
        "test_fixes.py",
        "test_fixes_last_good.py",
        "test_fixes_views.py",
        "test_fleet.py",
        "test_fly_logs_backfill.py",
        "test_fly_tokens.py",
        "test_frames.py",
        "test_heap.py",
        "test_image_identity.py",
        "test_live_clients.py",
        "test_live_path.py",
        "test_logsql.py",
        "test_next_steps.py",
        "test_platform_times.py",
        "test_postgrest_errors.py",
        "test_sources.py",
        "test_sandbox_busy_day.py",
        "test_logreads_windows.py",
        "test_bundle_manifests.py",
        "test_postgres_direct.py",  # a real PostgreSQL server, started once per session
        "test_sandbox_fly.py",
        "test_sandbox_limits.py",
        "test_sandbox_machines.py",
        "test_sandbox_pipeline.py",
        "test_sandbox_platform.py",
        "test_sandbox_registry.py",
        "test_sandbox_state.py",
        "test_sandbox_supabase.py",
        "test_scenario_stories.py",
        "test_scenarios.py",
        "test_stories.py",
        "test_summary_facts.py",
        "test_targets.py",
        "test_time_input.py",
        "test_timeline.py",
        "test_unseen_third_round.py",
    ),
    "e2e": (
        "test_cli_db_url.py",  # a kernel, and a throwaway PostgreSQL server
        "test_sandbox_postgres.py",  # `sandbox serve --postgres` in a child process
        "test_answer_shapes.py",
        "test_audit_reports.py",
        "test_browser_lab.py",
        "test_browser_reports.py",
        "test_cli_audit.py",
        "test_cli_front_door.py",
        "test_cli_investigate.py",
        "test_cli_remediate.py",
        "test_cli_run_imports.py",  # a whole investigate in a subprocess
        "test_cli_terminal.py",
        "test_contract_fixes.py",
        "test_current_release.py",
        "test_discover.py",
        "test_fault_matrix_hostile.py",
        "test_fixes_lock.py",
        "test_fixes_transactions.py",
        "test_function_jwt.py",
        "test_hosted_sandbox.py",
        "test_hostile_text.py",
        "test_kernel_contract.py",
        "test_kernel_death.py",
        "test_notebooks.py",
        "test_packaging.py",
        "test_postmortem_after_fix.py",
        "test_probe.py",
        "test_redaction.py",
        "test_redaction_encodings.py",
        "test_reports.py",
        "test_runner.py",
        "test_sandbox_cli.py",
        "test_small_things.py",
        "test_supabase_cli.py",
    ),
}


def tier_of(file_name: str) -> str | None:
    """The tier of the test file named ``file_name`` (a base name), or None when it is listed nowhere."""
    return next((tier for tier, names in FILES.items() if file_name in names), None)


def unlisted_message(path: Path) -> str:
    return f"{path.name} has no tier: add it to FILES in tests/tiers.py under {', '.join(TIERS)} (see its docstring)"


class Unlisted(pytest.File):
    """A test file with no tier: collecting it is an error, so the run stops before any test."""

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        raise self.CollectError(unlisted_message(self.path))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".py" and file_path.name.startswith("test_") and tier_of(file_path.name) is None:
        return Unlisted.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its file's tier, and run the tiers in order (a stable sort: files keep their order)."""
    for item in items:
        tier = tier_of(item.path.name)
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))
    items.sort(key=lambda item: TIERS.index(tier_of(item.path.name) or TIERS[-1]))


if __name__ == "__main__":  # `python tests/tiers.py unit`: that tier's files, for `make test-fast`
    import os
    import sys

    print(" ".join(os.path.relpath(Path(__file__).parent / name) for tier in sys.argv[1:] for name in FILES[tier]))

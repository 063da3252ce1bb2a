"""Shared fixtures, and the scan that no artefact of the test run holds a credential."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tiers

from vyxops.testing.credentials import artefact_text, leaked_credentials
from vyxops.testing.postgres import (
    REQUIRE_ENV,
    Database,
    Databases,
    PostgresMissing,
    postgres_required,
    session_databases,
)
from vyxops_sandbox.platform import API_KEYS, FLY_TOKENS, FlyPlatform, Platform, SupabasePlatform, credentials_for
from vyxops_sandbox.scenario import scenario_names

pytest_plugins = ("pytester",)  # tests/test_tiers.py runs small suites in this process

ARTEFACT_SUFFIXES = {".ipynb", ".html", ".json", ".jsonl", ".parquet", ".png", ".log", ".txt", ".csv", ".md"}
# The token shapes and decoding live in vyxops.testing.credentials (written apart from vyxops.core.redaction).


def pytest_configure(config: pytest.Config) -> None:
    """Every test file has a tier (tests/tiers.py): unit, then sandbox, then e2e."""
    if not config.pluginmanager.is_registered(tiers):
        config.pluginmanager.register(tiers, "vyxops-tiers")


@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a kernel fails the test: the checks must have stopped the run before."""

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("a kernel was started for bad input")

    monkeypatch.setattr("vyxops.shell.runner.Kernel.__init__", refuse)


@pytest.fixture
def sandbox_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh sandbox directory and audit log for one test, set in the environment."""
    directory = tmp_path / "sandbox"
    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(directory))
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    return directory


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[Databases]:
    """One throwaway PostgreSQL server for the test session (vyxops.testing.postgres); skipped where the machine
    has none, failed instead where VYXOPS_REQUIRE_POSTGRES=1 (CI, which installs it)."""
    try:
        with session_databases() as databases:
            yield databases
    except PostgresMissing as exc:
        if postgres_required():
            pytest.fail(f"{REQUIRE_ENV}=1 but {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def pg_db(pg_databases: Databases) -> Iterator[Database]:
    """A fresh, empty database on the session's server for one test, dropped after it."""
    db = pg_databases.create()
    yield db
    pg_databases.drop(db)


def _known_credentials() -> list[bytes]:
    """Every credential a sandbox of a shipped or test scenario can hand out, in each key and token shape."""
    names = scenario_names() + [p.stem for p in (Path(__file__).parent / "scenarios").glob("*.yaml")] + ["fleet"]
    values: set[bytes] = set()
    for name in names:
        for key in API_KEYS:
            for token in FLY_TOKENS:
                platform = Platform(SupabasePlatform(api_key=key), FlyPlatform(token=token))
                values.update(v.encode() for v in credentials_for(name, platform).values())
    return sorted(values)


def find_leaks(root: Path) -> list[str]:
    """Files under ``root`` (artefacts only) that contain a sandbox credential or a token-shaped string, as is,
    JSON- or URL-escaped, or in any base64, base64url or hex run (a Parquet file's cells are read)."""
    creds = _known_credentials()
    leaks = []
    for path in root.rglob("*"):
        if not path.is_file() or path.suffix not in ARTEFACT_SUFFIXES:
            continue
        if path.name == "state.json" and (path.parent / "state.json").exists() and "sandbox" in path.parent.name:
            continue  # the simulated platforms' own storage: it holds what users wrote, as the real ones do
        if leaked_credentials(artefact_text(path), creds):
            leaks.append(str(path))
    return leaks


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when any artefact written under the test run's temp dirs holds a token."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    try:
        base = factory.getbasetemp()
    except Exception:  # no test used a temp dir
        return
    leaks = find_leaks(Path(base))
    if leaks:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            "CREDENTIAL LEAK in test artefacts:\n  " + "\n  ".join(leaks), red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


REFERENCE_ROOT = Path(__file__).resolve().parents[2] / "shared" / "reference"
_NEEDS_REFERENCE = ("test_sandbox_fly.py", "test_sandbox_registry.py", "test_sandbox_supabase.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The sandbox's shape tests read ../shared/reference: required in CI, skipped (and said) elsewhere."""
    import os

    if REFERENCE_ROOT.is_dir():
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"CI needs the product's reference files at {REFERENCE_ROOT}")
    skip = pytest.mark.skip(reason=f"reference files not beside the checkout ({REFERENCE_ROOT})")
    for item in items:
        if item.path.name in _NEEDS_REFERENCE:
            item.add_marker(skip)

"""Bad input (issue 19): each one is one `vyxops:` line and exit 2, before anything is written anywhere.

Every case runs the CLI (``main([...])``) in a temp working directory that holds the sandbox,
the audit log and --out. The tree is snapshot before and after: a refused run leaves it as it was
(no --out folder, no sandbox state, no lock, no notebook). A kernel start fails the test at once.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_scenarios import GOOD  # a tiny valid scenario

from vyxops.core.errors import ConfigError, InputError
from vyxops.core.safeyaml import ALIAS_BOMB, alias_bomb
from vyxops.shell.cli import main
from vyxops_sandbox.faults import FaultRule
from vyxops_sandbox.scenario import parse_scenario
from vyxops_sandbox.world import World

APP = "vyx-app"
LIVE_ENV = {
    "FLY_API_TOKEN": "unshaped-fly-token-bad-input-01",
    "SUPABASE_URL": "https://abcdefghijklmnopqrst.supabase.co",
    "SUPABASE_SERVICE_ROLE_KEY": "unshaped-service-role-bad-input-02",
    "SUPABASE_ACCESS_TOKEN": "unshaped-access-token-bad-input-03",
    # Nothing listens here: a call that got out would fail, in a kernel the guard refuses to start.
    "FLY_API_BASE_URL": "http://127.0.0.1:9",
    "FLY_FLAPS_BASE_URL": "http://127.0.0.1:9",
    "SUPABASE_API_URL": "http://127.0.0.1:9",
}
META = {
    "schema": "vyxops.fetch.bundle/1",
    "app": APP,
    "captured_from": "sandbox",
    "now": "2025-10-02T17:25:00Z",
    "since": "2025-10-01T17:25:00Z",
    "until": "2025-10-02T17:25:00Z",
    "project_ref": "vyxsandboxprojectref",
    "org": "personal",
    "exchanges": 1,
}


@dataclass
class Case:
    """One bad input: how to lay it out in the working directory, the command, and what the error names."""

    argv: list[str]
    names: str  # a piece of the one `vyxops:` line
    setup: Callable[[Path], None] = lambda root: None
    env: dict[str, str] = field(default_factory=dict)  # values may hold {root}
    hint: str = ""  # a piece of the hint line that follows, saying what to do


def _investigate(*extra: str) -> list[str]:
    return ["investigate", "--app", APP, *extra, "--out", "out"]


def _saved_world(root: Path) -> Path:
    """A sandbox holding the seed scenario, saved; returns its state file."""
    World.load("stub-image", root / "sandbox")
    return root / "sandbox" / "state.json"


def _edit_state(change: Callable[[dict[str, object]], None]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = _saved_world(root)
        state = json.loads(path.read_text())
        change(state)
        path.write_text(json.dumps(state))

    return setup


def _apps_as_list(state: dict[str, object]) -> None:
    fly = state["fly"]
    assert isinstance(fly, dict)
    fly["apps"] = list(fly["apps"].values())


def _faults(rule: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        _saved_world(root)  # its clock (which a huge latency moved decades ahead) is in the snapshot
        (root / "sandbox" / "faults.json").write_text('{"seed": 0, "rules": [' + rule + "]}")

    return setup


def _bundle(meta: str, exchanges: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / "b").mkdir()
        (root / "b" / "bundle.json").write_text(meta)
        (root / "b" / "exchanges.jsonl").write_text(exchanges)

    return setup


def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda root: (root / name).write_text(text)


def _mkdir(name: str) -> Callable[[Path], None]:
    return lambda root: (root / name).mkdir(parents=True)


def _both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        for step in steps:
            step(root)

    return setup


CASES: dict[str, Case] = {
    "yaml alias bomb": Case(_investigate("--scenario", "bomb.yaml"), "anchor or alias",
                            _write("bomb.yaml", ALIAS_BOMB)),
    "state.json is a directory": Case(_investigate(), "state.json: the sandbox state is not a file",
                                      _mkdir("sandbox/state.json"), hint="vyxops sandbox reset"),
    "state.json with fly.apps a list": Case(["audit", "--all", "--out", "out"], "fly.apps is a list",
                                            _edit_state(_apps_as_list), hint="vyxops sandbox reset"),
    "state.json with a machine a string": Case(
        _investigate(), "state.json: the sandbox state has the wrong shape: fly.apps.vyx-app.machines.x",
        _edit_state(lambda s: s["fly"]["apps"][APP]["machines"].update({"x": "y"})),  # type: ignore[index]
        hint="vyxops sandbox reset",
    ),
    "bundle.json not JSON": Case(_investigate("--target", "bundle:b"), "bundle.json is not a bundle's metadata",
                                 _bundle("{not json", "")),
    "bundle.json without its time": Case(_investigate("--target", "bundle:b"), "now is None",
                                          _bundle(json.dumps({**META, "now": None}), "")),
    "exchanges.jsonl garbage": Case(_investigate("--target", "bundle:b"), "exchanges.jsonl:1: not an exchange",
                                    _bundle(json.dumps(META), "garbage\n")),
    "exchanges.jsonl wrong shape": Case(_investigate("--target", "bundle:b"), "exchanges.jsonl:1",
                                        _bundle(json.dumps(META), '{"key": "k", "status": "ok"}\n')),
    "VYXOPS_SANDBOX_DIR a file": Case(_investigate(), "VYXOPS_SANDBOX_DIR", _write("file", "x"),
                                      {"VYXOPS_SANDBOX_DIR": "{root}/file"}),
    "VYXOPS_SANDBOX_DIR under a file": Case(_investigate(), "VYXOPS_SANDBOX_DIR", _write("file", "x"),
                                            {"VYXOPS_SANDBOX_DIR": "{root}/file/sandbox"}),
    "sandbox reset, VYXOPS_SANDBOX_DIR a file": Case(["sandbox", "reset"], "VYXOPS_SANDBOX_DIR", _write("file", "x"),
                                                     {"VYXOPS_SANDBOX_DIR": "{root}/file"}),
    "audit log folder a file": Case(
        ["remediate", "--app", APP, "--apply", "--confirm", APP, "--out", "out"], "VYXOPS_AUDIT_LOG",
        _write("file", "x"), {"VYXOPS_AUDIT_LOG": "{root}/file/audit.jsonl"},
    ),
    "audit log a directory": Case(
        _investigate("--probe"), "VYXOPS_AUDIT_LOG", _mkdir("logdir"), {"VYXOPS_AUDIT_LOG": "{root}/logdir"}
    ),
    "--stuck-after nan": Case(_investigate("--stuck-after", "nan"), "--stuck-after"),
    "--stuck-after inf": Case(_investigate("--stuck-after", "inf"), "--stuck-after"),
    "--stuck-after -1": Case(_investigate("--stuck-after", "-1"), "--stuck-after"),
    "--stuck-after 0": Case(_investigate("--stuck-after", "0"), "--stuck-after"),
    "--out ''": Case(["investigate", "--app", APP, "--out", ""], "--out: is empty"),
    "latency_ms huge": Case(_investigate(), "latency_ms", _faults('{"kind": "latency", "latency_ms": 1000000000000}')),
    "retry_after negative": Case(_investigate(), "retry_after", _faults('{"kind": "429", "retry_after": -1}')),
    "retry_after NaN": Case(_investigate(), "retry_after", _faults('{"kind": "429", "retry_after": NaN}')),
    "db_update on an unknown table": Case(
        _investigate("--scenario", "s.yaml"), "not a table of the project",
        _write("s.yaml", GOOD + "  - at: 2025-10-02T16:30:00Z\n"
               "    db_update: {table: nosuch, match: {machine_id: x}, set: {status: failed}}\n"),
    ),
    "FLY_ORG a path": Case(_investigate("--target", "live"), "FLY_ORG", env={**LIVE_ENV, "FLY_ORG": "x/../../v1/apps"}),
    "FLY_ORG with a query": Case(_investigate("--target", "live"), "FLY_ORG", env={**LIVE_ENV, "FLY_ORG": "a?b=c"}),
    "contract table name a path": Case(
        _investigate("--contract", "vyxops.toml"), "table.name",
        _write("vyxops.toml", '[pipeline.table]\nname = "../../auth/v1/admin/users"\n'),
    ),
    # Exit-2 errors that used to come after a write: the sandbox replayed and saved, the apply's lock taken.
    "unknown machine on a fresh sandbox": Case(_investigate("--machine", "0123456789abcd"), "--machine"),
    "apply with --out a file": Case(
        ["remediate", "--app", APP, "--apply", "--confirm", APP, "--out", "file"], "--out", _write("file", "x")
    ),
    "--out a file, fresh sandbox": Case(_investigate("--scenario", "stub-image")[:-1] + ["file"], "--out",
                                        _write("file", "x")),
}  # fmt: skip


def _tree(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``root``: (is a directory, size, mtime in ns)."""
    out = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        out[str(path.relative_to(root))] = (path.is_dir(), st.st_size if not path.is_dir() else 0, st.st_mtime_ns)
    return out


@pytest.fixture
def deadline() -> Iterator[None]:
    """A hang (the YAML bomb took over 120 s) fails the test after 20 s instead of stalling the suite."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("the CLI hung on bad input")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_kernel: None,
    deadline: None,
) -> None:
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    for name in ("FLY_ORG", "FLY_ACCESS_TOKEN", "FLY_API_TOKEN", "VYXOPS_NOTIFY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no flyctl config of the machine is read
    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(root / "sandbox"))
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(root / "audit.jsonl"))
    for key, value in case.env.items():
        monkeypatch.setenv(key, value.format(root=root))
    case.setup(root)
    before = _tree(root)
    code = main(case.argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("vyxops:")]
    assert code == 2, err
    assert len(lines) == 1 and case.names in lines[0], err
    assert "Traceback" not in err and case.hint in err
    assert _tree(root) == before, "a refused run wrote to the working directory"


def test_an_unwritable_sandbox_dir_is_named_before_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_kernel: None
) -> None:
    """A directory this process may not write (read-only for a user; a /proc directory for root): exit 2, named."""
    if os.geteuid() != 0:
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o555)
        directory = locked / "sandbox"
    elif Path("/proc/1").is_dir():
        directory = Path("/proc/1/vyxops-sandbox")
    else:
        pytest.skip("no directory this root process cannot write")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(directory))
    assert main(_investigate()) == 2
    err = capsys.readouterr().err
    assert err.startswith("vyxops: VYXOPS_SANDBOX_DIR:") and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not directory.exists()


def test_sandbox_reset_refuses_a_state_that_is_a_directory(
    sandbox_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vyxops sandbox reset` names the directory instead of failing to unlink it (or removing what is in it)."""
    (sandbox_env / "state.json" / "keep").mkdir(parents=True)
    assert main(["sandbox", "reset"]) == 2
    assert capsys.readouterr().err.startswith("vyxops: ") and (sandbox_env / "state.json" / "keep").is_dir()


def test_the_alias_bomb_fails_in_milliseconds_naming_the_file_and_line() -> None:
    """The issue's 340-byte, 9-level bomb; and an alias anywhere, even a harmless one, is refused."""
    assert len(ALIAS_BOMB) < 400
    start = time.monotonic()
    with pytest.raises(InputError, match=r"bomb.yaml:1: \(file\): uses a YAML anchor or alias"):
        parse_scenario(ALIAS_BOMB, "bomb.yaml")
    assert time.monotonic() - start < 0.5
    with pytest.raises(InputError, match="s.yaml:4"):
        parse_scenario(GOOD.replace("supabase: {", "supabase: &s {"), "s.yaml")
    for depth in (100, 5000):  # past vyxops's bound, and past libyaml's own
        with pytest.raises(InputError, match="nest"):
            parse_scenario("name: " + "[" * depth + "]" * depth, "deep.yaml")
    assert alias_bomb(3).count("*") == 18


def test_a_bomb_in_flyctls_config_is_named_not_parsed(tmp_path: Path) -> None:
    """flyctl's config.yml is YAML too: an alias there is a ConfigError naming the file, at once."""
    from vyxops.core.config import live_credentials

    config = tmp_path / "config.yml"
    config.write_text(ALIAS_BOMB)
    env = {k: v for k, v in LIVE_ENV.items() if not k.startswith("FLY_")}
    start = time.monotonic()
    with pytest.raises(ConfigError, match="config.yml: line 1"):
        live_credentials(env, flyctl_config=config)
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize(
    ("rule", "name"),
    [
        ({"kind": "latency", "latency_ms": 60_001}, "latency_ms"),
        ({"kind": "429", "retry_after": float("inf")}, "retry_after"),
        ({"kind": "429", "retry_after": float("nan")}, "retry_after"),
        ({"kind": "429", "retry_after": -0.5}, "retry_after"),
    ],
)
def test_fault_rules_made_in_code_are_bounded_too(rule: dict[str, object], name: str) -> None:
    """Tests and `make faults` build rules directly: the same bounds hold there."""
    with pytest.raises(InputError, match=name):
        FaultRule(**rule)  # type: ignore[arg-type]
    assert FaultRule(kind="latency", latency_ms=60_000).latency_ms == 60_000
    assert FaultRule(kind="429", retry_after=0).retry_after == 0

"""The pipeline contract: the seed defaults, declared files, errors that name the key, where a run gets it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vyxops.core.contract import (
    SEED,
    TERMINAL,
    Contract,
    declared_contract,
    find_declared,
    load_contract_file,
    parse_contract,
    to_toml,
)
from vyxops.core.errors import InputError

WORKSPACES = """
[pipeline]
function = "spawn-workspace"
image_secret = "WORKSPACE_IMAGE"
image_fallback = ""
invoke = {body = {owner = "{canary_user}", region = "{region}"}, machine_id = "vm"}

[pipeline.table]
name = "workspaces"
columns = {machine_id = "vm_id", app = "", user = "owner", image = "image_ref", status = "state", error = ""}

[pipeline.status]
starting = ["provisioning"]
running = ["ready"]
stopped = ["closed"]
failed = ["error"]
"""


def test_every_key_is_optional_and_the_defaults_are_the_seed_teams() -> None:
    """An empty [pipeline] is SPEC.md's provision-machine, its secret, and the nine-column machines table."""
    c = parse_contract({})
    assert (c.function, c.image_secret, c.table.name) == (SEED.function, SEED.image_secret, SEED.table.name)
    assert c.columns.error == "" and c.columns.machine_id == SEED.columns.machine_id
    assert c.fallback_ref("notes-app") == "registry.fly.io/notes-app:latest"
    assert c.invoke is not None and c.invoke.build("vyxops-verify-1", "fra") == {
        "user_id": "vyxops-verify-1",
        "region": "fra",
    }


def test_a_declared_contract_names_another_teams_pipeline(tmp_path: Path) -> None:
    """vyxops.toml gives the function, secret, table, columns, words and probe body another team uses."""
    path = tmp_path / "vyxops.toml"
    path.write_text(WORKSPACES)
    c = load_contract_file(path)
    assert (c.function, c.image_secret, c.fallback_ref("w-app")) == ("spawn-workspace", "WORKSPACE_IMAGE", None)
    assert c.columns.named() == {
        "key": "id", "machine_id": "vm_id", "user": "owner", "image": "image_ref", "status": "state",
        "created_at": "created_at", "updated_at": "updated_at", "region": "region",
    }  # fmt: skip
    assert [c.status.role(w) for w in ("provisioning", "ready", "closed", "error", "paused")] == [
        "starting", "running", "stopped", "failed", TERMINAL,
    ]  # fmt: skip
    assert c.invoke is not None and c.invoke.build("u", "ams") == {"owner": "u", "region": "ams"}
    assert c.invoke.machine_id == "vm" and c.source == str(path)


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ('[pipeline]\nfunctoin = "x"', "pipeline.functoin", "is not a contract key"),
        ('[pipeline.table]\ncolumns = {machine_id = ""}', "pipeline.table.columns.machine_id", "is required"),
        ('[pipeline.table]\ncolumns = {vm = "vm_id"}', "pipeline.table.columns.vm", "not a column"),
        ('[pipeline.status]\nstarting = ["a"]\nrunning = ["a"]', "pipeline.status.running", "also a starting word"),
        ('[pipeline.status]\nrunnning = ["x"]', "pipeline.status.runnning", "not a status role"),
        ('[pipeline]\ninvoke = {body = {user = "fixed"}}', "pipeline.invoke.body", "canary's user"),
        ('[pipeline]\nimage_fallback = "ghcr.io/x:latest"', "pipeline.image_fallback", "registry.fly.io"),
        ("[pipeline]\nfunction = 3", "pipeline.function", "not a name"),
        ('[pipeline]\nfunction = "x; rm -rf ~"', "pipeline.function", "not an Edge Function's slug"),
        ('[pipeline]\nimage_secret = "SUPABASE_IMAGE"', "pipeline.image_secret", "not a name Supabase lets"),
    ],
)
def test_a_bad_contract_is_refused_naming_the_file_and_the_key(tmp_path: Path, text: str, key: str, says: str) -> None:
    """Each invalid value is an InputError (exit 2) that names the file, the key and what would be valid."""
    path = tmp_path / "vyxops.toml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_contract_file(path)
    assert caught.value.name == f"{path}: {key}" and says in str(caught.value)


def test_a_file_that_is_not_toml_or_declares_nothing_is_refused_as_contract_input(tmp_path: Path) -> None:
    """--contract pointing at nothing, at broken TOML, or at TOML without [pipeline] names --contract."""
    for text in (None, "[pipeline\n", "[other]\nx = 1\n"):
        path = tmp_path / "c.toml"
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)
        with pytest.raises(InputError) as caught:
            load_contract_file(path)
        assert caught.value.name == "--contract"


def test_the_project_declares_it_in_vyxops_toml_or_in_pyproject(tmp_path: Path) -> None:
    """vyxops.toml at the project root wins; else [tool.vyxops.pipeline] of pyproject.toml; else nothing (discover)."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    nested = tmp_path / "notebooks"
    nested.mkdir()
    assert find_declared(nested) is None and declared_contract(None, nested) is None
    (tmp_path / "pyproject.toml").write_text('tool = "not a table"\n[project]\nname = "x"\n')
    assert find_declared(nested) is None  # a pyproject of another shape declares nothing; it is not an error
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.vyxops.pipeline]\nfunction = "launch"\n')
    assert declared_contract(None, nested).function == "launch"  # type: ignore[union-attr]
    (tmp_path / "vyxops.toml").write_text(WORKSPACES)
    assert find_declared(nested) == tmp_path / "vyxops.toml"
    other = tmp_path / "other.toml"
    other.write_text('[pipeline]\nfunction = "explicit"\n')
    assert declared_contract(other, nested).function == "explicit"  # type: ignore[union-attr]


def test_a_contract_written_as_toml_reads_back_the_same(tmp_path: Path) -> None:
    """to_toml (what `vyxops init` writes, evidence as comments) parses back to the same pipeline."""
    c = load_contract_file(_write(tmp_path, WORKSPACES))
    evidenced = Contract(c.function, c.image_secret, c.image_fallback, c.invoke, c.table, c.status, "discovered",
                         (("function", 'spawn-workspace: the project\'s only "function"\nsecond line'),))  # fmt: skip
    text = to_toml(evidenced)
    assert "# spawn-workspace: the project's only" in text and "# second line" in text
    back = load_contract_file(_write(tmp_path, text))
    assert (back.function, back.image_secret, back.image_fallback, back.invoke, back.table, back.status) == (
        c.function, c.image_secret, c.image_fallback, c.invoke, c.table, c.status,
    )  # fmt: skip


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vyxops.toml"
    path.write_text(text)
    return path

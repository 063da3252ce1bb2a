"""Discovery: a team's pipeline contract learnt from the platforms' answers alone, with its evidence, never a guess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vyxops.analysis.discover import discover
from vyxops.core.contract import SEED, AmbiguousContract, load_contract_file
from vyxops.fetch.session import open_session
from vyxops.shell.cli import main
from vyxops_sandbox.scenario import load_scenario, scenario_names
from vyxops_sandbox.testing import world_of

#: The shipped scenarios of teams other than the seed's (their `pipeline:` block names another function).
OTHER_TEAMS = sorted(n for n in scenario_names() if "pipeline" in load_scenario(n).raw)


def _block(session: Any) -> dict[str, Any]:
    """What the sandbox knows of the team (the test may look; the product never does)."""
    block: dict[str, Any] = world_of(session).state["supabase"]["pipeline"]
    return block


def test_the_shipped_scenarios_hold_other_teams() -> None:
    """At least three other teams' pipelines are shipped (four function names besides the seed's)."""
    functions = {load_scenario(n).raw["pipeline"]["function"] for n in OTHER_TEAMS}
    assert len(OTHER_TEAMS) >= 7 and len(functions) >= 3 and SEED.function not in functions


@pytest.mark.parametrize("name", OTHER_TEAMS)
def test_discovery_learns_another_teams_contract_from_the_platforms(name: str, tmp_path: Path) -> None:
    """Function, image secret, table and the columns that hold the machine id, app, image, status and times are
    the team's own, learnt from functions, digests, PostgREST's OpenAPI root and rows; each comes with evidence."""
    apps = load_scenario(name).apps
    with open_session("sandbox", scenario=name, sandbox_dir=tmp_path) as s:
        c = discover(s, apps)
        p = _block(s)
    assert (c.function, c.image_secret, c.table.name) == (p["function"], p["image_secret"], p["table"])
    columns = {k: v or "" for k, v in p["columns"].items()}
    for key in ("machine_id", "app", "image", "status", "created_at", "updated_at"):
        assert getattr(c.columns, key) == columns[key], key
    if p["columns"]["user"] and p["status_enum"]:  # a user the machines' metadata carries, and the words
        assert c.columns.user == p["columns"]["user"]
        for role in ("starting", "running", "stopped", "failed"):
            assert getattr(c.status, role)[:1] == tuple(p["status"][role][:1]), role
    evidence = dict(c.evidence)
    assert c.source == "discovered" and all(evidence.get(k) for k in ("function", "image_secret", "table"))


def test_discovery_takes_the_probes_user_key_from_the_machines_metadata(tmp_path: Path) -> None:
    """A team whose body key (`email`) differs from its user column (`user_email`): the probe sends `email`."""
    with open_session("sandbox", scenario="kernels-tag-missing-in-own-words", sandbox_dir=tmp_path) as s:
        c = discover(s, ["kernels-app"])
    assert c.columns.user == "user_email" and c.invoke is not None
    assert c.invoke.build("canary-user", "iad").get("email") == "canary-user"


@pytest.mark.parametrize("name", ["stub-image", "latest-pruned", "secret-unmatched", "machine-never-reports"])
def test_discovery_on_the_seed_teams_stories_finds_the_seed_contract(name: str, tmp_path: Path) -> None:
    """The seed team's names come back from the platforms (its table may be named otherwise: latest-pruned's)."""
    root = Path(__file__).parent / "scenarios"
    scenario = root / f"{name}.yaml" if (root / f"{name}.yaml").is_file() else name
    sc = load_scenario(scenario)
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path) as s:
        c = discover(s, sc.apps)
    assert (c.function, c.image_secret, c.table.name) == (SEED.function, SEED.image_secret, sc.machines_table)
    assert (c.columns.machine_id, c.columns.status, c.columns.error) == ("fly_machine_id", "status", "")


AMBIGUOUS = """name: two-image-secrets
now: 2026-03-02T12:00:00Z
fly: {org: twins, apps: [twin-app]}
supabase: {project_ref: twinsprojectrefaaabz}
pipeline:
  function: launch-twin
  image_secret: TWIN_IMAGE
  table: {name: twins, columns: {machine_id: vm, app: app, user: owner, image: image, status: state,
          created_at: created_at, updated_at: updated_at, error: null}}
  invoke: {body: {owner: "{canary_user}", region: "{region}"}}
steps:
  - at: 2026-03-02T09:00:00Z
    deploy: {app: twin-app, image: registry.fly.io/twin-app:deployment-01KJMA0000000000000000000}
  - at: 2026-03-02T09:05:00Z
    set_secret: {name: TWIN_IMAGE, value: registry.fly.io/twin-app:deployment-01KJMA0000000000000000000}
  - at: 2026-03-02T09:06:00Z
    set_secret: {name: BACKUP_IMAGE, value: registry.fly.io/twin-app:deployment-01KJMA0000000000000000000}
  - at: 2026-03-02T10:00:00Z
    invoke: {function: launch-twin, body: {owner: o-1, region: ams}}
"""


def test_two_secrets_that_fit_equally_stop_discovery_naming_both_and_the_key(tmp_path: Path) -> None:
    """Two secrets holding the same image: discovery lists both and asks to declare image_secret; it never guesses."""
    scenario = tmp_path / "twins.yaml"
    scenario.write_text(AMBIGUOUS)
    with open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "sb") as s:
        with pytest.raises(AmbiguousContract) as caught:
            discover(s, ["twin-app"])
    err = caught.value
    assert err.key == "image_secret" and {v for v, _ in err.candidates} == {"TWIN_IMAGE", "BACKUP_IMAGE"}
    assert "declare `image_secret`" in str(err)


def test_an_ambiguous_contract_exits_2_before_anything_is_written_and_a_declared_one_settles_it(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """investigate on the twins exits 2 naming the candidates; with --contract declaring the secret it runs."""
    scenario = tmp_path / "twins.yaml"
    scenario.write_text(AMBIGUOUS)
    out = tmp_path / "out"
    assert main(["investigate", "--scenario", str(scenario), "--app", "twin-app", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pipeline.image_secret" in err and "TWIN_IMAGE" in err and "BACKUP_IMAGE" in err
    assert not (out / "findings.json").exists()
    declared = tmp_path / "vyxops.toml"
    declared.write_text('[pipeline]\nfunction = "launch-twin"\nimage_secret = "TWIN_IMAGE"\n'
                        '[pipeline.table]\nname = "twins"\ncolumns = {machine_id = "vm", app = "app", user = "owner", '
                        'status = "state"}\n[pipeline.status]\nstarting = ["starting"]\n')  # fmt: skip
    args = ["investigate", "--scenario", str(scenario), "--app", "twin-app", "--contract", str(declared)]
    assert main([*args, "--out", str(out)]) == 0
    doc = json.loads((out / "findings.json").read_text())
    assert doc["verdict"] == "healthy" and doc["root_cause"] is None  # the one session served, on the pinned image
    assert "declared in" in (out / "investigate.html").read_text()


def test_init_writes_the_discovered_contract_with_its_evidence_and_never_overwrites(
    sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vyxops init` writes vyxops.toml at the project root, each key under its evidence; a second run refuses."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "team"\n')
    assert main(["init", "--scenario", "gameservers-region-capacity", "--app", "gameservers-app"]) == 0
    written = tmp_path / "vyxops.toml"
    text = written.read_text()
    assert "# allocate-server: the project's only Edge Function" in text and 'function = "allocate-server"' in text
    with open_session("sandbox", scenario="gameservers-region-capacity", sandbox_dir=tmp_path / "fresh") as s:
        discovered = discover(s, ["gameservers-app"])
    declared = load_contract_file(written)
    assert (declared.function, declared.image_secret, declared.table, declared.status, declared.invoke) == (
        discovered.function, discovered.image_secret, discovered.table, discovered.status, discovered.invoke,
    )  # fmt: skip
    assert f"contract: {written}" in capsys.readouterr().out
    assert main(["init", "--scenario", "gameservers-region-capacity", "--app", "gameservers-app"]) == 2
    assert "nothing was written" in capsys.readouterr().err and written.read_text() == text
    assert main(["init", "--scenario", "gameservers-region-capacity", "--app", "gameservers-app", "--out", "-"]) == 0
    assert capsys.readouterr().out.strip() == text.strip()


@pytest.mark.parametrize("nested", [False, True])
def test_a_row_marked_just_before_a_clean_exit_votes_stopped_in_either_form_fly_go_reads(nested: bool) -> None:
    """fly-go's MachineRequest.GetExitCode reads ``request.exit_event`` or ``request.MonitorEvent.exit_event``;
    discovery reads exits through facts.read_exit_event, so both forms tell a row's word means stopped, and in
    both a crash after the update is not the app marking its row: the row changed while the machine ran."""
    from vyxops.analysis.discover_table import _role_shown

    def machine(code: int) -> dict[str, object]:
        exit_event = {"exit_code": code, "requested_stop": False}
        request = {"MonitorEvent": {"exit_event": exit_event}} if nested else {"exit_event": exit_event}
        return {"id": "e784079b449483", "events": [
            {"type": "exit", "status": "stopped", "timestamp": 1_760_000_100_000, "request": request},
            {"type": "start", "status": "started", "timestamp": 1_760_000_000_000},
        ]}  # fmt: skip

    c = SEED.columns
    row = {c.machine_id: "e784079b449483", c.status: "closed", c.created_at: "2025-10-09T08:53:00+00:00",
           c.updated_at: "2025-10-09T08:54:50+00:00"}  # fmt: skip
    assert _role_shown(row, c, machine(0)) == "stopped"
    assert _role_shown(row, c, machine(1)) == "running"


def test_an_openapi_document_of_another_shape_describes_no_table_rather_than_failing() -> None:
    """PostgREST's root is read as it comes: parts of the wrong type (a proxy's page, a newer layout) are skipped."""
    from vyxops.analysis.discover_table import tables_of

    assert tables_of({"components": "not a table"}) == []
    assert tables_of({"definitions": ["machines"]}) == []
    shapes = tables_of({"definitions": {"m": {"properties": {"id": {"type": "integer"}, "bad": "text"}}, "v": 1}})
    assert [(t.name, list(t.columns)) for t in shapes] == [("m", ["id"])]
    oas3 = tables_of({"components": {"schemas": {"servers": {"properties": {"vm": {"type": "string"}}}}}})
    assert [(t.name, list(t.columns)) for t in oas3] == [("servers", ["vm"])]

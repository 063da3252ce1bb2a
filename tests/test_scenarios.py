"""Scenario files: validation with the line and key named, determinism, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vyxops.core.errors import InputError, ScenarioError
from vyxops_sandbox.scenario import load_scenario, parse_scenario, scenario_names
from vyxops_sandbox.world import World

GOOD = """\
name: tiny
now: 2025-10-02T17:25:00Z
fly: {org: personal, apps: [vyx-app]}
supabase: {project_ref: vyxsandboxprojectref, machines_table: machines}
images:
  registry.fly.io/vyx-app:stub: {behaviour: exit}
steps:
  - at: 2025-10-02T16:18:40Z
    invoke: {function: provision-machine, body: {user_id: u-1}}
"""


@pytest.mark.parametrize(
    ("broken", "key", "line", "allowed"),
    [
        (
            GOOD.replace("behaviour: exit", "behaviour: explode"),
            "images.registry.fly.io/vyx-app:stub.behaviour",
            6,
            "serve",
        ),
        (GOOD.replace("    invoke:", "    invok:"), "steps[0]", 8, "invoke"),
        (GOOD.replace("now: 2025-10-02T17:25:00Z", "now: tomorrow"), "now", 2, "RFC 3339"),
        (GOOD.replace("2025-10-02T16:18:40Z", "2025-10-03T16:18:40Z"), "steps[0].at", 8, None),
        (GOOD.replace("apps: [vyx-app]", "apps: []"), "fly.apps", 3, None),
        (
            GOOD.replace("body: {user_id: u-1}", "body: {user_id: u-1}, colour: red"),
            "steps[0].invoke.colour",
            9,
            "machine_id",
        ),
        (GOOD + "extra: 1\n", "extra", 10, "steps"),
    ],
    ids=["behaviour", "step-kind", "now", "step-after-now", "no-apps", "unknown-arg", "unknown-top-key"],
)
def test_bad_scenario_names_key_line_and_what_is_allowed(broken: str, key: str, line: int, allowed: str | None) -> None:
    """A bad scenario's error names the file, the key, its line and, where it helps, the allowed values."""
    with pytest.raises(ScenarioError) as err:
        parse_scenario(broken, "bad.yaml")
    e = err.value
    assert e.key == key and e.line == line and f"bad.yaml:{line}" in str(e)
    if allowed:
        assert allowed in str(e)


def test_invalid_yaml_names_the_line() -> None:
    """YAML that does not parse is reported with its line."""
    with pytest.raises(ScenarioError) as err:
        parse_scenario("name: x\nsteps: [\n", "broken.yaml")
    assert err.value.line is not None and "not valid YAML" in str(err.value)


@pytest.mark.parametrize("name", scenario_names())
def test_same_scenario_same_state_byte_for_byte(name: str) -> None:
    """Replaying a shipped scenario twice gives identical state bytes."""
    a = World.from_scenario(load_scenario(name)).dumps()
    b = World.from_scenario(load_scenario(name)).dumps()
    assert a == b


def test_seed_replays_the_incident_as_spec_tells_it() -> None:
    """The seed: machine 5683732efe3208 started, exited 0, was destroyed; its row is starting; v2 is current."""
    w = World.from_scenario(load_scenario("stub-image"))
    m = w.machine("vyx-app", "5683732efe3208")
    assert m["state"] == "destroyed"
    assert [e["type"] for e in m["events"]] == ["destroy", "exit", "start", "launch"]
    assert m["events"][1]["request"]["exit_event"]["exit_code"] == 0
    assert m["config"]["auto_destroy"] is True and m["config"]["restart"] == {"policy": "no"}
    rows = w.table("machines")["rows"]
    assert [(r["fly_machine_id"], r["status"], r["image"]) for r in rows] == [
        ("5683732efe3208", "starting", "registry.fly.io/vyx-app:stub")
    ]
    assert [r["version"] for r in w.app("vyx-app")["releases"]] == [2, 1]
    assert w.state["scenario"]["now"] == "2025-10-02T17:25:00Z"


def test_sandbox_keeps_its_state_for_the_same_scenario_and_reloads_for_another(tmp_path: Path) -> None:
    """Loading the scenario the sandbox holds keeps changes made so far; another scenario starts over."""
    w = World.load("stub-image", tmp_path)
    w.set_secrets([{"name": "DOCKER_IMAGE", "value": "changed"}])
    w.save()
    assert World.load("stub-image", tmp_path).state["supabase"]["secrets"]["DOCKER_IMAGE"]["value"] == "changed"
    assert World.load(None, tmp_path).scenario_name == "stub-image"
    other = World.load("healthy", tmp_path)
    assert other.scenario_name == "healthy"
    assert (
        World.load("stub-image", tmp_path).state["supabase"]["secrets"]["DOCKER_IMAGE"]["value"]
        == "registry.fly.io/vyx-app:stub"
    )


def test_missing_tag_in_a_create_step_makes_no_machine() -> None:
    """A create_machine step with an image the registry lacks is refused, like the real API: no machine."""
    text = GOOD.replace(
        "    invoke: {function: provision-machine, body: {user_id: u-1}}",
        "    create_machine: {app: vyx-app, image: registry.fly.io/vyx-app:nope}",
    )
    w = World.from_scenario(parse_scenario(text))
    assert w.app("vyx-app")["machines"] == {}


# --------------------------------------------------------------------------- bad input (issue 9)
WIDER = """\
name: wider
now: 2025-10-02T17:25:00Z
fly: {org: personal, apps: [vyx-app]}
supabase: {project_ref: vyxsandboxprojectref}
images:
  registry.fly.io/vyx-app:stub: {behaviour: crash, exit_code: 1, after_s: 2}
steps:
  - at: 2025-10-02T16:00:00Z
    deploy: {app: vyx-app, image: registry.fly.io/vyx-app:deployment-01K6JB0TX9MACMV6XMSZXF94BC, tag_latest: true}
  - at: 2025-10-02T16:18:40Z
    invoke: {function: provision-machine, body: {user_id: u-1}, machine_id: 5683732efe3208}
"""


@pytest.mark.parametrize(
    ("old", "new", "key", "allowed"),
    [
        ("after_s: 2", "after_s: .inf", "images.registry.fly.io/vyx-app:stub.after_s", "finite"),
        ("after_s: 2", "after_s: -1", "images.registry.fly.io/vyx-app:stub.after_s", "finite"),
        ("exit_code: 1", "exit_code: true", "images.registry.fly.io/vyx-app:stub.exit_code", "0-255"),
        ("exit_code: 1", "exit_code: 300", "images.registry.fly.io/vyx-app:stub.exit_code", "0-255"),
        ("now: 2025-10-02T17:25:00Z", "now: 9999-12-31T00:00:00Z", "now", "2099"),
        ("tag_latest: true", "tag_latest: 'no'", "steps[0].deploy.tag_latest", "false"),
        ("tag_latest: true", "tag_latest: 'yes'", "steps[0].deploy.tag_latest", "true"),
        ("exit_code: 1,", "exit_code: 1, oom_killed: true,", "images.registry.fly.io/vyx-app:stub.exit_code", "137"),
        ("after_s: 2}", "after_s: 2, session_s: 5}", "images.registry.fly.io/vyx-app:stub.session_s", None),
        ("machine_id: 5683732efe3208", "machine_id: 56837", "steps[1].invoke.machine_id", "14 lower-case hex"),
        ("machine_id: 5683732efe3208", "machine_id: 12345678901234", "steps[1].invoke.machine_id", "quote"),
        ("tag_latest: true}", "tag_latest: true, release_command: 'yes'}", "steps[0].deploy.release_command", "true"),
        ("supabase: {project_ref: vyxsandboxprojectref}", "supabase: {project_ref: vyxsandboxprojectref}\n"
         "platform: {supabase: {plan: gold}}", "platform.supabase.plan", "enterprise"),
        ("supabase: {project_ref: vyxsandboxprojectref}", "supabase: {project_ref: vyxsandboxprojectref}\n"
         "platform: {fly: {token_apps: [other-app]}}", "platform.fly.token_apps", "vyx-app"),
        ("supabase: {project_ref: vyxsandboxprojectref}", "supabase: {project_ref: vyxsandboxprojectref}\n"
         "platform: {fly: {colour: red}}", "platform.fly.colour", "token"),
    ],
    ids=[
        "after_s-inf", "after_s-negative", "exit_code-bool", "exit_code-range", "now-9999", "quoted-no",
        "quoted-yes", "oom-needs-137", "session_s-on-crash", "machine-id-shape", "machine-id-number",
        "release_command-quoted", "plan", "token_apps", "platform-unknown-key",
    ],
)  # fmt: skip
def test_bad_values_are_refused_with_the_key_and_what_is_allowed(
    old: str, new: str, key: str, allowed: str | None
) -> None:
    """Types and ranges are checked: quoted booleans, .inf, out-of-range times and codes name key and allowed values."""
    assert old in WIDER
    with pytest.raises(ScenarioError) as err:
        parse_scenario(WIDER.replace(old, new, 1), "wider.yaml")
    assert err.value.key == key, str(err.value)
    if allowed:
        assert allowed in str(err.value)


def test_a_second_machine_with_an_existing_id_is_refused_by_name() -> None:
    """A machine id made twice is refused at the second step, naming the first; the first machine's history stays."""
    text = WIDER + (
        "  - at: 2025-10-02T16:30:00Z\n"
        "    create_machine: {app: vyx-app, image: registry.fly.io/vyx-app:stub, machine_id: 5683732efe3208}\n"
    )
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "dup.yaml")
    assert err.value.key == "steps[2].create_machine.machine_id" and err.value.line == 13
    assert "already made by steps[1]" in str(err.value)


def test_a_stop_of_a_machine_no_step_made_is_refused() -> None:
    """stop_machine and destroy_machine name a machine an earlier step made."""
    text = WIDER + "  - at: 2025-10-02T16:30:00Z\n    stop_machine: {app: vyx-app, machine_id: aaaaaaaaaaaaaa}\n"
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "stop.yaml")
    assert err.value.key == "steps[2].stop_machine.machine_id" and "5683732efe3208" in str(err.value)


def test_a_stop_the_machine_cannot_take_is_refused_at_replay_with_the_step_line() -> None:
    """Stopping a machine that is already gone is a ScenarioError naming the step and its line, not a traceback."""
    stop = "  - at: 2025-10-02T16:{m}:00Z\n    stop_machine: {{app: vyx-app, machine_id: 5683732efe3208}}\n"
    with pytest.raises(ScenarioError) as err:
        World.from_scenario(parse_scenario(WIDER + stop.format(m=30) + stop.format(m=31), "late-stop.yaml"))
    assert err.value.key == "steps[3].stop_machine" and err.value.line == 14 and "not started" in str(err.value)


def test_a_duplicated_yaml_key_is_refused_with_its_line() -> None:
    """YAML keeps the last of two equal keys silently; the reader refuses the second with its line."""
    with pytest.raises(ScenarioError) as err:
        parse_scenario(WIDER.replace("fly: {org: personal,", "fly: {org: personal, org: acme,"), "dup-key.yaml")
    assert err.value.key == "org" and err.value.line == 3


def test_a_non_utf8_scenario_file_is_refused_with_its_line(tmp_path: Path) -> None:
    """A scenario file that is not UTF-8 is a ScenarioError naming the byte and its line."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(WIDER.replace("title", "x").encode() + "  # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert "not UTF-8" in str(err.value) and err.value.line == 12


def test_a_corrupted_state_file_is_refused_with_the_reset_command(tmp_path: Path) -> None:
    """A state.json that is not JSON is refused (InputError), naming the reset command, never replayed over."""
    World.load("stub-image", tmp_path)
    (tmp_path / "state.json").write_text('{"schema": "vyxops.sandbox/2", "now_ms": 17', encoding="utf-8")
    with pytest.raises(InputError) as err:
        World.load("stub-image", tmp_path)
    assert "corrupted" in str(err.value) and "vyxops sandbox reset --scenario stub-image" in str(err.value)


def test_a_state_file_of_another_schema_is_refused_not_replayed(tmp_path: Path) -> None:
    """A state.json of another schema keeps its bytes and is refused with the reset command (it may hold fixes)."""
    World.load("stub-image", tmp_path)
    state = json.loads((tmp_path / "state.json").read_text())
    state["schema"] = "vyxops.sandbox/1"
    (tmp_path / "state.json").write_text(json.dumps(state))
    before = (tmp_path / "state.json").read_bytes()
    with pytest.raises(InputError) as err:
        World.load("healthy", tmp_path)
    assert "vyxops.sandbox/1" in str(err.value) and "vyxops sandbox reset --scenario healthy" in str(err.value)
    assert (tmp_path / "state.json").read_bytes() == before


def test_the_cli_refuses_a_corrupted_state_with_exit_2(sandbox_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`vyxops sandbox status` on a corrupted state exits 2 with the reset command, and `reset` repairs it."""
    from vyxops.shell.cli import main

    sandbox_env.mkdir(parents=True)
    (sandbox_env / "state.json").write_bytes(b"\xff\xfe not json")
    assert main(["sandbox", "status", "--scenario", "stub-image"]) == 2
    assert "vyxops sandbox reset --scenario stub-image" in capsys.readouterr().err
    assert main(["sandbox", "reset", "--scenario", "stub-image"]) == 0


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{", "not JSON"),
        ("[]", "rules"),
        ('{"rules": [{"kind": "boom"}]}', "rules[0].kind"),
        ('{"rules": [{"kind": "429", "rate": true}]}', "rules[0].rate"),
        ('{"rules": [{"kind": "429", "colour": 1}]}', "rules[0].colour"),
        ('{"rules": [{"kind": "5xx", "path": "("}]}', "rules[0].path"),
        ('{"seed": "x", "rules": []}', "seed"),
    ],
    ids=["not-json", "not-an-object", "kind", "bool-rate", "unknown-field", "bad-regex", "seed"],
)
def test_a_malformed_faults_file_is_an_input_error_naming_the_file(tmp_path: Path, text: str, named: str) -> None:
    """faults.json that is not the documented format is an InputError naming the file and the field, not a traceback."""
    from vyxops_sandbox.faults import Faults

    (tmp_path / "faults.json").write_text(text)
    with pytest.raises(InputError) as err:
        Faults.load(tmp_path)
    assert str(tmp_path / "faults.json") in str(err.value) and named in str(err.value)

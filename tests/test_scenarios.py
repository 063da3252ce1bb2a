"""Scenario files: validation with the line and key named, determinism, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from vyxops.errors import ScenarioError
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

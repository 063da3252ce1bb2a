"""The users' own Supabase client against a served sandbox: the pinned Supabase CLI, run as a person runs it.

The CLI (npm ``supabase``, pinned in the Makefile, installed into ``.tools/supabase-cli`` by
``make test``/``make supabase-cli``) runs offline once installed. It is pointed at a served
sandbox by a profile file with ``api_url:`` (``--profile FILE``, or ``SUPABASE_PROFILE``: the
profile keys are supabase/cli ``apps/cli-go/internal/utils/profile.go``, ``Profile``: name,
api_url, dashboard_url and project_host are required) and finds the access token in
``SUPABASE_ACCESS_TOKEN``, only ever in the child's environment. It refuses a token outside
``^sbp_(oauth_)?[a-f0-9]{40}$`` (``internal/utils/access_token.go``).

Every ``supabase …`` command a remediation plan prints as its native equivalent is run through
a shell exactly as printed, and the next investigation must see its effect.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from vyxops.act.fixes import apply_plan, plan_fixes
from vyxops.analysis.investigate import investigate
from vyxops.core.images import secret_digest
from vyxops.fetch.session import open_session
from vyxops_sandbox.function_body import STANDIN_MARK
from vyxops_sandbox.hosted import ENV, HostedSandbox
from vyxops_sandbox.platform import credentials_for
from vyxops_sandbox.scenario import scenario_names
from vyxops_sandbox.world import World, sha256_hex

REPO = Path(__file__).resolve().parents[1]
CLI_BIN = REPO / ".tools" / "supabase-cli" / "node_modules" / ".bin"
PINNED = re.search(r"^SUPABASE_CLI_VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
# The CLI's own AccessTokenPattern (supabase/cli apps/cli-go/internal/utils/access_token.go).
CLI_TOKEN = re.compile(r"^sbp_(oauth_)?[a-f0-9]{40}$")
AFTER_GOOD = Path(__file__).parent / "scenarios" / "release-crashes-after-good.yaml"


def test_every_sandbox_access_token_has_the_shape_the_supabase_cli_accepts() -> None:
    """The CLI refuses any other shape ("Invalid access token format"): every scenario's token passes its pattern."""
    for name in [*scenario_names(), "fleet"]:
        assert CLI_TOKEN.match(credentials_for(name)["supabase_access_token"]), name


def _cli() -> Path:
    """The pinned CLI; skipped with the reason when it is not installed, failed where it is required (.ci/run)."""
    cli = CLI_BIN / "supabase"
    if cli.exists():
        return cli
    why = f"the Supabase CLI is not installed at {cli} (make supabase-cli; it needs npm)"
    if os.environ.get("VYXOPS_REQUIRE_SUPABASE_CLI") or os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


@dataclass
class Served:
    """A served sandbox, a profile pointing the CLI at it, and where the CLI runs."""

    hosted: HostedSandbox
    world: World
    profile: Path
    work: Path
    env: dict[str, str]
    transcript: list[str]

    @property
    def ref(self) -> str:
        return self.world.credentials["project_ref"]

    def shell(self, command: str) -> subprocess.CompletedProcess[str]:
        """Run ``command`` through a shell as a person types it, the CLI on PATH and the profile in the environment."""
        done = subprocess.run(
            ["bash", "-c", command], cwd=self.work, env=self.env, capture_output=True, text=True, timeout=120
        )
        self.transcript.append(f"$ {command}\n{done.stdout}{done.stderr}[exit {done.returncode}]")
        return done

    def supabase(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``supabase ARGS --project-ref REF --profile FILE``; fails the test when the CLI exits non-zero."""
        command = shlex.join(["supabase", *args, "--project-ref", self.ref, "--profile", str(self.profile)])
        done = self.shell(command)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        return done

    def secrets(self) -> dict[str, str]:
        """The served world's secrets (name → plaintext), as the platform holds them."""
        self.world.refresh()
        return {name: s["value"] for name, s in self.world.state["supabase"]["secrets"].items()}


@contextmanager
def serve(scenario: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """Serve ``scenario`` on 127.0.0.1 for the CLI and for vyxops sessions; stopped (and saved) on exit."""
    cli = _cli()
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    assert PINNED and version == PINNED.group(1), f"installed {version}, pinned {PINNED and PINNED.group(1)}"
    hosted = HostedSandbox.reserve()
    world = World.load(str(scenario), tmp_path / "served")
    hosted.start(world, loaded_as=str(scenario))
    monkeypatch.setenv(ENV, hosted.url)  # vyxops sessions in this test use the served sandbox too
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    profile = tmp_path / "sandbox-profile.yaml"
    profile.write_text(
        f"name: vyxops-sandbox\napi_url: {hosted.url}\ndashboard_url: {hosted.url}/dashboard\n"
        "project_host: supabase.co\n"
    )
    (work := tmp_path / "work").mkdir()
    (home := tmp_path / "home").mkdir()
    env = {
        "PATH": f"{CLI_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),  # the CLI's telemetry and linked-project caches land here
        "SUPABASE_ACCESS_TOKEN": world.credentials["supabase_access_token"],  # the child's environment only
        "SUPABASE_PROFILE": str(profile),  # for printed commands, which carry no --profile
        "SUPABASE_TELEMETRY_DISABLED": "1",
        "DO_NOT_TRACK": "1",
        "NO_COLOR": "1",
    }
    served = Served(hosted, world, profile, work, env, [])
    try:
        yield served
    finally:
        hosted.stop()
        if os.environ.get("VYXOPS_SUPABASE_CLI_TRANSCRIPT"):  # for the closing note: tokens redacted
            token = world.credentials["supabase_access_token"]
            text = "\n".join(served.transcript).replace(token, "sbp_<redacted>")
            for key in ("supabase_anon_key", "supabase_service_role_key"):
                text = text.replace(world.credentials[key], f"<{key}>")
            with open(os.environ["VYXOPS_SUPABASE_CLI_TRANSCRIPT"], "a") as fh:
                fh.write(f"## {Path(str(scenario)).stem}\n{text}\n\n")


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    with serve("stub-image", tmp_path, monkeypatch) as s:
        yield s


def test_secrets_list_shows_each_secret_by_its_digest(served: Served) -> None:
    """`supabase secrets list` lists the project's secrets by name with their SHA-256 digests, never the values."""
    done = served.supabase("secrets", "list", "--output", "json")
    listed = {s["name"]: s["value"] for s in json.loads(done.stdout)}
    assert listed == {name: sha256_hex(value) for name, value in served.secrets().items()}
    assert not any(value in done.stdout for value in served.secrets().values())


def test_secrets_set_then_unset_change_the_platform(served: Served) -> None:
    """`supabase secrets set NAME=VALUE` writes the secret; `supabase secrets unset NAME` deletes that one only."""
    before = served.secrets()
    served.supabase("secrets", "set", "VYXOPS_CLI_PROBE=hello world")
    assert served.secrets() == {**before, "VYXOPS_CLI_PROBE": "hello world"}
    listed = json.loads(served.supabase("secrets", "list", "--output", "json").stdout)
    assert {"name": "VYXOPS_CLI_PROBE", "value": sha256_hex("hello world")}.items() <= next(
        s for s in listed if s["name"] == "VYXOPS_CLI_PROBE"
    ).items()
    done = served.supabase("secrets", "unset", "VYXOPS_CLI_PROBE")
    assert "Finished supabase secrets unset." in done.stdout
    assert served.secrets() == before


def test_functions_list_and_download(served: Served) -> None:
    """`functions list` names the deployed function; `functions download` writes its source where the CLI puts it."""
    listed = json.loads(served.supabase("functions", "list", "--output", "json").stdout)
    assert [(f["slug"], f["status"]) for f in listed] == [("provision-machine", "ACTIVE")]
    done = served.supabase("functions", "download", "provision-machine")
    source = served.work / "supabase" / "functions" / "provision-machine" / "index.ts"
    assert "Downloaded Function provision-machine" in done.stderr, done.stderr
    text = source.read_text()
    assert text.startswith(STANDIN_MARK) and 'Deno.env.get("DOCKER_IMAGE")' in text


def test_projects_api_keys_lists_the_keys_the_sandbox_accepts(served: Served) -> None:
    """`projects api-keys` shows the legacy anon and service_role JWTs, the ones the sandbox's APIs accept."""
    done = served.supabase("projects", "api-keys", "--output", "env")
    creds = served.world.credentials
    assert f'SUPABASE_ANON_KEY="{creds["supabase_anon_key"]}"' in done.stdout, done.stdout
    assert f'SUPABASE_SERVICE_ROLE_KEY="{creds["supabase_service_role_key"]}"' in done.stdout


def test_projects_api_keys_with_new_keys_masks_the_secret_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a project with sb_publishable/sb_secret keys, the publishable key is shown and the secret key masked."""
    with serve("stub-image-sb-secret-key", tmp_path, monkeypatch) as s:
        keys = json.loads(s.supabase("projects", "api-keys", "--output", "json").stdout)
        creds = s.world.credentials
        by_type = {k["type"]: k for k in keys}
        assert by_type["publishable"]["api_key"] == creds["supabase_anon_key"]
        secret = by_type["secret"]["api_key"]
        assert secret.startswith("sb_secret_") and creds["supabase_service_role_key"] not in secret
        assert secret.endswith("·" * 26)


def _supabase_commands(plan_json: Path) -> list[tuple[str, str]]:
    """(action code, command) for every `supabase …` command the plan prints as a native equivalent."""
    doc = json.loads(plan_json.read_text())
    return [(a["code"], c) for a in doc["actions"] for c in a["native"] if c.startswith("supabase ")]


@pytest.mark.parametrize(
    ("scenario", "strategy", "codes"),
    [
        ("stub-image", "pin", {"PIN_SECRET_TO_RELEASE"}),
        ("stub-image", "pin-digest", {"PIN_SECRET_TO_RELEASE"}),
        ("stub-image", "latest", {"UNSET_SECRET"}),
        (AFTER_GOOD, "pin", {"PIN_SECRET_TO_LAST_GOOD_RELEASE"}),
    ],
    ids=["pin", "pin-digest", "latest", "last-good"],
)
def test_every_supabase_command_a_plan_prints_runs_as_printed_and_the_next_investigation_sees_it(
    scenario: str | Path, strategy: str, codes: set[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan's `supabase secrets …` commands, run by the real CLI exactly as printed, make the secret what the plan
    said, and a re-plan no longer asks for them."""
    with serve(scenario, tmp_path, monkeypatch) as s:
        with open_session("sandbox", scenario=scenario) as session:
            assert session.opened_by == "sandbox-served"
            app = next(iter(s.world.state["fly"]["apps"]))
            plan = plan_fixes(investigate(session, app), strategy=strategy, project_ref=session.project_ref)
            plan.write(tmp_path / "plan")
            commands = _supabase_commands(tmp_path / "plan" / "plan.json")
            assert {code for code, _ in commands} == codes
            others = [a.code for a in plan.actions if a.code == "TAG_LATEST"]
            if others:  # crane is not the CLI under test: vyxops applies the image tag the unset relies on
                apply_plan(session, plan_fixes(investigate(session, app), fixes=others, strategy=strategy),
                           dry_run=False, confirm=app, app=app)  # fmt: skip
        desired = {a.code: a.desired for a in plan.actions}
        for code, command in commands:
            done = s.shell(command)
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            name = desired[code]["name"]
            if code == "UNSET_SECRET":
                assert name not in s.secrets()
            else:
                assert s.secrets()[name] == desired[code]["ref"]
        with open_session("sandbox", scenario=scenario) as session:
            after = investigate(session, app)
            replan = plan_fixes(after, strategy=strategy, project_ref=session.project_ref)
        for code in codes:
            name = desired[code]["name"]
            seen = after.evidence.secret(name)
            if code == "UNSET_SECRET":
                assert seen is None
            else:
                assert seen is not None and seen["digest"] == secret_digest(desired[code]["ref"])
        assert not codes & {a.code for a in replan.actions}, replan.frame().to_string()

"""What a person reads: native commands and dashboard links beside each fix, runnable commands, escaped readable
tables."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd
import pytest
from test_fixes import APP, RELEASE_V2, leaks

from vyxops import nbtools
from vyxops.act.fixes import FIX_CODES, Action, Fix, Outcome, Plan, Result, apply_plan, plan_fixes, registry
from vyxops.act.fixes.commands import remediate_command
from vyxops.analysis.investigate import investigate
from vyxops.core.contract import SEED
from vyxops.core.errors import InputError
from vyxops.nbtools.remediation import audit_html, plan_html, result_html, table_html, verification_html
from vyxops.shell.cli import build_parser, main
from vyxops.testing.runs import sandbox_session as seed

PAYLOAD = '<script>alert("vyx")</script>'


@pytest.fixture(autouse=True)
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("VYXOPS_AUDIT_LOG", str(path))
    return path


@pytest.mark.parametrize("strategy", ["pin", "latest"])
def test_every_planned_fix_shows_a_native_command_and_a_dashboard_link_without_a_token(
    tmp_path: Path, strategy: str
) -> None:
    """Each action carries what a person could type instead and where to
    look, with the project ref and no credential."""
    with seed(tmp_path) as s:
        plan = plan_fixes(investigate(s, APP), strategy=strategy, project_ref=s.project_ref)
        text = json.dumps(plan.document()).encode()
        assert not leaks(text, s)
    by = {a.code: a for a in plan.actions}
    assert all(a.native and a.dashboard for a in plan.actions)
    ref = s.project_ref
    if strategy == "pin":
        pin = by["PIN_SECRET_TO_RELEASE"]
        assert pin.native == [f"supabase secrets set DOCKER_IMAGE={RELEASE_V2} --project-ref {ref}"]
        assert pin.dashboard == [f"https://supabase.com/dashboard/project/{ref}/functions/secrets"]
    else:
        assert by["TAG_LATEST"].native == [f"fly auth docker && crane tag {RELEASE_V2} latest"]
        assert by["UNSET_SECRET"].native == [f"supabase secrets unset DOCKER_IMAGE --project-ref {ref}"]
    row = by["RECONCILE_STUCK_ROWS"]
    # SPEC's table has no error column: the fix writes the word and the time, guarded by the row's key, status
    # and last update as read.
    assert row.native[0].startswith("update public.machines set status = 'failed', updated_at = now() where id = ")
    assert f"where id = '{row.read['row_id']}' and status = 'starting'" in row.native[0]
    verify = by["VERIFY_PROVISIONING"]
    # the variables, never their values: the key in apikey; the bearer VYXOPS_FUNCTION_JWT when set (verify_jwt)
    assert '"apikey: $SUPABASE_SERVICE_ROLE_KEY"' in verify.native[0]
    assert '"Authorization: Bearer ${VYXOPS_FUNCTION_JWT:-$SUPABASE_SERVICE_ROLE_KEY}"' in verify.native[0]
    assert verify.native[-1] == f'fly machines destroy --force "$MID" -a {APP}'
    assert f"https://fly.io/apps/{APP}/machines" in verify.dashboard
    assert {"native", "dashboard"} <= set(plan.document()["actions"][0])


def test_without_a_project_ref_the_commands_name_the_variable() -> None:
    """A plan made without the project ref prints "$SUPABASE_PROJECT_REF", which runs where the variable is set."""
    pin = registry.get("PIN_SECRET_TO_RELEASE")
    desired = {"name": "DOCKER_IMAGE", "ref": RELEASE_V2}
    action = Action("PIN_SECRET_TO_RELEASE", "secret:DOCKER_IMAGE", "", "", "", "", "", desired=desired)
    place = registry.Place(APP, None, SEED)
    assert pin.native(action, place) == [
        f'supabase secrets set DOCKER_IMAGE={RELEASE_V2} --project-ref "$SUPABASE_PROJECT_REF"'
    ]


def test_the_printed_remediate_command_is_complete_and_parses_as_printed() -> None:
    """Non-default target, scenario, fixes, strategy and threshold are all in it, quoted, with --out: the CLI accepts
    it."""
    command = remediate_command(
        APP,
        out_dir="out/my run",
        target="sandbox",
        scenario="tests/scenarios/x y.yaml",
        fixes=["PIN_SECRET_TO_RELEASE", "VERIFY_PROVISIONING"],
        strategy="pin-digest",
        stuck_after_minutes=5,
    )
    words = shlex.split(command)
    assert words[:2] == ["vyxops", "remediate"]
    args = build_parser().parse_args(words[1:])
    assert (args.target, args.scenario, args.app, args.strategy) == (
        "sandbox",
        "tests/scenarios/x y.yaml",
        APP,
        "pin-digest",
    )
    assert args.fixes == ["PIN_SECRET_TO_RELEASE", "VERIFY_PROVISIONING"] and args.stuck_after_minutes == 5
    assert args.apply and args.confirm == APP and str(args.out) == "out/my run"
    assert remediate_command(APP, out_dir="o") == f"vyxops remediate --app {APP} --apply --confirm {APP} --out o"
    # A bundle takes no --scenario (check_common refuses it): the printed command must not carry one.
    bundle = shlex.split(remediate_command(APP, out_dir="o", target="bundle:/tmp/b 1", scenario="x.yaml"))
    assert bundle[2:4] == ["--target", "bundle:/tmp/b 1"] and "--scenario" not in bundle


@pytest.mark.parametrize(
    ("label", "flags"),
    [
        ("sandbox:stub-image", ["--scenario", "stub-image"]),
        ("sandbox", []),
        ("live", ["--target", "live"]),
        ("bundle:/tmp/b 1", ["--target", "bundle:/tmp/b 1"]),
    ],
)
def test_a_reports_target_label_becomes_the_flags_that_reopen_it(label: str, flags: list[str]) -> None:
    """One home turns a target into CLI flags: the report's label through config.target_of_label and
    present.target_flags, which the postmortem, the summary, the notebook and the remediate command all use."""
    from vyxops.core.config import parse_target, target_of_label
    from vyxops.core.present import target_flags, vyxops_command

    target, scenario = target_of_label(label)
    assert target_flags(target, scenario) == flags
    assert parse_target(target).kind == label.partition(":")[0]
    words = shlex.split(vyxops_command("investigate", APP, target, scenario, "o"))
    assert words == ["vyxops", "investigate", "--app", APP, *flags, "--out", "o"]


def test_the_change_column_reads_as_a_diff(tmp_path: Path) -> None:
    """Before/after become "status: starting → failed" and short digests, not raw JSON running off the page."""
    with seed(tmp_path) as s:
        result = apply_plan(s, plan_fixes(investigate(s, APP)), dry_run=False, confirm=APP, app=APP)
    change = dict(zip(result.frame()["action"], result.frame()["change"]))
    assert "status: starting → failed" in change["RECONCILE_STUCK_ROWS"]
    assert change["PIN_SECRET_TO_RELEASE"].startswith("digest: a4376b5d5238… → 93e99dd4c54b…")
    assert "{" not in change["PIN_SECRET_TO_RELEASE"]


def test_tables_are_left_aligned_with_no_index_and_blank_empty_cells() -> None:
    """A table with None and NaN renders blank cells, a left-aligned style, and only the frame's own columns."""
    html = table_html(pd.DataFrame({"action": ["A", None], "n": [1.0, float("nan")]}))
    assert "text-align:left" in html and "None" not in html and "NaN" not in html and "nan" not in html
    assert html.count("<th>") == 2  # action and n: no index column


def test_every_view_escapes_what_platforms_and_arguments_put_in_strings() -> None:
    """Plan, result, verification and audit views show a <script> from data as text, never as markup."""
    hostile = Action("PIN_SECRET_TO_RELEASE", f"secret:{PAYLOAD}", PAYLOAD, PAYLOAD, PAYLOAD, PAYLOAD, PAYLOAD)
    hostile.native, hostile.dashboard = [PAYLOAD], [PAYLOAD]
    plan = Plan(PAYLOAD, PAYLOAD, "pin", [hostile], notes=[PAYLOAD])
    outcome = Outcome("VERIFY_PROVISIONING", PAYLOAD, "failed", PAYLOAD, {"region": PAYLOAD}, {"region": "sjc"})
    result = Result(PAYLOAD, PAYLOAD, False, [outcome], verification={"region": PAYLOAD}, notes=[f"lock: {PAYLOAD}"])
    result.audit_lines = [{"time": "t", "kind": "intent", "action": PAYLOAD, "step": PAYLOAD, "entity": PAYLOAD}]
    dry = Result(PAYLOAD, PAYLOAD, True, [outcome])
    for html in (
        plan_html(plan),
        result_html(result),
        result_html(dry, apply_command=PAYLOAD),
        verification_html(result),
        audit_html(result),
    ):
        assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_fix_is_one_module_and_one_registration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Registering a Fix is all it takes for planning, applying and --fix to know it."""
    monkeypatch.setattr(registry, "_FIXES", dict(registry._FIXES))

    def plan(ctx: object) -> list[Action]:
        return [Action("NOTIFY_ONCALL", "oncall", "", "", "", "low", "test")]

    def apply(ctx: object, a: Action) -> Outcome:
        return Outcome(a.code, a.target, "skipped", "already done: nobody to page")

    fix = Fix("NOTIFY_ONCALL", 95, "page the on-call", plan, apply, lambda a, p: ["page"], lambda a, p: ["https://x"])
    registry.register(fix)
    assert registry.codes()[-1] == "NOTIFY_ONCALL"
    with seed(tmp_path) as s:
        p = plan_fixes(investigate(s, APP), fixes=["NOTIFY_ONCALL"])
        r = apply_plan(s, p, dry_run=False, confirm=APP, app=APP)
    assert [a.code for a in p.actions] == ["NOTIFY_ONCALL"] and p.actions[0].native == ["page"]
    assert r.actions[0].reason == "already done: nobody to page"


def test_the_cli_takes_its_fix_codes_from_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown --fix exits 2 listing the registry's codes, the new PIN_SECRET_TO_LAST_GOOD_RELEASE among them."""
    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(tmp_path / "sandbox"))
    assert main(["remediate", "--app", APP, "--fix", "REBOOT", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown fix 'REBOOT'" in err and all(code in err for code in FIX_CODES)
    assert FIX_CODES == registry.codes() and "PIN_SECRET_TO_LAST_GOOD_RELEASE" in FIX_CODES
    assert len(set(FIX_CODES)) == len(FIX_CODES) and all(f.description for f in registry.fixes())


def test_an_unknown_fix_is_one_refusal_from_the_cli_the_notebook_and_the_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--fix REBOOT`, the remediate notebook's `fixes = ["REBOOT"]` (checked by nbtools.setup before any work) and
    plan_fixes(fixes=["REBOOT"]) are one InputError, word for word (vyxops.core.checks.check_fixes)."""
    monkeypatch.setenv("VYXOPS_SANDBOX_DIR", str(tmp_path / "sandbox"))
    assert main(["remediate", "--app", APP, "--fix", "REBOOT", "--out", str(tmp_path / "o")]) == 2
    cli = capsys.readouterr().err.splitlines()
    with pytest.raises(InputError) as notebook:
        nbtools.check_parameters({"target": "sandbox", "app": APP, "fixes": ["PIN_SECRET_TO_RELEASE", "REBOOT"]})
    with seed(tmp_path) as s, pytest.raises(InputError) as library:
        plan_fixes(investigate(s, APP), fixes=["REBOOT"])
    assert notebook.value.name == library.value.name == "--fix"
    assert str(notebook.value) == str(library.value) and "unknown fix 'REBOOT'" in str(notebook.value)
    assert cli == [f"vyxops: {notebook.value}"]
    nbtools.check_parameters({"target": "sandbox", "app": APP, "fixes": list(FIX_CODES)})  # every known code passes


def test_no_module_parses_target_labels_itself() -> None:
    """Adding a target is config.parse_target/target_of_label and present.target_flags, not every module that once
    split `sandbox:`/`bundle:` or tested `in ("sandbox", "live")` itself."""
    import re
    from pathlib import Path

    import vyxops

    own = re.compile(r'startswith\("bundle:"\)|in \("sandbox", "live"\)|== "bundle:')
    root = Path(vyxops.__file__).parent
    homes = ("config.py", "present.py")
    found = [p.name for p in root.rglob("*.py") if p.name not in homes and own.search(p.read_text())]
    assert found == []

"""Scenario files: the sandbox's input, read and validated (SPEC.md "Scenario files").

A bad file gets a :class:`~vyxops.core.errors.ScenarioError` naming the file, the key,
the line and what is allowed, before anything is replayed. Values are checked by
type and range (:mod:`vyxops_sandbox.scenario_checks`); every key is listed here.

Keys beyond SPEC.md's first round (SPEC.md "The wider world"; the ``platform:``
block is documented in :mod:`vyxops_sandbox.platform`):

- images: ``session_s`` (serve: the session ends by itself, the app marks its row
  ``stopped`` and exits 0), ``reports_running`` (exit/crash: the app reported
  ``running`` before it died), ``oom_killed`` (crash: exit code 137, killed for memory);
  ``index: true`` (a multi-platform image: its tag names an OCI index of linux/amd64 and linux/arm64
  manifests) and ``attestations: true`` (pushed with BuildKit's provenance attestations: an index too);
  a machine records the linux/amd64 child's digest (:mod:`vyxops_sandbox.image_index`);
- ``deploy``: ``release_command`` (``true`` or ``{exit_code, after_s}``: a
  release-command machine runs first; a non-zero exit fails the release) and
  ``image_ref: false`` (the release records no image: GraphQL ``imageRef`` null) and
  ``interrupted: true`` (the deploy was cancelled while its machines moved: the release's
  status is ``interrupted``, and it is the platform's current release all the same;
  see :meth:`vyxops_sandbox.world.World.deploy`);
- ``create_machine``: ``metadata`` (string map, e.g. ``{fly_process_group: fly_app_console}``),
  ``restart: {policy: no|on-failure|always, max_retries: N}`` and ``session_s``;
- steps ``stop_machine {app, machine_id}`` and ``destroy_machine {app, machine_id}``:
  someone asked (``requested_stop``), and the app marks its row ``stopped`` first.

Keys of the third round (SPEC.md "Any team's pipeline"): the ``pipeline:`` block (another
team's function, secrets, table, columns, status words and log wording; documented and
validated in :mod:`vyxops_sandbox.pipeline`; ``pipeline.table.name`` replaces
``supabase.machines_table``, and the two may not disagree), and the steps that make Fly
refuse creates (:mod:`vyxops_sandbox.refusals`): ``revoke_fly_token {status: 401|403}``,
``fly_rate_limit {until?}`` and ``fly_capacity {region, until?}``, where ``until`` is a time
after the step (it may lie after ``now``). An ``invoke`` step names the pipeline's function.

Machine ids (``invoke.machine_id``, ``create_machine.machine_id``) are Fly's shape
(14 lower-case hex digits) and unique within a scenario: a second machine with an
id already used would overwrite the first one's history.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vyxops.core.errors import InputError, ScenarioError
from vyxops.core.safeyaml import YamlRefused, check_events
from vyxops.core.shapes import PROJECT_REF
from vyxops_sandbox.pipeline import Pipeline, parse_pipeline
from vyxops_sandbox.platform import (
    API_KEYS,
    EXIT_EVENTS,
    EXITED_AT,
    FLY_TOKENS,
    LOG_TIMESTAMPS,
    PLANS,
    FlyPlatform,
    Platform,
    SupabasePlatform,
)
from vyxops_sandbox.refusals import TOKEN_STATUSES
from vyxops_sandbox.scenario_checks import IDENT, IMAGE_REF, SECRET_NAME, SLUG, Checker, Keys, find_duplicate_key

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "vyxops" / "scenarios"  # SPEC.md: shipped with the product

BEHAVIOURS = ("serve", "exit", "crash", "pull_fail", "no_callback")
RESTART_POLICIES = ("no", "on-failure", "always")
_MACHINE_ID = re.compile(r"^[0-9a-f]{14}$")  # Fly machine ids: 14 lower-case hex digits
_REGION = re.compile(r"^[a-z]{3}$")
_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")

TOP_KEYS = ("name", "title", "now", "fly", "supabase", "images", "steps", "description", "platform", "pipeline")
IMAGE_KEYS = (
    "behaviour", "exit_code", "after_s", "pushed_at", "session_s", "reports_running", "oom_killed",
    "index", "attestations",
)  # fmt: skip
OOM_EXIT_CODE = 137  # 128 + SIGKILL: what the kernel's OOM killer leaves as the exit code

# step kind -> (required keys, optional keys)
STEP_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "deploy": (("app", "image"), ("tag_latest", "user", "release_command", "image_ref", "interrupted")),
    "set_secret": (("name", "value"), ()),
    "unset_secret": (("name",), ()),
    "invoke": (("function", "body"), ("machine_id",)),
    "create_machine": (
        ("app", "image"),
        ("region", "auto_destroy", "machine_id", "name", "metadata", "restart", "session_s"),
    ),
    "push_image": (("ref",), IMAGE_KEYS),
    "delete_tag": (("ref",), ()),
    "db_update": (("table", "match", "set"), ()),
    "stop_machine": (("app", "machine_id"), ()),
    "destroy_machine": (("app", "machine_id"), ()),
    "revoke_fly_token": (("status",), ()),
    "fly_rate_limit": ((), ("until",)),
    "fly_capacity": (("region",), ("until",)),
}


@dataclass
class Scenario:
    """A validated scenario: its data, where it came from, and the digest of its bytes."""

    name: str
    title: str
    now_ms: int
    org: str
    apps: list[str]
    project_ref: str
    machines_table: str
    images: dict[str, dict[str, Any]]
    steps: list[dict[str, Any]]  # each {"at_ms", "kind", "args", "line"}
    path: str
    sha256: str
    description: str = ""
    platform: Platform = field(default_factory=Platform)
    pipeline: Pipeline = field(default_factory=Pipeline)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def scenario_names() -> list[str]:
    """Names of the scenarios shipped in ``vyxops/scenarios``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A shipped scenario's name, or a path to a YAML file; anything else is an InputError."""
    text = str(name_or_path)
    candidate = Path(text)
    if candidate.suffix in (".yaml", ".yml") or "/" in text:
        if not candidate.is_file():
            raise InputError("--scenario", f"no scenario file at {text}", allowed=["a YAML file", *scenario_names()])
        return candidate
    shipped = SCENARIO_DIR / f"{text}.yaml"
    if not shipped.is_file():
        raise InputError("--scenario", f"unknown scenario {text!r}", allowed=scenario_names())
    return shipped


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read and validate a scenario by shipped name or path."""
    path = resolve_scenario_path(name_or_path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ScenarioError(
            str(path), "(file)", f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}", line=line
        ) from None
    return parse_scenario(text, str(path))


def parse_scenario(text: str, path: str = "<scenario>") -> Scenario:
    """Validate scenario YAML ``text``; errors name ``path``, the key and its line."""
    root, data = _load_yaml(text, path)
    c = Checker(path, root)
    for key in data:
        if key not in TOP_KEYS:
            c.fail([key], "unknown top-level key", allowed=list(TOP_KEYS))
    name = c.text(c.require(data, [], "name"), ["name"], pattern=SLUG, what="a slug (lower-case letters, digits, '-')")
    now_ms = c.time(data, ["now"])
    fly = c.mapping(c.require(data, [], "fly"), ["fly"], ("org", "apps"))
    org = c.text(fly.get("org", "personal"), ["fly", "org"], pattern=SLUG, what="an org slug")
    apps = fly.get("apps")
    if not isinstance(apps, list) or not apps or not all(isinstance(a, str) and SLUG.match(a) for a in apps):
        c.fail(["fly", "apps"], "needs at least one app name (a slug)")
    if len(set(apps)) != len(apps):
        c.fail(["fly", "apps"], "names an app twice")
    supa = c.mapping(c.require(data, [], "supabase"), ["supabase"], ("project_ref", "machines_table"))
    project_ref = supa.get("project_ref")
    # A real project ref is 20 lower-case letters: the Management API's OpenAPI (ref: minLength 20, maxLength 20,
    # ^[a-z]+$), and the Supabase CLI refuses any other (supabase/cli internal/utils/misc.go, ProjectRefPattern).
    if not isinstance(project_ref, str) or not PROJECT_REF.fullmatch(project_ref):
        c.fail(
            ["supabase", "project_ref"],
            f"{project_ref!r} is not a project ref",
            allowed="20 lower-case letters",
        )
    table = None
    if "machines_table" in supa:
        table = c.text(supa["machines_table"], ["supabase", "machines_table"], pattern=IDENT, what="a table name")
    for key in ("title", "description"):
        if data.get(key) is not None and not isinstance(data[key], str):
            c.fail([key], "must be a string")
    steps = _steps(c, data.get("steps"), now_ms, list(apps))
    revokes = any(s["kind"] == "revoke_fly_token" for s in steps)
    pipeline = parse_pipeline(c, data.get("pipeline"), table, revokes)
    _check_pipeline_names(c, steps, pipeline)
    return Scenario(
        name=name,
        title=str(data.get("title") or name),
        now_ms=now_ms,
        org=org,
        apps=list(apps),
        project_ref=project_ref,
        machines_table=pipeline.table,
        images=_images(c, data.get("images")),
        steps=steps,
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        description=str(data.get("description") or ""),
        platform=_platform(c, data.get("platform"), list(apps)),
        pipeline=pipeline,
        raw=data,
    )


#: What a step names that the pipeline has one of: (step kind, its key, the pipeline's value, what else is).
#: An invoke of another slug would only meet the relay's 404; a db_update of another table would change
#: nothing, silently.
_PIPELINE_NAMES: tuple[tuple[str, str, Callable[[Pipeline], str], str], ...] = (
    ("invoke", "function", lambda p: p.function, "is not the pipeline's function"),
    ("db_update", "table", lambda p: p.table, "is not a table of the project"),
)


def _check_pipeline_names(c: Checker, steps: list[dict[str, Any]], pipeline: Pipeline) -> None:
    """Each step names the pipeline's function and table (:data:`_PIPELINE_NAMES`)."""
    for i, step in enumerate(steps):
        for kind, key, expected, what in _PIPELINE_NAMES:
            if step["kind"] == kind and step["args"][key] != expected(pipeline):
                c.fail(["steps", i, kind, key], f"{step['args'][key]!r} {what}", allowed=[expected(pipeline)])


def _load_yaml(text: str, path: str) -> tuple[yaml.Node, dict[str, Any]]:
    """The node tree (for lines) and the data of ``text``; one parse (libyaml when present).

    Anchors and aliases are refused first, in one linear pass over the events (:mod:`vyxops.core.safeyaml`): a few
    hundred bytes of nested aliases would otherwise stand for 9**9 nodes, and the checks below walk them all.
    """
    try:
        check_events(text)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ScenarioError(path, "(file)", f"not valid YAML: {getattr(exc, 'problem', exc)}", line=line) from None
    except YamlRefused as exc:
        raise ScenarioError(
            path, "(file)", str(exc), line=exc.line, allowed="plain YAML, each value written out"
        ) from None
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. a YAML timestamp out of datetime's range
        raise ScenarioError(path, "(file)", f"a value YAML cannot represent: {exc}") from None
    if not isinstance(data, dict) or root is None:
        raise ScenarioError(path, "(file)", "a scenario is a mapping with keys name, now, fly, supabase, images, steps")
    duplicate = find_duplicate_key(root)
    if duplicate is not None:
        raise ScenarioError(
            path,
            str(duplicate.value),
            "appears twice in one mapping (YAML would keep only the last)",
            line=duplicate.start_mark.line + 1,
        )
    return root, data


# --------------------------------------------------------------------------- images


def _images(c: Checker, raw: Any) -> dict[str, dict[str, Any]]:
    images: dict[str, dict[str, Any]] = {}
    for ref, spec in c.mapping(raw, ["images"]).items():
        where: Keys = ["images", ref]
        if not isinstance(ref, str) or not IMAGE_REF.match(ref):
            c.fail(
                where,
                f"{ref!r} is not an image reference",
                allowed="registry/repo:tag or registry/repo@sha256:<64 hex>",
            )
        images[ref] = image_spec(c, c.mapping(spec, where, IMAGE_KEYS), where)
    return images


def image_spec(c: Checker, spec: dict[str, Any], where: Keys) -> dict[str, Any]:
    """An image's behaviour with its defaults; keys that only some behaviours take are refused elsewhere."""
    behaviour = c.choice(spec.get("behaviour", "serve"), [*where, "behaviour"], BEHAVIOURS)
    out: dict[str, Any] = {"behaviour": behaviour}
    for key, behaviours in (
        ("session_s", ("serve",)),
        ("reports_running", ("exit", "crash")),
        ("oom_killed", ("crash",)),
    ):
        if key in spec and behaviour not in behaviours:
            c.fail([*where, key], f"only for behaviour {' or '.join(behaviours)}, not {behaviour}")
    oom = "oom_killed" in spec and c.boolean(spec["oom_killed"], [*where, "oom_killed"])
    default_code = OOM_EXIT_CODE if oom else 1 if behaviour == "crash" else 0
    out["exit_code"] = c.integer(spec.get("exit_code", default_code), [*where, "exit_code"], 0, 255)
    if behaviour == "crash" and out["exit_code"] == 0:
        c.fail([*where, "exit_code"], "a crash exits non-zero", allowed="1-255")
    if oom and out["exit_code"] != OOM_EXIT_CODE:
        c.fail([*where, "exit_code"], "a process killed for memory exits 137", allowed=[OOM_EXIT_CODE])
    out["after_s"] = c.seconds(spec.get("after_s", 2), [*where, "after_s"])
    if "pushed_at" in spec:
        out["pushed_at_ms"] = c.time(spec, [*where, "pushed_at"])
    if "session_s" in spec:
        out["session_s"] = c.seconds(spec["session_s"], [*where, "session_s"], positive=True)
    if "reports_running" in spec and c.boolean(spec["reports_running"], [*where, "reports_running"]):
        out["reports_running"] = True
    if oom:
        out["oom_killed"] = True
    for key in ("index", "attestations"):  # an OCI index of platform images (+ attestations): image_index.py
        if key in spec and c.boolean(spec[key], [*where, key]):
            out[key] = True
    return out


# --------------------------------------------------------------------------- steps


def _steps(c: Checker, raw: Any, now_ms: int, apps: list[str]) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        c.fail(["steps"], "must be a list of steps")
    steps: list[dict[str, Any]] = []
    machine_ids: dict[str, int] = {}  # id -> index of the step that made it
    last = None
    for i, step in enumerate(raw):
        where: Keys = ["steps", i]
        if not isinstance(step, dict):
            c.fail(where, "a step is a mapping: {at: TIME, <kind>: {...}}", allowed=sorted(STEP_KINDS))
        at_ms = c.time(step, [*where, "at"])
        kinds = [k for k in step if k != "at"]
        if len(kinds) != 1 or kinds[0] not in STEP_KINDS:
            c.fail(where, f"a step has exactly one kind, got {kinds or 'none'}", allowed=sorted(STEP_KINDS))
        kind = kinds[0]
        required, optional = STEP_KINDS[kind]
        args = c.mapping(step[kind], [*where, kind], required + optional)
        for key in required:
            if key not in args:
                c.fail([*where, kind], f"missing {key!r}", allowed=list(required) + list(optional))
        args = _STEP_ARGS[kind](c, args, [*where, kind], apps)
        _check_machine_id(c, kind, args, [*where, kind], machine_ids, i)
        if last is not None and at_ms < last:
            c.fail([*where, "at"], "steps must be sorted by `at`")
        if at_ms > now_ms:
            c.fail([*where, "at"], "a step cannot happen after the scenario's `now`")
        if args.get("until_ms") is not None and args["until_ms"] <= at_ms:
            c.fail([*where, kind, "until"], "a refusal ends after it starts", allowed="a time after the step's `at`")
        last = at_ms
        steps.append({"at_ms": at_ms, "kind": kind, "args": args, "line": c.line(where)})
    return steps


def _check_machine_id(c: Checker, kind: str, args: dict[str, Any], where: Keys, seen: dict[str, int], i: int) -> None:
    """A machine id is made once; a stop or destroy names one made earlier."""
    mid = args.get("machine_id")
    if mid is None:
        return
    if kind in ("invoke", "create_machine"):
        if mid in seen:
            c.fail(
                [*where, "machine_id"],
                f"machine {mid} was already made by steps[{seen[mid]}]",
                allowed="an id not used before",
            )
        seen[mid] = i
    elif mid not in seen:
        c.fail(
            [*where, "machine_id"],
            f"no earlier step made machine {mid}",
            allowed=sorted(seen) or "a machine id made by an earlier step",
        )


def _app(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> str:
    if args["app"] not in apps:
        c.fail([*where, "app"], f"{args['app']!r} is not one of the scenario's apps", allowed=apps)
    return str(args["app"])


def _ref(c: Checker, value: Any, keys: Keys) -> str:
    return c.text(value, keys, pattern=IMAGE_REF, what="an image reference (registry/repo:tag)")


def _machine_id(c: Checker, value: Any, keys: Keys) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        c.fail(keys, f"YAML read {value!r} as a number: quote the machine id", allowed="14 lower-case hex digits")
    return c.text(value, keys, pattern=_MACHINE_ID, what="a Fly machine id (14 lower-case hex digits)")


def _deploy(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"app": _app(c, args, where, apps), "image": _ref(c, args["image"], [*where, "image"])}
    out["tag_latest"] = c.boolean(args.get("tag_latest", False), [*where, "tag_latest"])
    if args.get("user") is not None:
        out["user"] = c.text(args["user"], [*where, "user"], what="a user's e-mail")
    if "image_ref" in args and not c.boolean(args["image_ref"], [*where, "image_ref"]):
        out["image_ref"] = False
    if c.boolean(args.get("interrupted", False), [*where, "interrupted"]):
        out["interrupted"] = True
    rc = args.get("release_command", False)
    if isinstance(rc, dict):
        spec = c.mapping(rc, [*where, "release_command"], ("exit_code", "after_s"))
        out["release_command"] = {
            "exit_code": c.integer(spec.get("exit_code", 0), [*where, "release_command", "exit_code"], 0, 255),
            "after_s": c.seconds(spec.get("after_s", 5), [*where, "release_command", "after_s"]),
        }
    elif not isinstance(rc, bool):
        c.fail(
            [*where, "release_command"],
            f"{rc!r} is neither a boolean nor a mapping",
            allowed=["true", "false", "{exit_code: 0, after_s: 5}"],
        )
    elif rc:
        out["release_command"] = {"exit_code": 0, "after_s": 5}
    return out


def _set_secret(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    value = args["value"]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        c.fail([*where, "value"], f"{value!r} is not a secret value", allowed="a string (quote it)")
    return {
        "name": c.text(args["name"], [*where, "name"], pattern=SECRET_NAME, what="a secret name"),
        "value": str(value),
    }


def _unset_secret(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    return {"name": c.text(args["name"], [*where, "name"], pattern=SECRET_NAME, what="a secret name")}


def _invoke(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "function": c.text(args["function"], [*where, "function"], pattern=SLUG, what="a function slug")
    }
    if not isinstance(args["body"], dict):
        c.fail([*where, "body"], "must be a mapping (the JSON body)")
    out["body"] = args["body"]
    if args.get("machine_id") is not None:
        out["machine_id"] = _machine_id(c, args["machine_id"], [*where, "machine_id"])
    return out


def _create_machine(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"app": _app(c, args, where, apps), "image": _ref(c, args["image"], [*where, "image"])}
    out["region"] = c.text(args.get("region", "sjc"), [*where, "region"], pattern=_REGION, what="a region code")
    out["auto_destroy"] = c.boolean(args.get("auto_destroy", False), [*where, "auto_destroy"])
    for key, check in (("machine_id", _machine_id), ("name", lambda c_, v, k: c_.text(v, k, what="a machine name"))):
        if args.get(key) is not None:
            out[key] = check(c, args[key], [*where, key])
    if "metadata" in args:
        out["metadata"] = _metadata(c, args["metadata"], [*where, "metadata"])
    if "restart" in args:
        out["restart"] = _restart(c, args["restart"], [*where, "restart"])
    if "session_s" in args:
        out["session_s"] = c.seconds(args["session_s"], [*where, "session_s"], positive=True)
    return out


def _metadata(c: Checker, raw: Any, where: Keys) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in c.mapping(raw, where).items():
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            c.fail([*where, key], f"{key!r} is not a metadata key", allowed="letters, digits, '_', '.', '-'")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            c.fail([*where, key], f"{value!r} is not a metadata value", allowed="a string")
        out[key] = str(value)
    return out


def _restart(c: Checker, raw: Any, where: Keys) -> dict[str, Any]:
    spec = c.mapping(raw, where, ("policy", "max_retries"))
    out: dict[str, Any] = {"policy": c.choice(c.require(spec, where, "policy"), [*where, "policy"], RESTART_POLICIES)}
    if "max_retries" in spec:
        if out["policy"] != "on-failure":
            c.fail([*where, "max_retries"], "only for policy on-failure")
        out["max_retries"] = c.integer(spec["max_retries"], [*where, "max_retries"], 0, 1000)
    return out


def _push_image(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    spec = image_spec(c, {k: v for k, v in args.items() if k != "ref"}, where)
    return {"ref": _ref(c, args["ref"], [*where, "ref"]), **spec}


def _delete_tag(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    return {"ref": _ref(c, args["ref"], [*where, "ref"])}


def _db_update(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    table = c.text(args["table"], [*where, "table"], pattern=IDENT, what="a table name")
    if not (isinstance(args["match"], dict) and args["match"]):
        c.fail([*where, "match"], "needs at least one column to match (an update without a filter is refused)")
    if not isinstance(args["set"], dict) or not args["set"]:
        c.fail([*where, "set"], "must be a mapping of columns to new values")
    return {"table": table, "match": args["match"], "set": args["set"]}


def _machine_step(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    return {"app": _app(c, args, where, apps), "machine_id": _machine_id(c, args["machine_id"], [*where, "machine_id"])}


def _revoke_fly_token(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    status = args["status"]
    if isinstance(status, bool) or status not in TOKEN_STATUSES:
        c.fail(
            [*where, "status"],
            f"{status!r} is not a status Fly refuses a token with",
            allowed=["401 (revoked or expired)", "403 (no access to the app)"],
        )
    return {"status": status}


def _until(c: Checker, args: dict[str, Any], where: Keys) -> dict[str, Any]:
    """``until`` as ``until_ms`` (absent: the refusal lasts for good)."""
    return {"until_ms": c.time(args, [*where, "until"])} if "until" in args else {}


def _fly_rate_limit(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    return _until(c, args, where)


def _fly_capacity(c: Checker, args: dict[str, Any], where: Keys, apps: list[str]) -> dict[str, Any]:
    region = c.text(args["region"], [*where, "region"], pattern=_REGION, what="a region code")
    return {"region": region, **_until(c, args, where)}


_STEP_ARGS: dict[str, Callable[[Checker, dict[str, Any], Keys, list[str]], dict[str, Any]]] = {
    "deploy": _deploy,
    "set_secret": _set_secret,
    "unset_secret": _unset_secret,
    "invoke": _invoke,
    "create_machine": _create_machine,
    "push_image": _push_image,
    "delete_tag": _delete_tag,
    "db_update": _db_update,
    "stop_machine": _machine_step,
    "destroy_machine": _machine_step,
    "revoke_fly_token": _revoke_fly_token,
    "fly_rate_limit": _fly_rate_limit,
    "fly_capacity": _fly_capacity,
}


# --------------------------------------------------------------------------- platform


def _platform(c: Checker, raw: Any, apps: list[str]) -> Platform:
    block = c.mapping(raw, ["platform"], ("supabase", "fly"))
    s = c.mapping(
        block.get("supabase"),
        ["platform", "supabase"],
        ("plan", "secrets_updated_at", "api_key", "verify_jwt", "empty_as_null", "token_permissions", "log_timestamps"),
    )
    f = c.mapping(
        block.get("fly"),
        ["platform", "fly"],
        ("token", "token_apps", "exit_events", "destroy_events", "destroyed_retention_h", "empty_as_null", "exited_at"),
    )
    ws, wf = ["platform", "supabase"], ["platform", "fly"]
    supabase = SupabasePlatform(
        plan=c.choice(s.get("plan", "pro"), [*ws, "plan"], PLANS),
        secrets_updated_at=c.boolean(s.get("secrets_updated_at", True), [*ws, "secrets_updated_at"]),
        api_key=c.choice(s.get("api_key", "jwt"), [*ws, "api_key"], API_KEYS),
        verify_jwt=c.boolean(s.get("verify_jwt", True), [*ws, "verify_jwt"]),
        empty_as_null=c.boolean(s.get("empty_as_null", False), [*ws, "empty_as_null"]),
        token_permissions=_permissions(c, s, [*ws, "token_permissions"]),
        log_timestamps=c.choice(s.get("log_timestamps", "text"), [*ws, "log_timestamps"], LOG_TIMESTAMPS),
    )
    token_apps = None
    if "token_apps" in f:
        token_apps = f["token_apps"]
        if not isinstance(token_apps, list) or not token_apps or any(a not in apps for a in token_apps):
            c.fail([*wf, "token_apps"], f"{token_apps!r} is not a list of the scenario's apps", allowed=apps)
        token_apps = tuple(token_apps)
    retention = f.get("destroyed_retention_h")
    fly = FlyPlatform(
        token=c.choice(f.get("token", "legacy"), [*wf, "token"], FLY_TOKENS),
        token_apps=token_apps,
        exit_events=c.choice(f.get("exit_events", "full"), [*wf, "exit_events"], EXIT_EVENTS),
        destroy_events=c.boolean(f.get("destroy_events", True), [*wf, "destroy_events"]),
        destroyed_retention_h=None
        if retention is None
        else c.seconds(retention, [*wf, "destroyed_retention_h"], positive=True),
        empty_as_null=c.boolean(f.get("empty_as_null", False), [*wf, "empty_as_null"]),
        exited_at=c.choice(f.get("exited_at", "reported"), [*wf, "exited_at"], EXITED_AT),
    )
    return Platform(supabase, fly)


def _permissions(c: Checker, block: dict[str, Any], keys: list[str]) -> tuple[str, ...] | None:
    """``token_permissions``: a list of Management API permission ids (a scoped access token), or None (all)."""
    if "token_permissions" not in block:
        return None
    from vyxops.core.facts import SUPABASE_PERMISSION_WORDS

    granted = block["token_permissions"]
    known = sorted(SUPABASE_PERMISSION_WORDS)
    if not isinstance(granted, list) or any(p not in known for p in granted):
        c.fail(keys, f"{granted!r} is not a list of permission ids", allowed=known)
    return tuple(granted)

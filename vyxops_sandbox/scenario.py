"""Scenario files: the sandbox's input, read and validated (SPEC.md "Scenario files").

A bad file gets a :class:`~vyxops.errors.ScenarioError` naming the file, the key,
the line and what is allowed, before anything is replayed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vyxops.errors import ScenarioError
from vyxops.timeutil import parse_rfc3339_ms

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "vyxops" / "scenarios"  # SPEC.md: shipped with the product

BEHAVIOURS = ("serve", "exit", "crash", "pull_fail", "no_callback")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_REF = re.compile(r"^[a-z0-9.\-]+(:[0-9]+)?/[a-z0-9._\-/]+(:[A-Za-z0-9_.\-]+|@sha256:[0-9a-f]{64})$")

# step kind -> (required keys, optional keys)
STEP_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "deploy": (("app", "image"), ("tag_latest", "user")),
    "set_secret": (("name", "value"), ()),
    "unset_secret": (("name",), ()),
    "invoke": (("function", "body"), ("machine_id",)),
    "create_machine": (("app", "image"), ("region", "auto_destroy", "machine_id", "name")),
    "push_image": (("ref",), ("behaviour", "exit_code", "after_s", "pushed_at")),
    "delete_tag": (("ref",), ()),
    "db_update": (("table", "match", "set"), ()),
}
TOP_KEYS = {"name", "title", "now", "fly", "supabase", "images", "steps", "description"}
IMAGE_KEYS = {"behaviour", "exit_code", "after_s", "pushed_at"}


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
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def scenario_names() -> list[str]:
    """Names of the scenarios shipped in ``vyxops/scenarios``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A shipped scenario's name, or a path to a YAML file; anything else is an InputError."""
    from vyxops.errors import InputError

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
    text = path.read_text(encoding="utf-8")
    return parse_scenario(text, str(path))


def parse_scenario(text: str, path: str = "<scenario>") -> Scenario:
    """Validate scenario YAML ``text``; errors name ``path``, the key and its line."""
    try:
        # One parse (libyaml when present: a fleet scenario has thousands of steps); the
        # node tree is kept for the line numbers of errors, the data built from it.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        line = exc.problem_mark.line + 1 if getattr(exc, "problem_mark", None) else None
        raise ScenarioError(path, "(file)", f"not valid YAML: {getattr(exc, 'problem', exc)}", line=line) from None
    if not isinstance(data, dict) or root is None:
        raise ScenarioError(path, "(file)", "a scenario is a mapping with keys name, now, fly, supabase, images, steps")
    v = _Validator(path, root)

    for key in data:
        if key not in TOP_KEYS:
            v.fail([key], "unknown top-level key", allowed=sorted(TOP_KEYS))
    name = v.require(data, [], "name", str)
    if not _SLUG.match(name):
        v.fail(["name"], f"{name!r} is not a slug", allowed="lower-case letters, digits and '-'")
    now_ms = v.time(data, ["now"])
    fly = v.require(data, [], "fly", dict)
    org = fly.get("org", "personal")
    apps = v.require(fly, ["fly"], "apps", list)
    if not apps or not all(isinstance(a, str) and _SLUG.match(a) for a in apps):
        v.fail(["fly", "apps"], "needs at least one app name (a slug)")
    supa = v.require(data, [], "supabase", dict)
    project_ref = v.require(supa, ["supabase"], "project_ref", str)
    if not re.fullmatch(r"[a-z0-9]{8,40}", project_ref):
        v.fail(
            ["supabase", "project_ref"],
            f"{project_ref!r} is not a project ref",
            allowed="8-40 lower-case letters/digits",
        )
    machines_table = supa.get("machines_table", "machines")

    images: dict[str, dict[str, Any]] = {}
    for ref, spec in (data.get("images") or {}).items():
        where = ["images", ref]
        if not isinstance(ref, str) or not _REF.match(ref):
            v.fail(
                where,
                f"{ref!r} is not an image reference",
                allowed="registry/repo:tag or registry/repo@sha256:<64 hex>",
            )
        spec = spec or {}
        if not isinstance(spec, dict):
            v.fail(where, "must be a mapping", allowed=sorted(IMAGE_KEYS))
        images[ref] = v.image_spec(spec, where)

    steps: list[dict[str, Any]] = []
    raw_steps = data.get("steps") or []
    if not isinstance(raw_steps, list):
        v.fail(["steps"], "must be a list of steps")
    last = None
    for i, step in enumerate(raw_steps):
        where = ["steps", i]
        if not isinstance(step, dict):
            v.fail(where, "a step is a mapping: {at: TIME, <kind>: {...}}", allowed=sorted(STEP_KINDS))
        at_ms = v.time(step, [*where, "at"])
        kinds = [k for k in step if k != "at"]
        if len(kinds) != 1 or kinds[0] not in STEP_KINDS:
            v.fail(where, f"a step has exactly one kind, got {kinds or 'none'}", allowed=sorted(STEP_KINDS))
        kind = kinds[0]
        args = step[kind] or {}
        if not isinstance(args, dict):
            v.fail([*where, kind], "arguments must be a mapping")
        required, optional = STEP_KINDS[kind]
        for key in required:
            if key not in args:
                v.fail([*where, kind], f"missing {key!r}", allowed=list(required) + list(optional))
        for key in args:
            if key not in required and key not in optional:
                v.fail([*where, kind, key], "unknown argument", allowed=list(required) + list(optional))
        if kind in ("deploy", "create_machine") and args["app"] not in apps:
            v.fail([*where, kind, "app"], f"{args['app']!r} is not one of the scenario's apps", allowed=apps)
        if kind == "push_image":
            args = {"ref": args["ref"], **v.image_spec({k: a for k, a in args.items() if k != "ref"}, [*where, kind])}
        for key in ("image", "ref"):
            if key in args and (not isinstance(args[key], str) or not _REF.match(args[key])):
                v.fail([*where, kind, key], f"{args[key]!r} is not an image reference", allowed="registry/repo:tag")
        if kind == "invoke" and not isinstance(args["body"], dict):
            v.fail([*where, kind, "body"], "must be a mapping (the JSON body)")
        if kind == "db_update" and not (isinstance(args["match"], dict) and args["match"]):
            v.fail(
                [*where, kind, "match"], "needs at least one column to match (an update without a filter is refused)"
            )
        if last is not None and at_ms < last:
            v.fail([*where, "at"], "steps must be sorted by `at`")
        if at_ms > now_ms:
            v.fail([*where, "at"], "a step cannot happen after the scenario's `now`")
        last = at_ms
        steps.append({"at_ms": at_ms, "kind": kind, "args": args, "line": v.line(where)})

    return Scenario(
        name=name,
        title=str(data.get("title") or name),
        now_ms=now_ms,
        org=str(org),
        apps=list(apps),
        project_ref=project_ref,
        machines_table=str(machines_table),
        images=images,
        steps=steps,
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        description=str(data.get("description") or ""),
        raw=data,
    )


class _Validator:
    """Finds the line of a key path in the composed YAML node tree, for error messages."""

    def __init__(self, path: str, root: yaml.Node) -> None:
        self.path = path
        self.root = root

    def line(self, keys: list[Any]) -> int | None:
        node = self.root
        found = node.start_mark.line + 1
        for key in keys:
            nxt = None
            if isinstance(node, yaml.MappingNode):
                for k, val in node.value:
                    if k.value == str(key):
                        nxt, found = val, k.start_mark.line + 1
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                nxt = node.value[key]
                found = nxt.start_mark.line + 1
            if nxt is None:
                break
            node = nxt
        return found

    def fail(self, keys: list[Any], message: str, *, allowed: Any = None) -> None:
        dotted = ".".join(f"[{k}]" if isinstance(k, int) else str(k) for k in keys).replace(".[", "[") or "(file)"
        raise ScenarioError(self.path, dotted, message, line=self.line(keys), allowed=allowed)

    def require(self, mapping: dict, where: list[Any], key: str, kind: type) -> Any:
        if key not in mapping or mapping[key] is None:
            self.fail([*where, key] if where else [key], "is required")
        if not isinstance(mapping[key], kind):
            self.fail([*where, key], f"must be a {kind.__name__}")
        return mapping[key]

    def time(self, mapping: dict, keys: list[Any]) -> int:
        key = keys[-1]
        if key not in mapping:
            self.fail(keys, "is required (an RFC 3339 time, e.g. 2025-10-02T17:25:00Z)")
        value = mapping[key]
        try:
            if hasattr(value, "isoformat"):
                value = value.isoformat()
            return parse_rfc3339_ms(str(value))
        except (ValueError, TypeError):
            self.fail(keys, f"{value!r} is not a time", allowed="RFC 3339, e.g. 2025-10-02T17:25:00Z")
        raise AssertionError  # unreachable

    def image_spec(self, spec: dict, where: list[Any]) -> dict[str, Any]:
        for key in spec:
            if key not in IMAGE_KEYS:
                self.fail([*where, key], "unknown image key", allowed=sorted(IMAGE_KEYS))
        behaviour = spec.get("behaviour", "serve")
        if behaviour not in BEHAVIOURS:
            self.fail([*where, "behaviour"], f"{behaviour!r} is not a behaviour", allowed=list(BEHAVIOURS))
        exit_code = spec.get("exit_code", 1 if behaviour == "crash" else 0)
        if not isinstance(exit_code, int):
            self.fail([*where, "exit_code"], "must be an integer")
        if behaviour == "crash" and exit_code == 0:
            self.fail([*where, "exit_code"], "a crash exits non-zero", allowed="1-255")
        after_s = spec.get("after_s", 2)
        if not isinstance(after_s, (int, float)) or after_s < 0:
            self.fail([*where, "after_s"], "must be a number of seconds >= 0")
        out: dict[str, Any] = {"behaviour": behaviour, "exit_code": exit_code, "after_s": after_s}
        if "pushed_at" in spec:
            out["pushed_at_ms"] = self.time(spec, [*where, "pushed_at"])
        return out

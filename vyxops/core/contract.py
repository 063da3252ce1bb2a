"""The pipeline contract: what vyxops needs to know about a team's provisioning (SPEC.md "Any team's pipeline").

A team's Edge Function provisions a Fly machine per user session, writes a row in a
table of its own, and the app reports back into that row. Every team names the
function, the secret holding the image, the table, its columns and its status words
its own way. This module is the one place that knows those names: its schema, the
seed team's defaults, loading a declared contract (``--contract FILE``,
``vyxops.toml`` or ``[tool.vyxops.pipeline]`` in ``pyproject.toml``) with validation
that names the key, and the questions every other module asks (which column holds
the machine id, which role a status word plays, what body a probe sends).
Discovery from the platforms lives in :mod:`vyxops.analysis.discover`; it returns one of these.

Two keys go beyond SPEC's example, both optional: ``columns.key`` (the table's
primary key, by which a fix guards its update; default ``id``) and ``columns.region``
(the region a session ran in, which a probe reuses; default ``region``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vyxops.core.checks import TABLE_NAME
from vyxops.core.errors import InputError
from vyxops.core.images import FLY_REGISTRY

__all__ = [
    "ROLES",
    "TERMINAL",
    "COLUMN_KEYS",
    "Columns",
    "Table",
    "StatusWords",
    "Invoke",
    "Contract",
    "SEED",
    "AmbiguousContract",
    "parse_contract",
    "load_contract_file",
    "find_declared",
    "declared_contract",
    "to_toml",
]

#: The roles a status word can play; a word mapped to none is terminal (SPEC.md).
ROLES = ("starting", "running", "stopped", "failed")
STARTING, RUNNING, STOPPED, FAILED = ROLES
TERMINAL = "terminal"
#: Status words whose name says their role: discovery's last resort for a word no row showed in a role.
ROLE_WORDS = {
    STARTING: ("starting", "provisioning", "pending", "creating", "booting", "queued", "launching", "requested"),
    RUNNING: ("running", "ready", "live", "active", "started", "up", "online", "healthy"),
    STOPPED: ("stopped", "closed", "ended", "done", "finished", "terminated", "destroyed", "completed", "exited"),
    FAILED: ("failed", "error", "errored", "crashed", "failure", "broken"),
}
#: The table's columns a contract names (``""``: the table has no such column).
COLUMN_KEYS = ("key", "machine_id", "app", "user", "image", "status", "created_at", "updated_at", "error", "region")
#: Columns every provisioning table must have: rows link to machines and are dated by them.
REQUIRED_COLUMNS = ("machine_id", "status", "created_at")
#: The placeholders an ``invoke`` body may hold.
PLACEHOLDERS = ("{canary_user}", "{region}")
#: What Supabase accepts (reference/supabase/management-api-openapi.json): a function slug, and a secret's name
#: (at most 256 characters, never ``SUPABASE_…``, which the platform reserves). Both reach URLs and commands.
FUNCTION_SLUG = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
RESERVED_SECRET_PREFIX = "SUPABASE_"
MAX_SECRET_NAME = 256
#: Where a declared contract lives, in the order they are looked for.
CONTRACT_FILE = "vyxops.toml"
PYPROJECT = "pyproject.toml"


@dataclass(frozen=True)
class Columns:
    """The provisioning table's column names by what they hold (``""``: no such column)."""

    key: str = "id"
    machine_id: str = "fly_machine_id"
    app: str = "fly_app"
    user: str = "user_id"
    image: str = "image"
    status: str = "status"
    created_at: str = "created_at"
    updated_at: str = "updated_at"
    error: str = ""
    region: str = "region"

    def named(self) -> dict[str, str]:
        """Every column the table has, by what it holds (absent ones left out)."""
        return {k: getattr(self, k) for k in COLUMN_KEYS if getattr(self, k)}


@dataclass(frozen=True)
class Table:
    """The table the provisioning function writes a row per machine into."""

    name: str = "machines"
    columns: Columns = field(default_factory=Columns)


@dataclass(frozen=True)
class StatusWords:
    """The status words the function and the app write, by role; the first of each is the one written."""

    starting: tuple[str, ...] = ("starting",)
    running: tuple[str, ...] = ("running",)
    stopped: tuple[str, ...] = ("stopped",)
    failed: tuple[str, ...] = ("failed",)

    def role(self, word: object) -> str | None:
        """The role ``word`` plays: one of :data:`ROLES`, :data:`TERMINAL` for a word mapped to none
        (SPEC.md: such a word is terminal), None when there is no word."""
        if not isinstance(word, str) or not word:
            return None
        for role in ROLES:
            if word in getattr(self, role):
                return role
        return TERMINAL

    def first(self, role: str) -> str | None:
        """The word written for ``role``, or None when the table accepts none."""
        words: tuple[str, ...] = getattr(self, role)
        return words[0] if words else None


@dataclass(frozen=True)
class Invoke:
    """How a probe calls the function: the JSON body (with placeholders) and the answer's machine-id key."""

    body: tuple[tuple[str, str], ...] = (("user_id", "{canary_user}"), ("region", "{region}"))
    machine_id: str = "machine_id"

    def build(self, canary_user: str, region: str) -> dict[str, str]:
        """The body for one probe, placeholders filled."""
        fill = {"{canary_user}": canary_user, "{region}": region}
        out = {}
        for key, value in self.body:
            for mark, text in fill.items():
                value = value.replace(mark, text)
            out[key] = value
        return out


@dataclass(frozen=True)
class Contract:
    """A team's provisioning pipeline, and where vyxops got it (``source``, ``evidence`` per key)."""

    function: str = "provision-machine"
    image_secret: str = "DOCKER_IMAGE"
    image_fallback: str = f"{FLY_REGISTRY}/{{app}}:latest"
    invoke: Invoke | None = field(default_factory=Invoke)
    table: Table = field(default_factory=Table)
    status: StatusWords = field(default_factory=StatusWords)
    source: str = "default"  # default | a file path | discovered
    evidence: tuple[tuple[str, str], ...] = ()  # (key, what showed it), for discovered contracts

    @property
    def columns(self) -> Columns:
        return self.table.columns

    def fallback_ref(self, app: str) -> str | None:
        """The image the function uses when the image secret is unset, for ``app``; None when it has none."""
        return self.image_fallback.replace("{app}", app) if self.image_fallback else None

    @property
    def discovered(self) -> bool:
        return self.source == "discovered"

    def header_line(self) -> str:
        """One line for a report's header: the names this run used, and where they came from."""
        secret = self.image_secret or "none"
        fallback = self.image_fallback or "none"
        where = (
            "discovered from the platforms"
            if self.discovered
            else "the seed team's defaults"
            if self.source == "default"
            else f"declared in {self.source}"
        )
        return (
            f"pipeline ({where}): function {self.function}, image secret {secret} (fallback {fallback}), "
            f"table {self.table.name} (machine id in {self.columns.machine_id}, status in {self.columns.status})"
        )

    def evidence_of(self, key: str) -> str | None:
        return next((why for k, why in self.evidence if k == key), None)


#: The seed team's pipeline: SPEC.md's provision-machine, DOCKER_IMAGE and nine-column machines table.
SEED = Contract()


class AmbiguousContract(InputError):
    """Discovery found two candidates that fit equally for one key: it stops rather than guess (exit 2)."""

    def __init__(self, key: str, candidates: list[tuple[str, str]], hint: str | None = None) -> None:
        self.key = key
        self.candidates = candidates
        listed = "; ".join(f"{value} ({why})" for value, why in candidates)
        said = (
            f"discovery found {len(candidates)} candidates that fit equally: {listed}"
            if len(candidates) > 1
            else f"discovery could not tell it from the platforms ({listed or 'nothing fits'})"
        )
        super().__init__(
            f"pipeline.{key}",
            said,
            allowed=[value for value, _ in candidates],
            hint=hint or f"declare `{key}` under [pipeline] in vyxops.toml (or pass --contract FILE)",
        )


# --------------------------------------------------------------------------- parsing


class _Where:
    """Names a key of the file being read, for errors (``vyxops.toml: pipeline.table.columns.user``)."""

    def __init__(self, path: str, prefix: str) -> None:
        self.path, self.prefix = path, prefix

    def fail(self, key: str, message: str, allowed: object = None) -> InputError:
        return InputError(f"{self.path}: {self.prefix}{key}", message, allowed=allowed, hint="fix the contract file")

    def text(self, data: Mapping[str, object], key: str, default: str, *, empty: bool = True) -> str:
        value = data.get(key, default)
        if value is None and empty:
            return ""
        if not isinstance(value, str) or (not empty and not value.strip()):
            raise self.fail(key, f"{value!r} is not a {'name' if not empty else 'string'}", allowed="a string")
        return value.strip()

    def mapping(self, data: Mapping[str, object], key: str) -> Mapping[str, object]:
        value = data.get(key, {})
        if not isinstance(value, Mapping):
            raise self.fail(key, f"{value!r} is not a table", allowed='a TOML table, e.g. {key = "value"}')
        return value


_TOP_KEYS = ("function", "image_secret", "image_fallback", "invoke", "table", "status")


def parse_contract(data: Mapping[str, object], source: str = "<contract>", prefix: str = "pipeline.") -> Contract:
    """A contract from the ``[pipeline]`` table's data; every key optional, the seed team's by default.

    Raises :class:`~vyxops.core.errors.InputError` naming the file and the key for an unknown
    key, a value of the wrong type, a table without a machine-id, status or created_at
    column, a status word given two roles, or an ``invoke`` body without ``{canary_user}``.
    """
    w = _Where(source, prefix)
    for key in data:
        if key not in _TOP_KEYS:
            raise w.fail(str(key), "is not a contract key", allowed=list(_TOP_KEYS))
    function = w.text(data, "function", SEED.function, empty=False)
    if not FUNCTION_SLUG.match(function):
        raise w.fail("function", f"{function!r} is not an Edge Function's slug", allowed="e.g. provision-machine")
    secret = w.text(data, "image_secret", SEED.image_secret)
    if secret.startswith(RESERVED_SECRET_PREFIX) or len(secret) > MAX_SECRET_NAME:
        raise w.fail("image_secret", f"{secret!r} is not a name Supabase lets a secret have",
                     allowed=f"at most {MAX_SECRET_NAME} characters, not {RESERVED_SECRET_PREFIX}…")  # fmt: skip
    fallback = w.text(data, "image_fallback", SEED.image_fallback)
    if fallback and not fallback.startswith(f"{FLY_REGISTRY}/"):
        raise w.fail("image_fallback", f"{fallback!r} is not a {FLY_REGISTRY} image reference",
                     allowed=f"e.g. {SEED.image_fallback}, or \"\" for none")  # fmt: skip
    return Contract(
        function=function,
        image_secret=secret,
        image_fallback=fallback,
        invoke=_invoke(w, data),
        table=_table(w, w.mapping(data, "table")),
        status=_status(w, w.mapping(data, "status")),
        source=source,
    )


def _invoke(w: _Where, data: Mapping[str, object]) -> Invoke | None:
    if "invoke" not in data:
        return SEED.invoke
    raw = w.mapping(data, "invoke")
    if not raw:
        return None  # declared empty: this team's function cannot be probed
    body = raw.get("body", {})
    if not isinstance(body, Mapping) or not body or not all(isinstance(v, str) for v in body.values()):
        raise w.fail("invoke.body", f"{body!r} is not a JSON body of strings", allowed='{user_id = "{canary_user}"}')
    if "{canary_user}" not in body.values():
        raise w.fail("invoke.body", "names no key for the canary's user", allowed='a value "{canary_user}"')
    answer = raw.get("machine_id", "machine_id")
    if not isinstance(answer, str) or not answer:
        raise w.fail("invoke.machine_id", f"{answer!r} is not a key of the function's answer", allowed="a string")
    return Invoke(tuple((str(k), str(v)) for k, v in body.items()), answer)


def _table(w: _Where, raw: Mapping[str, object]) -> Table:
    for key in raw:
        if key not in ("name", "columns"):
            raise w.fail(f"table.{key}", "is not a table key", allowed=["name", "columns"])
    name = w.text(raw, "name", SEED.table.name, empty=False)
    if not TABLE_NAME.fullmatch(name):  # it goes into the REST path: /rest/v1/<name>
        raise w.fail("table.name", f"{name[:80]!r} is not a table name", allowed="letters, digits, '_', '$', '-'")
    columns = w.mapping(raw, "columns")
    values: dict[str, str] = {}
    for key, value in columns.items():
        if key not in COLUMN_KEYS:
            raise w.fail(f"table.columns.{key}", "is not a column the contract names", allowed=list(COLUMN_KEYS))
        if value is not None and not isinstance(value, str):
            raise w.fail(f"table.columns.{key}", f"{value!r} is not a column name", allowed='a string, "" for none')
        values[str(key)] = (value or "").strip()
    out = replace(SEED.columns, **values)
    for key in REQUIRED_COLUMNS:
        if not getattr(out, key):
            raise w.fail(f"table.columns.{key}", "is required: every provisioning table has it", allowed="a column")
    return Table(name, out)


def _status(w: _Where, raw: Mapping[str, object]) -> StatusWords:
    words: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for key, value in raw.items():
        if key not in ROLES:
            raise w.fail(f"status.{key}", "is not a status role", allowed=list(ROLES))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
            raise w.fail(f"status.{key}", f"{value!r} is not a list of words", allowed='e.g. ["starting"]')
        for word in value:
            if word in seen and seen[word] != key:
                raise w.fail(f"status.{key}", f"{word!r} is also a {seen[word]} word", allowed="one role per word")
            seen[word] = str(key)
        words[str(key)] = tuple(value)
    return replace(SEED.status, **words)


# --------------------------------------------------------------------------- files


def load_contract_file(path: Path) -> Contract:
    """The contract declared in ``path``: ``[pipeline]`` of a vyxops.toml, or ``[tool.vyxops.pipeline]`` of a
    pyproject.toml. InputError naming ``--contract`` for a file that is missing, not TOML, or declares none."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("--contract", f"no contract file at {path}", allowed="a vyxops.toml") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError("--contract", f"{path} is not a TOML file ({exc})", hint="fix the contract file") from None
    block, prefix = _pipeline_block(data, path.name == PYPROJECT)
    if block is None:
        where = "[tool.vyxops.pipeline]" if path.name == PYPROJECT else "[pipeline]"
        raise InputError("--contract", f"{path} declares no {where}", hint="see `vyxops init --help`")
    return parse_contract(block, str(path), prefix)


def _pipeline_block(data: Mapping[str, Any], pyproject: bool) -> tuple[Mapping[str, object] | None, str]:
    if pyproject:
        block: object = data
        for key in ("tool", "vyxops", "pipeline"):  # a part of another type (tool = "x") declares none
            block = block.get(key) if isinstance(block, Mapping) else None
        return (block if isinstance(block, Mapping) else None), "tool.vyxops.pipeline."
    block = data.get("pipeline")
    return (block if isinstance(block, Mapping) else None), "pipeline."


def find_declared(start: Path | None = None) -> Path | None:
    """The project's declared contract: ``vyxops.toml`` at the project root, else a ``pyproject.toml`` there
    with ``[tool.vyxops.pipeline]``; None when the project declares none (a run then discovers it)."""
    from vyxops.core.config import project_dir

    root = project_dir(start)
    if root is None:
        return None
    if (root / CONTRACT_FILE).is_file():
        return root / CONTRACT_FILE
    pyproject = root / PYPROJECT
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None  # a project file vyxops cannot read declares nothing to it
        if _pipeline_block(data, True)[0] is not None:
            return pyproject
    return None


def declared_contract(path: str | Path | None = None, start: Path | None = None) -> Contract | None:
    """The contract a run uses without discovery: ``path`` (``--contract``) when given, else the project's
    declared one (:func:`find_declared`), else None."""
    if path:
        return load_contract_file(Path(path))
    found = find_declared(start)
    return load_contract_file(found) if found is not None else None


# --------------------------------------------------------------------------- writing


def to_toml(c: Contract) -> str:
    """The contract as a ``vyxops.toml``, each key preceded by the evidence for it (a comment)."""
    lines = [
        "# The pipeline contract vyxops uses for this project (vyxops init).",
        f"# Source: {c.source}. Every key is optional; edit any the evidence got wrong.",
        "[pipeline]",
    ]

    def put(key: str, text: str) -> None:
        why = c.evidence_of(key)
        if why:
            lines.extend(f"# {part}" for part in why.splitlines())
        lines.append(text)

    put("function", f"function = {_q(c.function)}")
    put("image_secret", f"image_secret = {_q(c.image_secret)}")
    put("image_fallback", f"image_fallback = {_q(c.image_fallback)}")
    if c.invoke is None:
        put("invoke", "invoke = {}  # none: VERIFY_PROVISIONING and --probe need it")
    else:
        body = ", ".join(f"{_key(k)} = {_q(v)}" for k, v in c.invoke.body)
        put("invoke", f"invoke = {{body = {{{body}}}, machine_id = {_q(c.invoke.machine_id)}}}")
    lines += ["", "[pipeline.table]"]
    put("table", f"name = {_q(c.table.name)}")
    for key in COLUMN_KEYS:  # one comment per column's evidence, then the columns on one line
        why = c.evidence_of(f"table.columns.{key}")
        lines.extend(f"# {key}: {part}" for part in (why or "").splitlines())
    cols = ", ".join(f"{k} = {_q(getattr(c.columns, k))}" for k in COLUMN_KEYS)
    lines.append(f"columns = {{{cols}}}")
    lines += ["", "[pipeline.status]"]
    said = c.evidence_of("status")
    lines.extend(f"# {part}" for part in (said or "").splitlines() if part)
    for role in ROLES:
        words = ", ".join(_q(w) for w in getattr(c.status, role))
        lines.append(f"{role} = [{words}]")
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    """A TOML basic string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in escaped) + '"'


def _key(text: str) -> str:
    return text if text.replace("_", "").replace("-", "").isalnum() and text.isascii() else _q(text)

"""A team's provisioning pipeline in the sandbox: the scenario's ``pipeline:`` block (SPEC.md "Any team's
pipeline", third round), validated, with the seed team's defaults.

The seed team is one of many: another team has its own function slug, image secret, table,
columns, status words and log wording. The block says how that team's function and schema
behave, so that the sandbox can tell its stories::

    pipeline:
      function: spawn-workspace
      image_secret: WORKSPACE_IMAGE
      image_fallback: ""                    # "" or null: none (an unset secret makes the function answer 500)
      table: {name: workspaces, columns: {machine_id: vm_id, app: null, user: owner, image: image_ref,
              status: state, error: null}, status_enum: [provisioning, ready, closed, error]}
      status: {starting: [provisioning], running: [ready], stopped: [closed], failed: [error]}
      invoke: {body: {owner: "{canary_user}", region: "{region}"}, machine_id: vm}
      logs: {created: "spawned vm {machine_id} from {image}", failed: "fly said {status}: {body}"}
      row_on_failure: error
      fly_token_secret: FLY_API_TOKEN

Every key is optional; without the block the sandbox is exactly the seed team's. The block
lives in the sandbox's state (``state["supabase"]["pipeline"]``) and no API ever serves it:
the product learns a team's contract from the platforms' answers, as it would live.

Choices beyond SPEC.md, each because it loses no evidence or keeps a scenario honest:
- ``logs.created`` absent keeps the seed's two lines (the "Provisioning machine …" line before
  the create, the "Created machine …" line after); given, the team logs that one line only;
  ``null`` logs nothing on success. ``{status}`` in ``created`` is Fly's HTTP status (200).
- An image secret and a fallback both unset is refused: such a function could never provision.
- A column mapped to ``id`` or ``region`` is refused: every table has those two of its own.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vyxops.core.images import FLY_REGISTRY
from vyxops_sandbox.functions import API_ERROR_LINE, CREATED_LINE, PROVISION, PROVISIONING_LINE
from vyxops_sandbox.scenario_checks import IDENT, IMAGE_REF, SECRET_NAME, SLUG, Checker, Keys

ROLES = ("machine_id", "app", "user", "image", "status", "created_at", "updated_at", "error")
REQUIRED_ROLES = ("machine_id", "status", "created_at")  # SPEC.md: created_at required, updated_at optional
STATUS_ROLES = ("starting", "running", "stopped", "failed")
OWN_COLUMNS = ("id", "region")  # every table has them besides the mapped ones
CANARY_USER = "{canary_user}"
REGION = "{region}"
DEFAULT_FLY_TOKEN_SECRET = "FLY_API_TOKEN"
SEED_IMAGE_SECRET = "DOCKER_IMAGE"
SEED_FALLBACK = FLY_REGISTRY + "/{app}:latest"
SEED_TABLE = "machines"
SEED_COLUMNS: dict[str, str | None] = {
    "machine_id": "fly_machine_id",
    "app": "fly_app",
    "user": "user_id",
    "image": "image",
    "status": "status",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "error": None,  # SPEC.md's table is nine columns: id, user_id, fly_machine_id, fly_app, region, image, status, …
}
SEED_STATUS: dict[str, list[str]] = {role: [role] for role in STATUS_ROLES}
SEED_INVOKE_BODY: dict[str, Any] = {"user_id": CANARY_USER, "region": REGION}
CREATED_FIELDS = ("machine_id", "image", "region", "user", "status")
FAILED_FIELDS = ("status", "body", "image", "region", "user")
MAX_LABEL = 63  # Postgres NAMEDATALEN - 1: the longest enum label

_TOP = ("function", "image_secret", "image_fallback", "table", "status", "invoke", "logs", "row_on_failure",
        "fly_token_secret")  # fmt: skip


@dataclass(frozen=True)
class Pipeline:
    """One team's provisioning pipeline as the sandbox models it (the seed team's by default)."""

    function: str = PROVISION
    image_secret: str | None = SEED_IMAGE_SECRET
    image_fallback: str | None = SEED_FALLBACK  # may hold `{app}`
    table: str = SEED_TABLE
    columns: dict[str, str | None] = field(default_factory=lambda: dict(SEED_COLUMNS))
    status_enum: list[str] | None = None
    status: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in SEED_STATUS.items()})
    invoke_body: dict[str, Any] = field(default_factory=lambda: dict(SEED_INVOKE_BODY))
    invoke_machine_id: str = "machine_id"
    log_before: str | None = PROVISIONING_LINE  # the seed's line before the create; None for a team's own wording
    log_created: str | None = CREATED_LINE
    log_failed: str | None = API_ERROR_LINE  # None: the function logs nothing on failure
    row_on_failure: str | None = None
    fly_token_secret: str = DEFAULT_FLY_TOKEN_SECRET
    token_modelled: bool = False  # the function's Fly token is a secret the world sets and may revoke

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Pipeline:
        return cls(**(data or {}))

    def column(self, role: str) -> str | None:
        """The team's column for ``role`` (machine_id, app, user, …), or None when the table has none."""
        return self.columns.get(role)

    def word(self, role: str) -> str:
        """The status word the function or the app writes for ``role`` (the first of its list)."""
        return self.status[role][0]

    @property
    def user_key(self) -> str:
        """The body key the function reads the user from (the one ``invoke.body`` fills with the canary user)."""
        return next(k for k, v in self.invoke_body.items() if v == CANARY_USER)

    @property
    def region_key(self) -> str | None:
        return next((k for k, v in self.invoke_body.items() if v == REGION), None)

    @property
    def enum_type(self) -> str | None:
        """The Postgres enum type of the status column (``<table>_<column>``), when the column is an enum."""
        return f"{self.table}_{self.columns['status']}" if self.status_enum is not None else None


def table_schema(p: Pipeline) -> dict[str, Any]:
    """The pipeline table's columns in order, their types, NOT NULL columns, defaults and primary key.

    Kept in the state beside the rows so that PostgREST types values and describes the
    table from what the table is, not from its column names.
    """
    order = ("user", "machine_id", "app", "region", "image", "status", "error", "created_at", "updated_at")
    columns = ["id"] + [c for c in (("region" if r == "region" else p.column(r)) for r in order) if c]
    types = {c: "text" for c in columns}
    types["id"] = "uuid"
    for role in ("created_at", "updated_at"):
        if p.column(role):
            types[p.columns[role]] = "timestamptz"  # type: ignore[index]
    status = p.columns["status"]
    if p.enum_type is not None:
        types[status] = p.enum_type  # type: ignore[index]
    timestamps = [c for c in (p.column("created_at"), p.column("updated_at")) if c]
    return {
        "columns": columns,
        "types": types,
        "not_null": ["id", status, *timestamps],
        "defaults": {"id": "gen_random_uuid()", **{c: "now()" for c in timestamps}},
        "primary_key": ["id"],
        "moddatetime": p.column("updated_at"),  # the column a moddatetime trigger keeps current (or None)
    }


def moddatetime_column(table: dict[str, Any]) -> str | None:
    """The column every update stamps (a moddatetime trigger), or None; a table stored without one says
    ``updated_at`` when it has such a column (the sandbox's first tables)."""
    if "moddatetime" in table:
        return table["moddatetime"]  # type: ignore[no-any-return]
    return "updated_at" if "updated_at" in table["columns"] else None


def update_row(table: dict[str, Any], row: dict[str, Any], changes: dict[str, Any], stamp: str) -> None:
    """Apply ``changes`` to one of ``table``'s rows as Postgres would with a moddatetime trigger: the
    table's updated_at column (if any) becomes ``stamp`` unless the update sets it itself. Every
    update of a row goes through here (a person's step, the app's report, PostgREST's PATCH and upsert)."""
    row.update(changes)
    touched = moddatetime_column(table)
    if touched and touched not in changes:
        row[touched] = stamp


def column_defaults(table: dict[str, Any]) -> dict[str, str]:
    """A table's column defaults (``gen_random_uuid()``, ``now()``); for a table stored without them, those
    of the sandbox's first tables: ``id`` a random uuid, ``created_at``/``updated_at`` the time of the insert."""
    if "defaults" in table:
        return dict(table["defaults"])
    first = (("id", "gen_random_uuid()"), ("created_at", "now()"), ("updated_at", "now()"))
    return {c: d for c, d in first if c in table["columns"]}


def enums(p: Pipeline) -> dict[str, list[str]]:
    """The database's enum types: the status column's, when the block gives a ``status_enum``."""
    return {p.enum_type: list(p.status_enum)} if p.enum_type is not None and p.status_enum is not None else {}


# --------------------------------------------------------------------------- the scenario block


def parse_pipeline(c: Checker, raw: Any, machines_table: str | None, revokes: bool) -> Pipeline:
    """The ``pipeline:`` block validated (each error names file, line, key and what is allowed).

    ``machines_table`` is ``supabase.machines_table`` when given: the block's table name
    replaces it, and the two may not disagree. ``revokes``: a step revokes the function's token.
    """
    where: Keys = ["pipeline"]
    block = c.mapping(raw, where, _TOP)
    p = Pipeline(token_modelled=raw is not None or revokes)
    if "function" in block:
        p = replace(p, function=c.text(block["function"], [*where, "function"], pattern=SLUG, what="a function slug"))
    p = _images(c, block, p)
    p = _table(c, block.get("table"), p, machines_table)
    p = replace(p, status=_status(c, block.get("status"), p))
    p = _invoke(c, block.get("invoke"), p)
    p = _logs(c, block.get("logs"), p)
    if block.get("row_on_failure") is not None:
        word = _word(c, block["row_on_failure"], [*where, "row_on_failure"], p.status_enum)
        p = replace(p, row_on_failure=word)
    if "fly_token_secret" in block:
        name = c.text(
            block["fly_token_secret"], [*where, "fly_token_secret"], pattern=SECRET_NAME, what="a secret name"
        )
        p = replace(p, fly_token_secret=name)
    return p


def _images(c: Checker, block: dict[str, Any], p: Pipeline) -> Pipeline:
    """``image_secret`` and ``image_fallback`` ("" or null: none); at least one must give the function an image."""
    secret, fallback = p.image_secret, p.image_fallback
    if "image_secret" in block:
        value = block["image_secret"]
        secret = (
            None
            if value in ("", None)
            else c.text(value, ["pipeline", "image_secret"], pattern=SECRET_NAME, what='a secret name (or "" for none)')
        )
    if "image_fallback" in block:
        value = block["image_fallback"]
        fallback = None if value in ("", None) else _fallback(c, value)
    if secret is None and fallback is None:
        c.fail(
            ["pipeline", "image_fallback"],
            "with no image secret the function needs a fallback image, else it could never provision",
            allowed="an image reference, e.g. registry.fly.io/{app}:latest",
        )
    return replace(p, image_secret=secret, image_fallback=fallback)


def _fallback(c: Checker, value: Any) -> str:
    keys: Keys = ["pipeline", "image_fallback"]
    text = c.text(value, keys, what="an image reference")
    _template(c, text, keys, ("app",))
    if not IMAGE_REF.match(text.replace("{app}", "app")):
        c.fail(keys, f"{text!r} is not an image reference", allowed="registry/repo:tag; {app} stands for the app")
    return text


def _table(c: Checker, raw: Any, p: Pipeline, machines_table: str | None) -> Pipeline:
    where: Keys = ["pipeline", "table"]
    spec = c.mapping(raw, where, ("name", "columns", "status_enum"))
    name = c.text(spec.get("name", machines_table or SEED_TABLE), [*where, "name"], pattern=IDENT, what="a table name")
    if machines_table is not None and name != machines_table:
        c.fail(
            [*where, "name"],
            f"names table {name!r} while supabase.machines_table names {machines_table!r}",
            allowed="one table: drop supabase.machines_table (pipeline.table.name replaces it) or make them equal",
        )
    columns = dict(SEED_COLUMNS)
    for role, column in c.mapping(spec.get("columns"), [*where, "columns"], ROLES).items():
        if column is not None:
            column = c.text(column, [*where, "columns", role], pattern=IDENT, what="a column name (or null: none)")
        columns[role] = column
    _check_columns(c, columns, [*where, "columns"])
    labels = None
    if "status_enum" in spec:
        labels = _labels(c, spec["status_enum"], [*where, "status_enum"])
    return replace(p, table=name, columns=columns, status_enum=labels)


def _check_columns(c: Checker, columns: dict[str, str | None], where: Keys) -> None:
    seen: dict[str, str] = {}
    for role in ROLES:
        column = columns[role]
        if column is None:
            if role in REQUIRED_ROLES:
                c.fail([*where, role], "is required: a table without it cannot hold provisioning rows")
            continue
        if column in OWN_COLUMNS:
            c.fail([*where, role], f"{column!r} is a column every table has already", allowed="another column name")
        if column in seen:
            c.fail(
                [*where, role],
                f"column {column!r} is already the {seen[column]} column",
                allowed="a column for one role only",
            )
        seen[column] = role


def _labels(c: Checker, raw: Any, where: Keys) -> list[str]:
    if not isinstance(raw, list) or not raw:
        c.fail(where, "must be a non-empty list of enum labels")
    for i, label in enumerate(raw):
        if not isinstance(label, str) or not label or len(label.encode()) > MAX_LABEL:
            c.fail([*where, i], f"{label!r} is not an enum label", allowed=f"a string of 1-{MAX_LABEL} bytes")
    if len(set(raw)) != len(raw):
        c.fail(where, "names a label twice")
    return list(raw)


def _status(c: Checker, raw: Any, p: Pipeline) -> dict[str, list[str]]:
    """The status words per role; the first is the one written; ``failed`` may be empty (no failure word)."""
    where: Keys = ["pipeline", "status"]
    spec = c.mapping(raw, where, STATUS_ROLES)
    out = {k: list(v) for k, v in SEED_STATUS.items()}
    for role, words in spec.items():
        if not isinstance(words, list) or (role != "failed" and not words):
            c.fail([*where, role], "must be a list of status words" + ("" if role == "failed" else ", at least one"))
        out[role] = [_word(c, w, [*where, role, i], p.status_enum) for i, w in enumerate(words)]
    if p.status_enum is not None:
        for role, words in out.items():  # the defaults too: a team's enum must hold every word written
            for word in words:
                if word not in p.status_enum:
                    c.fail([*where, role], f"{word!r} is not in pipeline.table.status_enum", allowed=p.status_enum)
    return out


def _word(c: Checker, value: Any, keys: Keys, labels: list[str] | None) -> str:
    word = c.text(value, keys, what="a status word")
    if labels is not None and word not in labels:
        c.fail(keys, f"{word!r} is not in pipeline.table.status_enum", allowed=labels)
    return word


def _invoke(c: Checker, raw: Any, p: Pipeline) -> Pipeline:
    """``invoke.body`` (one key holds "{canary_user}", at most one "{region}") and ``invoke.machine_id``."""
    where: Keys = ["pipeline", "invoke"]
    spec = c.mapping(raw, where, ("body", "machine_id"))
    body = dict(p.invoke_body)
    if "body" in spec:
        body = c.mapping(spec["body"], [*where, "body"])
        for key in body:
            if not isinstance(key, str) or not key:
                c.fail([*where, "body", key], f"{key!r} is not a body key", allowed="a string")
        for marker in (CANARY_USER, REGION):
            keys = [k for k, v in body.items() if v == marker]
            if len(keys) > 1 or (marker == CANARY_USER and not keys):
                c.fail(
                    [*where, "body"],
                    f"needs {'exactly' if marker == CANARY_USER else 'at most'} one key whose value is "
                    f"{marker!r}, found {len(keys)}",
                    allowed=f'e.g. {{owner: "{CANARY_USER}", region: "{REGION}"}}',
                )
    mid = p.invoke_machine_id
    if "machine_id" in spec:
        mid = c.text(spec["machine_id"], [*where, "machine_id"], what="the answer's key for the machine id")
    return replace(p, invoke_body=body, invoke_machine_id=mid)


def _logs(c: Checker, raw: Any, p: Pipeline) -> Pipeline:
    where: Keys = ["pipeline", "logs"]
    spec = c.mapping(raw, where, ("created", "failed"))
    if "created" in spec:
        created = spec["created"]
        if created is not None:
            created = _template(c, c.text(created, [*where, "created"], what="a log line"), [*where, "created"],
                                CREATED_FIELDS)  # fmt: skip
        p = replace(p, log_before=None, log_created=created)
    if "failed" in spec:
        failed = spec["failed"]
        if failed is not None:
            failed = _template(c, c.text(failed, [*where, "failed"], what="a log line"), [*where, "failed"],
                               FAILED_FIELDS)  # fmt: skip
        p = replace(p, log_failed=failed)
    return p


def _template(c: Checker, text: str, keys: Keys, fields: tuple[str, ...]) -> str:
    """``text`` when every placeholder is one of ``fields`` (no conversions or format specs)."""
    allowed = " ".join("{" + f + "}" for f in fields) + "; {{ and }} for a brace"
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        c.fail(keys, f"{text!r} is not a log template ({exc})", allowed=allowed)
    for _, name, spec, conversion in parts:
        if name is not None and (name not in fields or spec or conversion):
            c.fail(keys, f"placeholder {{{name}}} is not one this line can fill", allowed=allowed)
    return text

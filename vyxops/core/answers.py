"""The shape every platform answer must have, checked at the client before anything reads it.

One small declarative schema per read (:data:`READS`, keyed by the client method's name):
the container, the keys that must be there and the kind of each element, never a deep
per-row validation of a big list. An answer of another shape raises
:class:`~vyxops.core.errors.UnexpectedAnswer` (an ApiError: exit 3 on a deciding source, a gap on
an optional one); it is never read as "empty". Only one answer is read as empty on purpose:
``null`` where a list is expected, since Go encodes an empty slice as ``null`` (PLATFORM.md,
"Exit events may leave out zero values"). GraphQL's ``{"data": {"app": null}, "errors": […]}``
is app-not-found (reference/fly/graphql-error.app-not-found.constructed.json); the client
reads ``errors[]`` before the shape, so only an ``app: null`` *without* errors is unexpected.

A mismatch is described by where it is (``data.app.releases.nodes``, ``[3]``: paths from the
schema, never the body's own keys or text) and by the kind of value found (``an object``,
``a string``…), so no platform text reaches a message. :func:`wrong_answers` gives, per read,
the bodies of other shapes a fault matrix can answer with (``make faults``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "Shape",
    "Kind",
    "Obj",
    "ListOf",
    "Nullable",
    "Read",
    "READS",
    "OBJECT",
    "STRING",
    "ANY",
    "kind_of",
    "mismatch",
    "wrong_answers",
]


def kind_of(value: object) -> str:
    """What a JSON value is, in words, without any of its text: "null", "a string", "an object"…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class Shape:
    """A JSON shape: :meth:`mismatch` says where and how a value differs from it (None when it fits)."""

    def mismatch(self, value: object, at: str) -> str | None:
        raise NotImplementedError

    def expected(self) -> str:
        raise NotImplementedError


def _where(at: str) -> str:
    return at or "the body"


@dataclass(frozen=True)
class Kind(Shape):
    """A value of one JSON kind ("object", "list", "string", "number", "boolean"), or "any"."""

    kind: str

    def mismatch(self, value: object, at: str) -> str | None:
        if self.kind == "any":
            return None
        got = kind_of(value)
        return None if got == self.expected() else f"{_where(at)}: {self.expected()} was expected, got {got}"

    def expected(self) -> str:
        return "a value" if self.kind == "any" else f"an {self.kind}" if self.kind[0] in "aeiou" else f"a {self.kind}"


OBJECT = Kind("object")
STRING = Kind("string")
ANY = Kind("any")


@dataclass(frozen=True)
class Obj(Shape):
    """An object whose ``required`` keys are present and fit, and whose ``optional`` keys fit when present."""

    required: Mapping[str, Shape] = field(default_factory=dict)
    optional: Mapping[str, Shape] = field(default_factory=dict)

    def mismatch(self, value: object, at: str) -> str | None:
        if not isinstance(value, dict):
            return f"{_where(at)}: {self.expected()} was expected, got {kind_of(value)}"
        for key, shape in self.required.items():
            if key not in value:
                return f"{_where(at)}: {self.expected()} was expected, got an object without {key!r}"
        for key, shape in {**self.required, **self.optional}.items():
            if key in value:
                found = shape.mismatch(value[key], f"{at}.{key}" if at else key)
                if found:
                    return found
        return None

    def expected(self) -> str:
        if not self.required:
            return "an object"
        return "an object with " + ", ".join(repr(k) for k in self.required)


@dataclass(frozen=True)
class ListOf(Shape):
    """A list whose every element fits ``item`` (checked as far as ``item`` goes: a kind, or an object's keys)."""

    item: Shape

    def mismatch(self, value: object, at: str) -> str | None:
        if not isinstance(value, list):
            return f"{_where(at)}: {self.expected()} was expected, got {kind_of(value)}"
        for n, element in enumerate(value):
            found = self.item.mismatch(element, f"{at}[{n}]")
            if found:
                return found
        return None

    def expected(self) -> str:
        item = self.item.expected()
        if isinstance(self.item, Kind) or not isinstance(self.item, Obj) or not self.item.required:
            return f"a list of {item.split(' ', 1)[-1]}s"
        return f"a list, each {item},"


@dataclass(frozen=True)
class Nullable(Shape):
    """``shape`` or ``null`` (Go's empty slice, GraphQL's nullable field)."""

    shape: Shape

    def mismatch(self, value: object, at: str) -> str | None:
        return None if value is None else self.shape.mismatch(value, at)

    def expected(self) -> str:
        return f"{self.shape.expected()} or null"


@dataclass(frozen=True)
class Read:
    """One read of a platform: the client method, the request it sends, the shape its answer must have.

    ``path`` is a regular expression searched in the request path (as fault rules match it);
    ``source`` is the evidence source it feeds and ``optional`` whether a failure there is a gap
    (Fly logs and function logs) rather than the end of the run (exit 3).
    """

    name: str
    platform: str
    method: str
    path: str
    shape: Shape
    source: str = ""
    optional: bool = False


_LIST_OR_NULL = Nullable(ListOf(OBJECT))
_MACHINE = Obj(required={"id": STRING})  # what the frames key machines by
_APP = Obj(required={"name": STRING})
# Both GraphQL reads: errors[] (read first: app-not-found, auth) and data.app with its releases' nodes.
_GRAPHQL_ENVELOPE = Obj(optional={"errors": Nullable(ListOf(OBJECT)), "data": Nullable(OBJECT)})
_RELEASES = Obj(required={"nodes": _LIST_OR_NULL})  # schema.graphql: a connection, its nodes a list
# currentReleaseUnprocessed is nullable (an app never released has none), but asked, it is answered.
_APP_WITH_CURRENT = Obj(required={"releases": _RELEASES, "currentRelease": Nullable(OBJECT)})

READS: dict[str, Read] = {
    r.name: r
    for r in (
        # Machines API (fly-go ListAppsResponse {total_apps, apps}: apps null when empty).
        Read("fly.list_apps", "fly-machines", "GET", r"^/v1/apps$", Obj(required={"apps": Nullable(ListOf(_APP))})),
        Read("fly.get_app", "fly-machines", "GET", r"^/v1/apps/[^/]+$", OBJECT),
        Read("fly.list_machines", "fly-machines", "GET", r"^/v1/apps/[^/]+/machines$", Nullable(ListOf(_MACHINE)),
             source="fly.machines"),
        Read("fly.get_machine", "fly-machines", "GET", r"^/v1/apps/[^/]+/machines/[^/]+$", _MACHINE),
        Read("fly.create_machine", "fly-machines", "POST", r"^/v1/apps/[^/]+/machines$",
             _MACHINE),
        Read("fly.wait_machine", "fly-machines", "GET", r"^/v1/apps/[^/]+/machines/[^/]+/wait$", OBJECT),
        # stop and destroy answer {"ok": true}; a 204 without a body is no answer to read, and none is read.
        Read("fly.stop_machine", "fly-machines", "POST", r"^/v1/apps/[^/]+/machines/[^/]+/stop$", Nullable(OBJECT)),
        Read("fly.destroy_machine", "fly-machines", "DELETE", r"^/v1/apps/[^/]+/machines/[^/]+$", Nullable(OBJECT)),
        # GraphQL: data.app after errors[] (see the module's docstring).
        Read("fly.release_history", "fly-graphql", "POST", r"^/graphql$",
             Obj(required={"data": Obj(required={"app": _APP_WITH_CURRENT})}), source="fly.releases"),
        Read("fly.releases", "fly-graphql", "POST", r"^/graphql$",
             Obj(required={"data": Obj(required={"app": Obj(required={"releases": _RELEASES})})}),
             source="fly.releases"),
        # Fly logs: a JSON:API document, data[] of {id, attributes: LogEntry}, meta.next_token (fly-go
        # resource_logs.go; reference/fly/logs.response.constructed.json). data: null is an empty page.
        Read("fly.logs_page", "fly-api", "GET", r"^/api/v1/apps/[^/]+/logs$",
             Obj(required={"data": Nullable(ListOf(Obj(required={"attributes": OBJECT})))},
                 optional={"meta": Nullable(Obj(optional={"next_token": Nullable(STRING)}))}),
             source="fly.logs", optional=True),
        # Management API (SecretResponse requires name and value; FunctionResponse id and slug). Both answer
        # a JSON array (the OpenAPI's 200 schemas; the API is NestJS, not Go, so no nil slice is sent as null),
        # and neither is empty for a project vyxops can investigate: the secrets always hold the SUPABASE_*
        # defaults, the functions the provisioning one. A null here is not "none": read as empty, it named
        # the image secret unset and a wrong root (issue 19's harness).
        Read("supabase.list_secrets", "supabase-mgmt", "GET", r"^/v1/projects/[^/]+/secrets$",
             ListOf(Obj(required={"name": STRING})), source="supabase.secrets"),
        Read("supabase.list_functions", "supabase-mgmt", "GET", r"^/v1/projects/[^/]+/functions$",
             ListOf(Obj(required={"id": STRING, "slug": STRING})), source="supabase.functions"),
        Read("supabase.get_project", "supabase-mgmt", "GET", r"^/v1/projects/[^/]+$", OBJECT),
        Read("supabase.get_organization", "supabase-mgmt", "GET", r"^/v1/organizations/[^/]+$", OBJECT),
        # The logs endpoint: AnalyticsResponse {result, error}. The OpenAPI marks both optional, but every
        # answer seen carries result ({"result": [], "error": null} for an empty window: supabase/mcp's mocks,
        # reference/supabase/logs-endpoint-errors.sample.json); one with neither holds no reading at all,
        # and read as no rows it would pass for a quiet window. error is read before the shape. Every query
        # vyxops sends selects id and timestamp (logreads, doctor), what each row is keyed and paged by.
        Read("supabase.query_logs", "supabase-mgmt", "GET", r"/analytics/endpoints/logs$",
             Obj(required={"result": Nullable(ListOf(Obj(required={"id": ANY, "timestamp": ANY})))},
                 optional={"error": ANY}),
             source="supabase.function_logs", optional=True),
        # PostgREST's API root: its OpenAPI (Swagger 2.0) description. PostgREST always writes "swagger": "2.0";
        # the Haskell swagger2 encoder leaves empty maps out, so definitions (the tables) may be absent when
        # none is exposed. An answer without it describes nothing: read as "no tables", discovery would
        # refuse the run as bad input (exit 2) where the platform answered wrong (issue 19's harness).
        Read("supabase.openapi", "supabase-rest", "GET", r"^/rest/v1/$",
             Obj(required={"swagger": STRING}, optional={"definitions": OBJECT, "paths": OBJECT}),
             source="supabase.machine_rows"),
        # PostgREST answers a select with a JSON list of row objects (never null for a select).
        Read("supabase.rows", "supabase-rest", "GET", r"^/rest/v1/[^/]+$", ListOf(OBJECT),
             source="supabase.machine_rows"),
    )
}  # fmt: skip

#: The GraphQL envelope each GraphQL read checks before it reads errors[].
GRAPHQL_ENVELOPE = _GRAPHQL_ENVELOPE


def mismatch(read: str, body: object) -> str | None:
    """How ``body`` differs from the shape read ``read`` must answer (None when it fits)."""
    return READS[read].shape.mismatch(body, "")


def wrong_answers(read: str) -> dict[str, object]:
    """Bodies of another shape than ``read``'s, by name: what a fault matrix answers it with.

    Each is one the issue's harness sent (``{}``, GraphQL's ``{"data": null}`` and ``{"data": {"app": null}}``
    without errors, an object where a list belongs, a string, a number), kept only when it is indeed wrong
    for this read (a ``null`` list is an empty one, so it is never among them).
    """
    candidates: dict[str, object] = {
        "{}": {},
        "object for a list": {"items": [{"id": "x"}]},
        "string": "ok",
        "number": 1,
        "list of strings": ["x"],
        '{"data": null}': {"data": None},
        '{"data": {"app": null}}': {"data": {"app": None}},
        '{"data": {}}': {"data": {}},
        '{"result": {}}': {"result": {}},
        '{"apps": {}}': {"apps": {}},
    }
    return {name: body for name, body in candidates.items() if mismatch(read, body) is not None}

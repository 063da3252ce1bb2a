"""PostgREST's OpenAPI (Swagger 2.0) description of the exposed tables, as ``GET /rest/v1/`` serves it.

This is how a table's shape is discovered live (PLATFORM.md "A table's shape is
discoverable"): its columns, their types, which is the primary key, and the labels of an
enum column. The document follows PostgREST's own generator (PostgREST/postgrest
``src/PostgREST/Response/OpenAPI.hs``: ``makeTableDef``, ``makeProperty``, ``makePathItem``,
``makeParamDefs``, ``makeRootPathItem``) and a public capture of a Supabase project's
``/rest/v1/`` (PostgREST 12.2.3, 2025) for what Supabase sets around it (``info``, ``host``,
``basePath``, ``schemes``, the media types):

- ``definitions.<table>``: ``required`` lists the NOT NULL columns, whether or not they have a
  default (``makeTableDef`` filters on ``colNullable`` only; the capture lists ``id`` and
  ``created_at``, both with defaults), then ``properties`` and ``type: object``;
- a property has ``default`` (a string type's default quoted, ``gen_random_uuid()``,
  ``now()``), ``description`` (``"Note:\\nThis is a Primary Key.<pk/>"`` on a key column),
  ``enum`` (an enum column's labels), ``format`` (the column's type: ``uuid``, ``text``,
  ``timestamp with time zone``, an enum's qualified name ``public.<type>``) and ``type``
  (``string`` for all of these), keys in that order;
- ``paths``: ``/`` (this document) and per table GET/POST/PATCH/DELETE with their parameter
  references; ``parameters``: the shared ones, ``body.<table>`` and ``rowFilter.<table>.<column>``.

What only the scenario knows (the pipeline block) never appears: only what the database has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vyxops_sandbox.world import World

OPENAPI_CT = "application/openapi+json; charset=utf-8"  # PostgREST's media type for this document
POSTGREST_VERSION = "12.2.3 (519615d)"  # what the public capture's `info.version` says
MEDIA = [
    "application/json",
    "application/vnd.pgrst.object+json;nulls=stripped",
    "application/vnd.pgrst.object+json",
    "text/csv",
]
PK_NOTE = "Note:\nThis is a Primary Key.<pk/>"
_FORMATS = {"uuid": "uuid", "text": "text", "timestamptz": "timestamp with time zone"}
_PREFER = {
    "preferParams": ["params=single-object"],
    "preferReturn": ["return=representation", "return=minimal", "return=none"],
    "preferCount": ["count=none"],
    "preferPost": [
        "return=representation",
        "return=minimal",
        "return=none",
        "resolution=ignore-duplicates",
        "resolution=merge-duplicates",
    ],
}
_QUERY = {
    "select": ("select", "Filtering Columns", "query"),
    "on_conflict": ("on_conflict", "On Conflict", "query"),
    "order": ("order", "Ordering", "query"),
    "range": ("Range", "Limiting and Pagination", "header"),
    "rangeUnit": ("Range-Unit", "Limiting and Pagination", "header"),
    "offset": ("offset", "Limiting and Pagination", "query"),
    "limit": ("limit", "Limiting and Pagination", "query"),
}


def openapi_document(world: World, *, with_tables: bool = True) -> dict[str, Any]:
    """The Swagger 2.0 document PostgREST serves at the API root for the ``public`` schema's tables."""
    ref = world.state["supabase"]["project_ref"]
    tables = sorted(world.state["supabase"]["tables"].items()) if with_tables else []
    enums = world.state["supabase"].get("enums") or {}
    paths: dict[str, Any] = {"/": _root_path()}
    definitions: dict[str, Any] = {}
    parameters = _shared_parameters()
    for name, table in tables:
        paths[f"/{name}"] = _path_item(name, table["columns"])
        definitions[name] = _definition(table, enums)
        parameters[f"body.{name}"] = {
            "name": name,
            "description": name,
            "required": False,
            "in": "body",
            "schema": {"$ref": f"#/definitions/{name}"},
        }
        for column in table["columns"]:
            parameters[f"rowFilter.{name}.{column}"] = {
                "name": column,
                "required": False,
                "in": "query",
                "type": "string",
            }
    return {
        "swagger": "2.0",
        "info": {"description": "", "title": "standard public schema", "version": POSTGREST_VERSION},
        "host": f"{ref}.supabase.co:443",
        "basePath": "/",
        "schemes": ["https"],
        "consumes": list(MEDIA),
        "produces": list(MEDIA),
        "paths": paths,
        "definitions": definitions,
        "parameters": parameters,
        "externalDocs": {
            "description": "PostgREST Documentation",
            "url": "https://postgrest.org/en/v12/references/api.html",
        },
    }


def _definition(table: dict[str, Any], enums: dict[str, list[str]]) -> dict[str, Any]:
    """``definitions.<table>``: NOT NULL columns as ``required``, each column's property."""
    types = table.get("types") or {}
    not_null = set(table.get("not_null") or [])
    return {
        "required": [c for c in table["columns"] if c in not_null],
        "properties": {c: _property(c, types.get(c, "text"), table, enums) for c in table["columns"]},
        "type": "object",
    }


def _property(column: str, pg_type: str, table: dict[str, Any], enums: dict[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    default = (table.get("defaults") or {}).get(column)
    if default is not None:
        out["default"] = default  # every sandbox column is a string type: PostgREST quotes its default
    if column in (table.get("primary_key") or []):
        out["description"] = PK_NOTE
    if pg_type in enums:
        out["enum"] = list(enums[pg_type])
        out["format"] = f"public.{pg_type}"
    else:
        out["format"] = _FORMATS.get(pg_type, pg_type)
    out["type"] = "string"
    return out


def _refs(*names: str) -> list[dict[str, str]]:
    return [{"$ref": f"#/parameters/{n}"} for n in names]


def _path_item(name: str, columns: list[str]) -> dict[str, Any]:
    """The table's operations, as ``makePathItem`` writes them for a table that takes writes."""
    filters = [f"rowFilter.{name}.{c}" for c in columns]
    tags = [name]
    return {
        "get": {
            "parameters": _refs(*filters, "select", "order", "range", "rangeUnit", "offset", "limit", "preferCount"),
            "responses": {
                "200": {
                    "description": "OK",
                    "schema": {"items": {"$ref": f"#/definitions/{name}"}, "type": "array"},
                },
                "206": {"description": "Partial Content"},
            },
            "tags": tags,
        },
        "post": {
            "parameters": _refs(f"body.{name}", "select", "preferPost"),
            "responses": {"201": {"description": "Created"}},
            "tags": tags,
        },
        "delete": {
            "parameters": _refs(*filters, "preferReturn"),
            "responses": {"204": {"description": "No Content"}},
            "tags": tags,
        },
        "patch": {
            "parameters": _refs(*filters, f"body.{name}", "preferReturn"),
            "responses": {"204": {"description": "No Content"}},
            "tags": tags,
        },
    }


def _root_path() -> dict[str, Any]:
    return {
        "get": {
            "produces": ["application/openapi+json", "application/json"],
            "responses": {"200": {"description": "OK"}},
            "summary": "OpenAPI description (this document)",
            "tags": ["Introspection"],
        }
    }


def _shared_parameters() -> dict[str, Any]:
    out: dict[str, Any] = {
        key: {
            "name": "Prefer",
            "description": "Preference",
            "required": False,
            "enum": values,
            "in": "header",
            "type": "string",
        }  # fmt: skip
        for key, values in _PREFER.items()
    }
    for key, (name, description, where) in _QUERY.items():
        out[key] = {"name": name, "description": description, "required": False, "in": where, "type": "string"}
    out["rangeUnit"] = {**out["rangeUnit"], "default": "items"}
    out["rangeUnit"] = {k: out["rangeUnit"][k] for k in ("name", "description", "required", "default", "in", "type")}
    return out

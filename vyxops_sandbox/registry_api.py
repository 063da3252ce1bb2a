"""The sandbox's ``registry.fly.io``: the Docker Registry HTTP API v2 subset vyxops needs.

Served: ``GET /v2/``, ``HEAD``/``GET``/``PUT /v2/<repo>/manifests/<tag|digest>``.
A retag is GET (raw bytes + Content-Type) then PUT of the same bytes under the new
tag, so the digest is kept. Error bodies are the distribution-spec shape
(``registry-errors.observed.json``); the auth challenge is the reported
``Basic realm="flyio-registry.fly.dev"``.

Left out on purpose: tag listing (``/v2/<repo>/tags/list``) and ``/v2/_catalog`` —
Fly documents neither (PLATFORM.md), so they answer like an unknown route; manifest
DELETE (405 UNSUPPORTED); blobs and uploads (501, no layers are stored).

Who may see what: the Basic password is the Fly token without ``FlyV1 ``; a
repository outside the token's scope answers 401 ``UNAUTHORIZED`` "not allowed"
and a name no app has 404 ``NAME_UNKNOWN`` (:func:`_scope_refusal`). A HEAD
answer carries the status and headers of its GET, never a body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re

import httpx

from vyxops_sandbox.fly_api import go_not_found, request_id
from vyxops_sandbox.image_index import OCI_INDEX, OCI_MANIFEST
from vyxops_sandbox.world import World

__all__ = ["handle_registry", "MANIFEST_TYPES"]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST, DOCKER_LIST, OCI_INDEX)
REALM = 'Basic realm="flyio-registry.fly.dev"'  # registry-errors.observed.json (unverified third-party report)

# Distribution's path grammar: a repository name of lower-case components, a tag, or a digest.
_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_MANIFEST_PATH = re.compile(
    rf"^/v2/(?P<name>{_NAME})/manifests/(?P<ref>[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}|sha256:[a-f0-9]{{64}})$"
)
_BLOB_PATH = re.compile(rf"^/v2/(?P<name>{_NAME})/blobs/")


def _headers(world: World, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"docker-distribution-api-version": "registry/2.0", "fly-request-id": request_id(world), **(extra or {})}


def _error(
    world: World,
    request: httpx.Request,
    status: int,
    code: str,
    message: str,
    detail: object,
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    """A distribution-spec error; a HEAD answer carries the status and headers but no body."""
    headers = _headers(world, extra)
    if request.method == "HEAD":
        return httpx.Response(status, content=b"", headers=headers)
    headers["content-type"] = "application/json; charset=utf-8"
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}) + "\n"
    return httpx.Response(status, content=body.encode(), headers=headers)


def _authorized(world: World, request: httpx.Request) -> bool:
    """Basic auth whose password is the Fly token without its ``FlyV1 `` scheme.

    flyctl sends user ``x`` and, for a macaroon token, the bundle without ``FlyV1 ``
    (PLATFORM.md "Registry password": fly-go's token helpers strip the scheme); a
    password that still carries ``FlyV1 `` is refused like any wrong one. Whether the
    user name is checked is unknown: any is accepted.
    """
    scheme, _, encoded = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        _user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(password, world.credentials["fly_registry_password"])


def _scope_refusal(world: World, request: httpx.Request, repo: str) -> httpx.Response | None:
    """The answer for a repository the token may not see, or None when it may.

    registry.fly.io is scoped by the token (PLATFORM.md): an org token sees every app
    of its org, a deploy token (``platform.fly.token_apps``) only its apps. Outside a
    deploy token's apps the answer is 401 UNAUTHORIZED "not allowed" (the registry's
    text as pushes report it). For an org token, a repository that is none of its
    org's apps is NAME_UNKNOWN "app repository not found" (404), as a push to it
    reports, whether no app has that name (a typo) or another org's app does and
    holds images (PLATFORM.md "Registry NAME_UNKNOWN": not yours to see), so a
    token cannot probe other orgs.
    """
    scope = world.platform.fly.token_apps
    if scope is None:
        if world.app(repo) is not None:
            return None
        return _error(world, request, 404, "NAME_UNKNOWN", "app repository not found", {"name": repo})
    if repo in scope:
        return None
    detail = [{"Type": "repository", "Name": repo, "Action": "pull"}]
    return _error(world, request, 401, "UNAUTHORIZED", "not allowed", detail, {"www-authenticate": REALM})


def _accepted(request: httpx.Request) -> set[str]:
    return {
        part.split(";")[0].strip().lower()
        for part in request.headers.get_list("accept", split_commas=True)
        if part.strip()
    }


def _unknown_manifest(world: World, request: httpx.Request, repo: str, ref: str) -> httpx.Response:
    # "unknown tag=<tag>" is the observed detail; the digest wording follows distribution's ErrManifestUnknownRevision.
    detail = f"unknown manifest name={repo} revision={ref}" if ref.startswith("sha256:") else f"unknown tag={ref}"
    return _error(world, request, 404, "MANIFEST_UNKNOWN", "manifest unknown", detail)


def _get_manifest(world: World, request: httpx.Request, repo: str, ref: str) -> httpx.Response:
    """HEAD/GET a manifest: the stored bytes unchanged, with Docker-Content-Digest, Content-Type and Content-Length."""
    r = world.state["registry"].get(repo)
    digest = None
    if r is not None:
        digest = ref if ref.startswith("sha256:") else r["tags"].get(ref)
    manifest = r["manifests"].get(digest) if r is not None and digest else None
    if manifest is None:
        return _unknown_manifest(world, request, repo, ref)
    media_type = manifest["media_type"]
    # Like distribution: Docker types are always served; an OCI manifest or index only to a
    # client that says it takes one (otherwise MANIFEST_UNKNOWN with distribution's wording).
    accepted = _accepted(request)
    if media_type == OCI_MANIFEST and OCI_MANIFEST not in accepted:
        return _error(
            world,
            request,
            404,
            "MANIFEST_UNKNOWN",
            "OCI manifest found, but accept header does not support OCI manifests",
            None,
        )
    if media_type == OCI_INDEX and OCI_INDEX not in accepted:
        return _error(
            world,
            request,
            404,
            "MANIFEST_UNKNOWN",
            "OCI index found, but accept header does not support OCI indexes",
            None,
        )
    body = manifest["body"].encode()
    headers = _headers(
        world,
        {
            "content-type": media_type,
            "content-length": str(len(body)),
            "docker-content-digest": digest,
            "etag": f'"{digest}"',
        },
    )
    return httpx.Response(200, content=b"" if request.method == "HEAD" else body, headers=headers)


def _put_manifest(world: World, request: httpx.Request, repo: str, ref: str) -> httpx.Response:
    """PUT raw manifest bytes under a tag (or their own digest): 201 with Docker-Content-Digest and Location."""
    if repo not in world.state["registry"] and world.app(repo) is None:
        # Fly scopes repositories to the org's apps; the real answer for another name is unknown.
        return _error(world, request, 404, "NAME_UNKNOWN", "repository name not known to registry", {"name": repo})
    raw = request.content
    try:
        text = raw.decode("utf-8")
        parsed = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        return _error(world, request, 400, "MANIFEST_INVALID", "manifest invalid", f"body is not JSON: {exc}")
    if not isinstance(parsed, dict):
        return _error(world, request, 400, "MANIFEST_INVALID", "manifest invalid", "a manifest is a JSON object")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = parsed.get("mediaType")
    media_type = content_type or (declared if isinstance(declared, str) else "")
    if media_type not in MANIFEST_TYPES:
        return _error(
            world,
            request,
            400,
            "MANIFEST_INVALID",
            "manifest invalid",
            f"unsupported manifest media type {media_type!r}",
        )
    if isinstance(declared, str) and declared and declared != media_type:
        return _error(
            world,
            request,
            400,
            "MANIFEST_INVALID",
            "manifest invalid",
            f"mediaType in manifest should be '{media_type}' not '{declared}'",
        )
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if ref.startswith("sha256:") and ref != digest:
        return _error(
            world,
            request,
            400,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            {"expected": ref, "actual": digest},
        )
    # Blobs the manifest references are not checked (the sandbox stores no layers).
    stored = world.put_manifest(repo, ref, text, media_type)
    world.touch()
    headers = _headers(
        world, {"docker-content-digest": stored, "location": f"/v2/{repo}/manifests/{stored}", "content-length": "0"}
    )
    return httpx.Response(201, content=b"", headers=headers)


def handle_registry(world: World, request: httpx.Request) -> httpx.Response | None:
    """Serve ``/v2/…`` of registry.fly.io; None for paths outside ``/v2``.

    Routing comes first (an unknown route is Go's plain 404 whatever the credentials),
    then Basic auth (401 with the challenge), then the manifest operations.
    """
    path = request.url.path
    if path != "/v2" and not path.startswith("/v2/"):
        return None
    if path in ("/v2", "/v2/"):
        if request.method not in ("GET", "HEAD"):
            return httpx.Response(405, content=b"", headers=_headers(world, {"allow": "GET, HEAD"}))
        if not _authorized(world, request):
            return _error(
                world, request, 401, "UNAUTHORIZED", "authentication required", None, {"www-authenticate": REALM}
            )
        if request.method == "HEAD":
            return httpx.Response(
                200, content=b"", headers=_headers(world, {"content-type": "application/json", "content-length": "2"})
            )
        return httpx.Response(200, content=b"{}", headers=_headers(world, {"content-type": "application/json"}))
    if _BLOB_PATH.match(path):
        if not _authorized(world, request):
            return _error(
                world, request, 401, "UNAUTHORIZED", "authentication required", None, {"www-authenticate": REALM}
            )
        return _error(
            world, request, 501, "UNSUPPORTED", "vyxops sandbox: blobs are not modelled (no layers are stored)", None
        )
    m = _MANIFEST_PATH.match(path)
    if m is None:
        # Includes /v2/<repo>/tags/list and /v2/_catalog: registry.fly.io documents no tag listing.
        return go_not_found(world)
    repo, ref = m["name"], m["ref"]
    if request.method not in ("GET", "HEAD", "PUT", "DELETE"):
        return httpx.Response(405, content=b"", headers=_headers(world, {"allow": "DELETE, GET, HEAD, PUT"}))
    if not _authorized(world, request):
        return _error(world, request, 401, "UNAUTHORIZED", "authentication required", None, {"www-authenticate": REALM})
    refused = _scope_refusal(world, request, repo)
    if refused is not None:
        return refused
    if request.method == "DELETE":
        # Whether registry.fly.io deletes manifests is undocumented; distribution's answer with deletes off.
        return _error(world, request, 405, "UNSUPPORTED", "The operation is unsupported.", None)
    if request.method == "PUT":
        return _put_manifest(world, request, repo, ref)
    return _get_manifest(world, request, repo, ref)

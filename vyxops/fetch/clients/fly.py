"""Fly.io: Machines API, GraphQL and REST releases, logs, and the registry.

One method per API call; JSON in, JSON out. Frames are built a layer up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import httpx

from vyxops.core.answers import GRAPHQL_ENVELOPE
from vyxops.core.errors import ApiError, AuthError, NotFoundError, UnexpectedAnswer
from vyxops.core.images import FLY_REGISTRY, manifest_path, platform_child
from vyxops.fetch.http import Api

# The exact query `fly releases` sends (reference/fly/graphql-releases.request.docs.json).
RELEASES_QUERY = (
    "query($appName: String!, $limit: Int!) { app(name: $appName) { releases: releasesUnprocessed(first: $limit) "
    "{ nodes { id version description reason status imageRef stable user { id email name } createdAt } } } }"
)
# The releases and the platform's own current release, in one round trip. ``currentRelease:
# currentReleaseUnprocessed`` is fly-go's alias and selection, trimmed (resource_releases.go
# GetAppCurrentReleaseMachines; resource_images.go LatestImage asks `{ id version imageRef }`).
# schema.graphql: `App.currentReleaseUnprocessed: ReleaseUnprocessed` (nullable: an app never
# released has none). flyctl reads it, not the list, for "the current release": `fly deploy`
# without a build (and so `fly secrets set`, a restart-only deploy) deploys its imageRef
# (internal/command/deploy/machines.go setImg → LatestImage), `fly status --json` reports its
# version (internal/command/status/machines.go), `fly console` boots it (console.go).
RELEASES_WITH_CURRENT_QUERY = (
    "query($appName: String!, $limit: Int!) { app(name: $appName) { "
    "releases: releasesUnprocessed(first: $limit) "
    "{ nodes { id version description reason status imageRef stable user { id email name } createdAt } } "
    "currentRelease: currentReleaseUnprocessed { id version status imageRef } } }"
)
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
MAX_PAGE = 1000


@dataclass(frozen=True)
class ReleaseHistory:
    """Releases newest first, and the release the platform calls current (None when it did not say)."""

    nodes: list[dict[str, Any]]
    current: dict[str, Any] | None  # currentReleaseUnprocessed {id version status imageRef}
    current_note: str  # why ``current`` is None: "currentReleaseUnprocessed: null", "…: not in the evidence bundle"


def _release_nodes(app_node: dict[str, Any]) -> list[dict[str, Any]]:
    return (app_node.get("releases") or {}).get("nodes") or []  # nodes may be null (an empty Go slice)


def _current_field_unanswered(exc: ApiError) -> bool:
    """The combined releases query went unanswered as such: worth asking `fly releases`'s own query instead.
    An answer of the wrong shape is not that: it is the run's error (exit 3)."""
    if isinstance(exc, UnexpectedAnswer):
        return False
    return exc.status == 404 or (exc.platform == "fly-graphql" and "currentReleaseUnprocessed" in str(exc))


class FlyClient:
    """Calls to Fly's Machines API, GraphQL/REST API and registry."""

    def __init__(self, machines: Api, api: Api, registry: Api) -> None:
        self.machines = machines
        self.api = api
        self.registry = registry

    # -- apps
    def list_apps(self, org_slug: str) -> list[dict[str, Any]]:
        body = self.machines.get_shaped("fly.list_apps", "/v1/apps", params={"org_slug": org_slug})
        return cast(list[dict[str, Any]], body["apps"] or [])  # Go encodes an empty slice as null

    def get_app(self, app: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.machines.get_shaped("fly.get_app", f"/v1/apps/{app}"))

    # -- machines
    def iter_machine_pages(
        self,
        app: str,
        *,
        include_deleted: bool = False,
        summary: bool = False,
        state: str | None = None,
        region: str | None = None,
        page_size: int = MAX_PAGE,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of machines until the API stops sending ``fly-next-cursor``; a ``null`` page is empty."""
        params: dict[str, Any] = {"limit": min(page_size, MAX_PAGE)}
        if include_deleted:
            params["include_deleted"] = "true"
        if summary:
            params["summary"] = "true"
        if state:
            params["state"] = state
        if region:
            params["region"] = region
        while True:
            response = self.machines.request("GET", f"/v1/apps/{app}/machines", params=params)
            yield self.machines.parse_shaped(response, "fly.list_machines") or []
            cursor = response.headers.get("fly-next-cursor")
            if not cursor:
                return
            params["cursor"] = cursor

    def list_machines(self, app: str, **kw: Any) -> list[dict[str, Any]]:
        return [m for page in self.iter_machine_pages(app, **kw) for m in page]

    def get_machine(self, app: str, machine_id: str) -> dict[str, Any]:
        return cast(
            dict[str, Any], self.machines.get_shaped("fly.get_machine", f"/v1/apps/{app}/machines/{machine_id}")
        )

    def create_machine(
        self, app: str, config: dict[str, Any], *, region: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """POST a machine. Never retried blindly: a timeout may still have made it."""
        body: dict[str, Any] = {"config": config}
        if region:
            body["region"] = region
        if name:
            body["name"] = name
        response = self.machines.request("POST", f"/v1/apps/{app}/machines", json=body, idempotent=False)
        return cast(dict[str, Any], self.machines.parse_shaped(response, "fly.create_machine"))

    def wait_machine(self, app: str, machine_id: str, state: str, timeout_s: int = 60) -> dict[str, Any] | None:
        """Block until the machine reaches ``state``; None on timeout (408)."""
        response = self.machines.request(
            "GET",
            f"/v1/apps/{app}/machines/{machine_id}/wait",
            params={"state": state, "timeout": min(int(timeout_s), 60)},
            ok=(408,),
        )
        return None if response.status_code == 408 else self.machines.parse_shaped(response, "fly.wait_machine")

    def stop_machine(self, app: str, machine_id: str) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            self.machines.get_shaped(
                "fly.stop_machine",
                f"/v1/apps/{app}/machines/{machine_id}/stop",
                method="POST",
                json={},
                idempotent=True,
            ),
        )

    def destroy_machine(self, app: str, machine_id: str, *, force: bool = False) -> dict[str, Any]:
        params = {"force": "true"} if force else None
        return cast(
            dict[str, Any],
            self.machines.get_shaped(
                "fly.destroy_machine", f"/v1/apps/{app}/machines/{machine_id}", method="DELETE", params=params
            ),
        )

    # -- releases
    def releases(self, app: str, limit: int = 25) -> list[dict[str, Any]]:
        """Releases newest first, from GraphQL (errors arrive as HTTP 200 with ``errors[]``)."""
        return self.release_history(app, limit).nodes

    def release_history(self, app: str, limit: int = 25) -> ReleaseHistory:
        """Releases newest first and the platform's current release, asked in one GraphQL request.

        When the combined query is not answered (a bundle captured before it was asked
        answers 404 "not in the evidence bundle"; an API whose schema lacks the field
        answers an ``errors[]`` naming it), the exact `fly releases` query is sent
        instead and ``current`` is None, with ``current_note`` saying why.
        """
        variables = {"appName": app, "limit": limit}
        try:
            node = self._graphql_app(app, RELEASES_WITH_CURRENT_QUERY, variables, "fly.release_history")
        except ApiError as exc:
            if not _current_field_unanswered(exc):
                raise
            node = self._graphql_app(app, RELEASES_QUERY, variables, "fly.releases")
            note = "not in the evidence bundle" if exc.status == 404 else "the API did not answer the field"
            return ReleaseHistory(_release_nodes(node), None, f"currentReleaseUnprocessed: {note}")
        current = node.get("currentRelease")
        if not isinstance(current, dict) or current.get("version") is None:
            return ReleaseHistory(_release_nodes(node), None, "currentReleaseUnprocessed: null")
        return ReleaseHistory(_release_nodes(node), current, "")

    def _graphql_app(self, app: str, query: str, variables: dict[str, Any], read: str) -> dict[str, Any]:
        """``data.app`` of one GraphQL query; its ``errors[]`` raised as Auth-, NotFound- or ApiError, then an
        answer without ``data.app`` (``{}``, ``data: null``, ``app: null`` with no errors) as UnexpectedAnswer:
        it is never "no releases"."""
        response = self.api.request("POST", "/graphql", json={"query": query, "variables": variables}, idempotent=True)
        body = self.api.parse_json(response)
        if GRAPHQL_ENVELOPE.mismatch(body, "") is None:
            self._raise_graphql_errors(app, body.get("errors"))
        return cast(dict[str, Any], self.api.parse_shaped(response, read, body=body)["data"]["app"])

    @staticmethod
    def _raise_graphql_errors(app: str, errors: list[dict[str, Any]] | None) -> None:
        """A GraphQL ``errors[]`` (HTTP 200) as Auth-, NotFound- or ApiError; nothing when there is none."""
        if errors:
            message = "; ".join(str(e.get("message")) for e in errors)
            codes = {str(ext.get("code", "")) for e in errors if isinstance(ext := e.get("extensions"), dict)}
            cls = (
                AuthError
                if "UNAUTHORIZED" in codes
                else NotFoundError
                if "could not find" in message.lower()
                else ApiError
            )
            raise cls(
                message,
                platform="fly-graphql",
                method="POST",
                path="/graphql",
                status=200,
                hint=f"check that the app {app!r} exists and the token can read it",
            )

    # -- logs
    def logs_page(
        self, app: str, *, next_token: str | None = None, instance: str | None = None, region: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of app logs (oldest first) and the ns cursor for the next.

        Without ``next_token`` the API answers its most recent 100 lines of the last 24 h.
        ``next_token`` is a nanosecond Unix timestamp: the page holds lines after it, so it is
        either a returned ``meta.next_token`` (paging on) or any moment to backfill from
        (superfly/docs monitoring/logs-api-options.mdx; see :func:`vyxops.fetch.frames.fly_log_token`).
        ``data: null`` is an empty page.
        """
        params = {k: v for k, v in {"next_token": next_token, "instance": instance, "region": region}.items() if v}
        body = self.api.get_shaped("fly.logs_page", f"/api/v1/apps/{app}/logs", params=params)
        return [d["attributes"] for d in body["data"] or []], (body.get("meta") or {}).get("next_token")

    # -- registry
    def head_manifest(self, ref: str) -> dict[str, Any]:
        """How the registry answers for an image reference: ``{exists, digest, media_type, check}``.

        ``exists`` is True only for a 200 that carries ``Docker-Content-Digest``; False
        only when the registry says MANIFEST_UNKNOWN or NAME_UNKNOWN; None when it could
        not be told (401/403: the token may not see the repository; a 200 without a
        digest; a 404 that is not the registry's). ``check`` says which, e.g. "200",
        "404 MANIFEST_UNKNOWN", "401 denied". Other error statuses raise ApiError.

        It is one GET, not a HEAD: a HEAD answer has no body (the distribution spec: HEAD
        answers as GET would, without the body), and only the body of a 404 names the error
        code that tells a missing tag from a proxy's or a route's 404; a HEAD would need a GET
        after it, one more round trip (:meth:`manifest_and_body` also hands back a 200's body).
        """
        return self.manifest_and_body(ref)[0]

    def manifest_and_body(self, ref: str) -> tuple[dict[str, Any], bytes | None]:
        """:meth:`head_manifest`'s answer, and the manifest's bytes when it exists (None otherwise): an image
        index's platform child is read from them (:meth:`index_platform`), with no second GET."""
        path = manifest_path(ref)  # BadImageRef for anything the reference grammar refuses: never sent
        response = self.registry.request("GET", path, headers={"accept": MANIFEST_ACCEPT}, ok=(401, 403, 404))
        answer = manifest_answer(response)
        return answer, (response.content if answer.get("exists") else None)

    def get_manifest(self, ref: str) -> tuple[bytes, str, str | None]:
        """The manifest's raw bytes, media type and digest (for a byte-exact retag)."""
        response = self.registry.request("GET", manifest_path(ref), headers={"accept": MANIFEST_ACCEPT})
        return response.content, response.headers.get("content-type", ""), response.headers.get("docker-content-digest")

    def index_platform(self, ref: str, index_digest: str, body: bytes | None = None) -> str | None:
        """The digest of the linux/amd64 image in the index ``index_digest`` of ``ref``'s repository (one GET).

        Asked by the index's own digest, so a tag moved since the tag's GET cannot answer for another image. None
        when the body is not an index with such a child (images.platform_child; attestations are skipped).
        ``body``: the index's bytes as the tag's GET answered them; used, without a request, when their SHA-256
        is ``index_digest`` (the very index), else the index is asked for by its digest.
        """
        path = manifest_path(ref, index_digest)  # BadImageRef when the digest is not one: never sent
        if body is None or "sha256:" + hashlib.sha256(body).hexdigest() != index_digest:
            body = self.registry.request("GET", path, headers={"accept": MANIFEST_ACCEPT}).content
        try:
            index = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            return None
        return platform_child(index)

    def put_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> str | None:
        """PUT raw manifest bytes under ``tag`` unchanged; returns the digest the registry reports."""
        response = self.registry.request(
            "PUT",
            manifest_path(f"{FLY_REGISTRY}/{repository}:{tag}"),
            content=body,
            headers={"content-type": media_type},
            idempotent=True,
        )
        digest: str | None = response.headers.get("docker-content-digest")
        return digest


_MISSING_CODES = ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def manifest_answer(response: httpx.Response) -> dict[str, Any]:
    """``{exists, digest, media_type, check}`` of a registry's answer to HEAD/GET of a manifest (see head_manifest)."""
    status = response.status_code
    unknown: dict[str, Any] = {"exists": None, "digest": None, "media_type": None}
    if status in (401, 403):
        return {**unknown, "check": f"{status} denied"}
    if status == 404:
        code = _registry_error_code(response)
        if code in _MISSING_CODES:
            return {**unknown, "exists": False, "check": f"404 {code}"}
        return {**unknown, "check": "404 not a registry answer"}
    digest = response.headers.get("docker-content-digest")
    if not digest:
        return {**unknown, "check": f"{status} without Docker-Content-Digest"}
    return {"exists": True, "digest": digest, "media_type": response.headers.get("content-type"), "check": str(status)}


def _registry_error_code(response: httpx.Response) -> str | None:
    """The first ``errors[].code`` of a distribution-spec error body, if the body is one."""
    try:
        body = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = first.get("code")
    return code if isinstance(code, str) else None

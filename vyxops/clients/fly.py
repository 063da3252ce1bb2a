"""Fly.io: Machines API, GraphQL and REST releases, logs, and the registry.

One method per API call; JSON in, JSON out. Frames are built a layer up.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vyxops.errors import ApiError, AuthError, NotFoundError
from vyxops.http import Api
from vyxops.images import parse_image_ref

# The exact query `fly releases` sends (reference/fly/graphql-releases.request.docs.json).
RELEASES_QUERY = (
    "query($appName: String!, $limit: Int!) { app(name: $appName) { releases: releasesUnprocessed(first: $limit) "
    "{ nodes { id version description reason status imageRef stable user { id email name } createdAt } } } }"
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


class FlyClient:
    """Calls to Fly's Machines API, GraphQL/REST API and registry."""

    def __init__(self, machines: Api, api: Api, registry: Api) -> None:
        self.machines = machines
        self.api = api
        self.registry = registry

    # -- apps
    def list_apps(self, org_slug: str) -> list[dict[str, Any]]:
        return self.machines.get_json("/v1/apps", params={"org_slug": org_slug}).get("apps", [])

    def get_app(self, app: str) -> dict[str, Any]:
        return self.machines.get_json(f"/v1/apps/{app}")

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
        """Yield pages of machines until the API stops sending ``fly-next-cursor``."""
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
            yield self.machines.parse_json(response)
            cursor = response.headers.get("fly-next-cursor")
            if not cursor:
                return
            params["cursor"] = cursor

    def list_machines(self, app: str, **kw: Any) -> list[dict[str, Any]]:
        return [m for page in self.iter_machine_pages(app, **kw) for m in page]

    def get_machine(self, app: str, machine_id: str) -> dict[str, Any]:
        return self.machines.get_json(f"/v1/apps/{app}/machines/{machine_id}")

    def machine_events(self, app: str, machine_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.machines.get_json(f"/v1/apps/{app}/machines/{machine_id}/events", params={"limit": min(limit, 50)})

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
        return self.machines.parse_json(response)

    def wait_machine(self, app: str, machine_id: str, state: str, timeout_s: int = 60) -> dict[str, Any] | None:
        """Block until the machine reaches ``state``; None on timeout (408)."""
        response = self.machines.request(
            "GET",
            f"/v1/apps/{app}/machines/{machine_id}/wait",
            params={"state": state, "timeout": min(int(timeout_s), 60)},
            ok=(408,),
        )
        return None if response.status_code == 408 else self.machines.parse_json(response)

    def stop_machine(self, app: str, machine_id: str) -> dict[str, Any]:
        return self.machines.get_json(
            f"/v1/apps/{app}/machines/{machine_id}/stop", method="POST", json={}, idempotent=True
        )

    def destroy_machine(self, app: str, machine_id: str, *, force: bool = False) -> dict[str, Any]:
        params = {"force": "true"} if force else None
        return self.machines.get_json(f"/v1/apps/{app}/machines/{machine_id}", method="DELETE", params=params)

    # -- releases
    def releases(self, app: str, limit: int = 25) -> list[dict[str, Any]]:
        """Releases newest first, from GraphQL (errors arrive as HTTP 200 with ``errors[]``)."""
        body = self.api.get_json(
            "/graphql",
            method="POST",
            json={"query": RELEASES_QUERY, "variables": {"appName": app, "limit": limit}},
            idempotent=True,
        )
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            message = "; ".join(str(e.get("message")) for e in errors)
            codes = {str((e.get("extensions") or {}).get("code", "")) for e in errors}
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
        return body["data"]["app"]["releases"]["nodes"]

    # -- logs
    def logs_page(
        self, app: str, *, next_token: str | None = None, instance: str | None = None, region: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of app logs (oldest first) and the ns cursor for the next."""
        params = {k: v for k, v in {"next_token": next_token, "instance": instance, "region": region}.items() if v}
        body = self.api.get_json(f"/api/v1/apps/{app}/logs", params=params)
        return [d["attributes"] for d in body.get("data", [])], (body.get("meta") or {}).get("next_token")

    # -- registry
    def head_manifest(self, ref: str) -> dict[str, Any]:
        """Whether an image reference resolves: ``{exists, digest, media_type}`` (HEAD, like the host's pull)."""
        r = parse_image_ref(ref)
        response = self.registry.request(
            "HEAD", f"/v2/{r.repository}/manifests/{r.reference}", headers={"accept": MANIFEST_ACCEPT}, ok=(404,)
        )
        if response.status_code == 404:
            return {"exists": False, "digest": None, "media_type": None, "check": "404 MANIFEST_UNKNOWN"}
        return {
            "check": str(response.status_code),
            "exists": True,
            "digest": response.headers.get("docker-content-digest"),
            "media_type": response.headers.get("content-type"),
        }

    def get_manifest(self, ref: str) -> tuple[bytes, str, str | None]:
        """The manifest's raw bytes, media type and digest (for a byte-exact retag)."""
        r = parse_image_ref(ref)
        response = self.registry.request(
            "GET", f"/v2/{r.repository}/manifests/{r.reference}", headers={"accept": MANIFEST_ACCEPT}
        )
        return response.content, response.headers.get("content-type", ""), response.headers.get("docker-content-digest")

    def put_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> str | None:
        """PUT raw manifest bytes under ``tag`` unchanged; returns the digest the registry reports."""
        response = self.registry.request(
            "PUT",
            f"/v2/{repository}/manifests/{tag}",
            content=body,
            headers={"content-type": media_type},
            idempotent=True,
        )
        return response.headers.get("docker-content-digest")

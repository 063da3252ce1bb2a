"""One image, two digests; NAME_UNKNOWN outside the token's apps (issue 18, PLATFORM.md third round).

A multi-platform or attested image is an OCI image index: the HEAD of its tag answers the
index's digest (OCI image-spec image-index.md: ``manifests[]`` of descriptors with ``digest``
and ``platform``), while a machine records its linux/amd64 child's digest. BuildKit's
attestation manifests sit in the same index with platform ``unknown/unknown`` and the
annotation ``vnd.docker.reference.type: attestation-manifest`` (Docker docs, "Image
attestation storage"). The stories are tests/scenarios/*.yaml; each header tells it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from vyxops.analysis.evidence import ProjectReads
from vyxops.analysis.investigate import Investigation, investigate
from vyxops.core.images import ImageIdentity, platform_child
from vyxops.fetch.clients.fly import FlyClient
from vyxops.fetch.frames import fetch_manifests
from vyxops.fetch.session import open_session
from vyxops_sandbox import registry_api
from vyxops_sandbox.registry_api import MANIFEST_TYPES
from vyxops_sandbox.scenario import load_scenario
from vyxops_sandbox.world import World

HERE = Path(__file__).parent / "scenarios"
SEED_ATTESTED = "stub-image-attested-multi-platform"
RELEASE = "registry.fly.io/vyx-app:deployment-01KK9B132H7B7Y5PP8Y5QSR23X"
INDEX = "application/vnd.oci.image.index.v1+json"


def investigate_story(name: str, tmp_path: Path) -> Investigation:
    with open_session("sandbox", scenario=HERE / f"{name}.yaml", sandbox_dir=tmp_path) as s:
        return investigate(s, load_scenario(HERE / f"{name}.yaml").apps[0])


def registry(world: World, method: str, path: str, accept: str = ", ".join(MANIFEST_TYPES)) -> httpx.Response:
    auth = base64.b64encode(f"x:{world.credentials['fly_api_token']}".encode()).decode()
    headers = {"Accept": accept, "Authorization": f"Basic {auth}"}
    request = httpx.Request(method, "https://registry.fly.io" + path, headers=headers)
    response = registry_api.handle_registry(world, request)
    assert response is not None
    return response


# ---------------------------------------------------------------------------------------------- the sandbox


def test_an_attested_multi_platform_tag_is_an_index_and_machines_record_its_amd64_child() -> None:
    """HEAD of the tag: the index's digest; GET by the child's digest: the child; the machine records the child."""
    world = World.from_scenario(load_scenario(HERE / f"{SEED_ATTESTED}.yaml"))
    head = registry(world, "HEAD", "/v2/vyx-app/manifests/deployment-01KK9B132H7B7Y5PP8Y5QSR23X")
    assert head.status_code == 200 and head.headers["content-type"] == INDEX
    index_digest = head.headers["docker-content-digest"]
    index = registry(world, "GET", f"/v2/vyx-app/manifests/{index_digest}").json()
    platforms = [(d["platform"]["os"], d["platform"]["architecture"]) for d in index["manifests"]]
    assert platforms == [("linux", "amd64"), ("linux", "arm64"), ("unknown", "unknown"), ("unknown", "unknown")]
    attestations = [d for d in index["manifests"] if d["platform"]["os"] == "unknown"]
    assert all(d["annotations"]["vnd.docker.reference.type"] == "attestation-manifest" for d in attestations)
    amd64 = index["manifests"][0]["digest"]
    child = registry(world, "GET", f"/v2/vyx-app/manifests/{amd64}")
    assert child.status_code == 200 and child.headers["docker-content-digest"] == amd64
    assert child.headers["content-type"] == "application/vnd.oci.image.manifest.v1+json"
    machine = world.app("vyx-app")["machines"]["4d4d4d4d4d4d01"]  # type: ignore[index]
    assert machine["image_ref"]["tag"] == "deployment-01KK9B132H7B7Y5PP8Y5QSR23X"
    assert machine["image_ref"]["digest"] == amd64 != index_digest


def test_another_orgs_repository_answers_name_unknown_to_an_org_token() -> None:
    """A repository that holds images but is none of the org's apps is NAME_UNKNOWN: not the token's to see."""
    world = World.from_scenario(load_scenario(HERE / "secret-names-another-orgs-repository.yaml"))
    assert "shared-base" in world.state["registry"]
    answer = registry(world, "GET", "/v2/shared-base/manifests/v3")
    assert answer.status_code == 404 and answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"


# ---------------------------------------------------------------------------------------------- vyxops


def test_the_platform_child_skips_attestations_and_other_platforms() -> None:
    """An index stands for its linux/amd64 manifest; an attestation manifest or arm64 is never that image."""
    att = {"vnd.docker.reference.type": "attestation-manifest"}
    index = {"manifests": [
        {"digest": "sha256:att", "platform": {"os": "linux", "architecture": "amd64"}, "annotations": att},
        {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
    ]}  # fmt: skip
    assert platform_child(index) == "sha256:amd"
    ident = ImageIdentity({"sha256:index": "sha256:amd"})
    assert ident.same("sha256:index", "sha256:amd") and not ident.same("sha256:index", "sha256:arm")
    assert not ident.same("sha256:other", "sha256:amd") and not ident.same(None, "sha256:amd")


def test_name_unknown_is_a_gap_outside_the_tokens_apps_and_missing_in_its_own(tmp_path: Path) -> None:
    """NAME_UNKNOWN for another org's repository is a fly.registry gap; in the app's own repository, missing."""
    story = HERE / "secret-names-another-orgs-repository.yaml"
    with open_session("sandbox", scenario=story, sandbox_dir=tmp_path) as s:
        df = fetch_manifests(
            s, ["registry.fly.io/shared-base:v3", "registry.fly.io/vyx-app:nope"], own_apps={"vyx-app"}
        )
    assert df.attrs["complete"] is False  # said in the frame (and the report), not as a Python warning
    rows: dict[str, Any] = {r["ref"]: r for r in df.to_dict("records")}
    foreign, own = rows["registry.fly.io/shared-base:v3"], rows["registry.fly.io/vyx-app:nope"]
    assert pd.isna(foreign["exists"]) and "NAME_UNKNOWN" in foreign["check"]
    assert not pd.isna(own["exists"]) and not own["exists"]  # the own repository: missing
    gaps = [g["why"] for g in df.attrs["gaps"]]
    assert len(gaps) == 1 and "shared-base:v3" in gaps[0] and "none of the token's apps" in gaps[0]


# ---------------------------------------------------------------------------------------------- the stories


def test_seed_with_attested_multi_platform_images_keeps_its_root(tmp_path: Path) -> None:
    """Story 1: the stub machine's exit is current and critical; the release's own machines are no finding."""
    inv = investigate_story(SEED_ATTESTED, tmp_path)
    assert inv.verdict == "root_cause" and inv.root is not None
    assert inv.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE" and inv.root.severity == "critical"
    [exited] = [f for f in inv.findings if f.code == "MACHINE_EXITED_AUTO_DESTROYED"]
    assert exited.current and exited.severity == "critical" and exited.facts["machine_id"] == "4d4d4d4d4d4d03"
    assert {f.code for f in inv.findings} == {"SECRET_IMAGE_NOT_CURRENT_RELEASE", "MACHINE_EXITED_AUTO_DESTROYED",
                                              "DB_STATUS_STUCK"}  # fmt: skip
    assert not any(f.entity.startswith("machine:4d4d4d4d4d4d0" + n) for f in inv.findings for n in "12")


def test_healthy_app_whose_release_image_is_an_index_is_healthy(tmp_path: Path) -> None:
    """Story 2: machines record the child's digest, the registry the index's: one image, healthy."""
    inv = investigate_story("healthy-release-image-is-an-index", tmp_path)
    assert (inv.verdict, inv.root, inv.findings) == ("healthy", None, [])
    digests = set(inv.evidence.machines["image_digest"].dropna())
    release_digest = inv.evidence.head("registry.fly.io/vyx-app:deployment-01KKE0HEALTHY0000000000000")[1]
    assert len(digests) == 1 and release_digest not in digests
    assert all(inv.evidence.identity.same(d, release_digest) for d in digests)


def test_secret_pinned_to_the_digest_machines_show_is_the_release(tmp_path: Path) -> None:
    """Story 3: DOCKER_IMAGE = repo@<platform child digest> matches, and names the current release's image."""
    inv = investigate_story("secret-pinned-to-the-digest-machines-show", tmp_path)
    codes = {f.code for f in inv.findings}
    assert "SECRET_DIGEST_UNMATCHED" not in codes and "SECRET_IMAGE_NOT_CURRENT_RELEASE" not in codes
    assert inv.evidence.docker_image()["ref"].startswith("registry.fly.io/vyx-app@sha256:")
    assert (inv.verdict, inv.root) == ("healthy", None)


def test_a_secret_naming_another_orgs_repository_is_a_registry_gap_not_a_missing_tag(tmp_path: Path) -> None:
    """Story 4: NAME_UNKNOWN for shared-base (none of the token's apps) is a fly.registry gap, never missing."""
    inv = investigate_story("secret-names-another-orgs-repository", tmp_path)
    assert "IMAGE_TAG_MISSING" not in {f.code for f in inv.findings}
    assert inv.root is None and inv.verdict == "inconclusive"
    gaps = [g for g in inv.evidence.gaps if g.source == "fly.registry"]
    assert any("registry.fly.io/shared-base:v3" in g.why for g in gaps)
    assert {f.code for f in inv.findings} == {"SECRET_IMAGE_NOT_CURRENT_RELEASE"}


def test_index_bodies_are_json_the_spec_names() -> None:
    """The sandbox's index is an OCI index document: schemaVersion 2, the media type, descriptors with sizes."""
    world = World.from_scenario(load_scenario(HERE / "healthy-release-image-is-an-index.yaml"))
    body = registry(world, "GET", "/v2/vyx-app/manifests/latest").content
    index = json.loads(body)
    assert index["schemaVersion"] == 2 and index["mediaType"] == INDEX
    assert all({"mediaType", "digest", "size", "platform"} <= set(d) for d in index["manifests"])


def test_an_index_is_read_once_per_reference_in_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index behind a tag is read with one GET per reference per run, however many times it is asked."""
    calls: list[str] = []
    real = FlyClient.index_platform

    def counting(self: FlyClient, ref: str, digest: str, body: bytes | None = None) -> str | None:
        calls.append(ref)
        return real(self, ref, digest, body)

    monkeypatch.setattr(FlyClient, "index_platform", counting)
    with open_session("sandbox", scenario=HERE / f"{SEED_ATTESTED}.yaml", sandbox_dir=tmp_path) as s:
        project = ProjectReads(s)
        answers = [project.manifest(RELEASE) for _ in range(3)]
    assert (
        calls == [RELEASE] and answers[0]["platform_digest"] and answers[0]["digest"] != answers[0]["platform_digest"]
    )

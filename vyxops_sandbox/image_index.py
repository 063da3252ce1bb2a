"""Multi-platform and attested images in the sandbox's registry: an OCI image index and its children.

A scenario image with ``index: true`` (built for linux/amd64 and linux/arm64) or ``attestations: true``
(BuildKit's default provenance) is pushed the way BuildKit pushes it: each platform's OCI image manifest,
then an OCI index whose ``manifests[]`` lists them with their ``platform`` (OCI image-spec, image-index.md),
and, with attestations, one attestation manifest per platform, listed in the same index with platform
``unknown/unknown`` and the annotations ``vnd.docker.reference.type: attestation-manifest`` and
``vnd.docker.reference.digest: <the platform manifest's digest>`` (Docker docs, "Image attestation storage").
The tag names the index, so a HEAD that accepts the index types answers the index's digest; a machine
created from the tag runs, and records in ``image_ref.digest``, the linux/amd64 child (:func:`runnable_child`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
IN_TOTO = "application/vnd.in-toto+json"
ATTESTATION = "attestation-manifest"
FLY_PLATFORM = {"architecture": "amd64", "os": "linux"}  # Fly Machines run x86-64
PLATFORMS = (FLY_PLATFORM, {"architecture": "arm64", "os": "linux"})

Hash = Callable[..., str]  # World.stable_hash: deterministic hex from the scenario's name and the parts


def _dump(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def digest_of(text: str) -> str:
    """The digest a registry gives these manifest bytes."""
    return _digest(text)


def _descriptor(media_type: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _digest(text), "size": len(text.encode()), **extra}


def _platform_manifest(h: Hash, ref: str, platform: dict[str, str]) -> str:
    arch = platform["architecture"]
    return _dump(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": 1200, "digest": "sha256:" + h("config", ref, arch)},
            "layers": [
                {"mediaType": OCI_LAYER, "size": 3_000_000 + i, "digest": "sha256:" + h("layer", ref, arch, i)}
                for i in range(2)
            ],
        }
    )


def _attestation_manifest(h: Hash, ref: str, arch: str) -> str:
    predicate = {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}
    return _dump(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": 167, "digest": "sha256:" + h("att-config", ref, arch)},
            "layers": [
                {
                    "mediaType": IN_TOTO,
                    "size": 1500,
                    "digest": "sha256:" + h("att", ref, arch),
                    "annotations": predicate,
                }
            ],  # fmt: skip
        }
    )


def index_manifests(h: Hash, ref: str, *, multi_platform: bool, attestations: bool) -> tuple[str, list[str]]:
    """(the index's bytes, its children's bytes) for image ``ref``, deterministic for a scenario."""
    platforms = PLATFORMS if multi_platform else PLATFORMS[:1]
    children, descriptors = [], []
    for platform in platforms:
        body = _platform_manifest(h, ref, platform)
        children.append(body)
        descriptors.append(_descriptor(OCI_MANIFEST, body, platform=platform))
    if attestations:
        for platform, child in zip(platforms, list(children)):
            body = _attestation_manifest(h, ref, platform["architecture"])
            children.append(body)
            annotations = {"vnd.docker.reference.digest": _digest(child), "vnd.docker.reference.type": ATTESTATION}
            unknown = {"architecture": "unknown", "os": "unknown"}
            descriptors.append(_descriptor(OCI_MANIFEST, body, annotations=annotations, platform=unknown))
    return _dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}), children


def runnable_child(index_body: str) -> str | None:
    """The digest of the index's linux/amd64 image manifest (what a Fly Machine pulls and records)."""
    for d in json.loads(index_body).get("manifests") or []:
        kind = (d.get("annotations") or {}).get("vnd.docker.reference.type")
        if kind != ATTESTATION and d.get("platform") == FLY_PLATFORM:
            return str(d["digest"])
    return None

"""Image references: ``registry.fly.io/<repo>:<tag>`` or ``…@sha256:<digest>``."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

FLY_REGISTRY = "registry.fly.io"


class ImageRef(NamedTuple):
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        """What the registry's manifest path takes: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        if self.digest:
            return f"{self.registry}/{self.repository}@{self.digest}"
        return f"{self.registry}/{self.repository}:{self.tag or 'latest'}"


def parse_image_ref(ref: str) -> ImageRef:
    """Split an image reference; a reference with no tag means ``:latest`` as Docker reads it."""
    registry, _, rest = ref.partition("/")
    if "." not in registry and ":" not in registry and registry != "localhost":
        registry, rest = "docker.io", ref  # Docker Hub short form
    if "@" in rest:
        repo, _, digest = rest.partition("@")
        return ImageRef(registry, repo, None, digest)
    if ":" in rest:
        repo, _, tag = rest.rpartition(":")
        return ImageRef(registry, repo, tag, None)
    return ImageRef(registry, rest, "latest", None)


def tag_or_ref(ref: str) -> str:
    """How a fallback image is said in a sentence: ``:latest`` for a ``:latest`` reference, else the reference."""
    return ":latest" if parse_image_ref(ref).tag == "latest" else ref


def secret_digest(value: str) -> str:
    """The digest the Supabase Management API shows for a secret's value (SHA-256 hex)."""
    return hashlib.sha256(value.encode()).hexdigest()


# One image, two digests (PLATFORM.md "Image identity"). A multi-platform image, or one BuildKit pushed with
# attestations (provenance is on by default), is an image index: a HEAD that accepts the index types answers the
# index's digest, while a machine records the digest of the platform manifest it runs. The OCI image-spec
# (image-index.md) lists the children in ``manifests[]``, each a descriptor with ``digest`` and ``platform``
# {os, architecture}; Docker's "Image attestation storage" docs put attestation manifests in the same list,
# annotated ``vnd.docker.reference.type: attestation-manifest`` with platform ``unknown/unknown`` (never run).
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
ATTESTATION_TYPE = "attestation-manifest"  # annotations["vnd.docker.reference.type"] of an attestation manifest
# Fly Machines run linux/amd64 (Firecracker on x86-64 hosts; flyctl's builders build linux/amd64), so that is
# the child a machine created from an index records in its image_ref.digest.
FLY_PLATFORM = ("linux", "amd64")


def is_index(media_type: object) -> bool:
    """Whether a manifest's media type is an image index (OCI index or Docker manifest list)."""
    return isinstance(media_type, str) and media_type.split(";")[0].strip().lower() in INDEX_TYPES


def platform_child(index: object, platform: tuple[str, str] = FLY_PLATFORM) -> str | None:
    """The digest of the index's manifest for ``platform`` (os, architecture), attestations skipped; None if none."""
    children = index.get("manifests") if isinstance(index, dict) else None
    for child in children if isinstance(children, list) else []:
        if not isinstance(child, dict) or not isinstance(child.get("digest"), str):
            continue
        annotations = child.get("annotations") or {}
        if isinstance(annotations, dict) and annotations.get("vnd.docker.reference.type") == ATTESTATION_TYPE:
            continue
        p = child.get("platform") or {}
        if isinstance(p, dict) and (p.get("os"), p.get("architecture")) == platform:
            return str(child["digest"])
    return None


class ImageIdentity:
    """What makes two digests one image: an index digest stands for its platform child (:func:`platform_child`).

    The one place vyxops decides "same image"; built from the registry's answers (the manifests frame).
    """

    def __init__(self, platform_of: dict[str, str] | None = None) -> None:
        self._platform_of = dict(platform_of or {})  # index digest -> its linux/amd64 child's digest

    def of(self, digest: str | None) -> str | None:
        """The digest that names the image a machine runs: an index's platform child, else the digest itself."""
        return None if digest is None else self._platform_of.get(digest, digest)

    def same(self, a: str | None, b: str | None) -> bool:
        """Whether digests ``a`` and ``b`` (both known) name one image."""
        return a is not None and b is not None and self.of(a) == self.of(b)

    def pinned(self, ref: str, digest: str | None) -> list[str]:
        """``ref``'s repository pinned to ``digest`` and, when that is an index, to its platform child."""
        if not digest:
            return []
        r = parse_image_ref(ref)
        digests = list(dict.fromkeys(d for d in (digest, self.of(digest)) if d))
        return [f"{r.registry}/{r.repository}@{d}" for d in digests]

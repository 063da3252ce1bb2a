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

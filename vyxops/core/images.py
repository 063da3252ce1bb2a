"""Image references: ``registry.fly.io/<repo>:<tag>`` or ``…@sha256:<digest>``."""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

from vyxops.core.errors import VyxopsError

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


# The distribution reference grammar, as docker/distribution's ``reference/regexp.go`` writes it (now
# github.com/distribution/reference, regexp.go; reference.go caps a name at 255 characters, NameTotalLengthMax):
#   reference := name [ ":" tag ] [ "@" digest ];  name := [domain "/"] path-component ["/" path-component]*
#   domain := (domain-component ["." domain-component]* | "[" ipv6 "]") [":" port]
#   path-component := [a-z0-9]+ (separator [a-z0-9]+)*;  separator := [._] | "__" | "-"+
#   tag := [\w][\w.-]{0,127};  digest := algorithm ":" hex{32,}
# Go's \w is ASCII and its $ is the end of the text, hence re.ASCII and fullmatch. Whatever does not match is
# not an image reference: it never goes into a registry URL (no "..", "/", "?", "#", control character or space
# can reach a request path through it).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_REMOTE_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?", re.ASCII
)
NAME_TOTAL_LENGTH_MAX = 255


class BadImageRef(VyxopsError, ValueError):
    """A string that is not an image reference by the distribution grammar; ``why`` says what is wrong.

    The message never quotes the string: it came from a platform and may hold anything (vyxops.core.text)."""

    def __init__(self, ref: str, why: str) -> None:
        self.ref = ref
        self.why = why
        super().__init__(
            f"not an image reference ({why}); it was not sent to the registry",
            hint="the image reference came from a platform (a row, a release, a secret): correct it there",
        )


def reference_problem(ref: object) -> str | None:
    """Why ``ref`` is not an image reference by the distribution grammar, or None when it is one."""
    if not isinstance(ref, str) or not ref:
        return "empty" if ref == "" or ref is None else f"a {type(ref).__name__}, not text"
    if not ref.isascii() or not ref.isprintable():
        return "it holds a control, space or non-ASCII character"
    m = _REFERENCE.fullmatch(ref)
    if m is None:
        return "it does not match the distribution reference grammar (name[:tag][@digest])"
    if len(m.group("name")) > NAME_TOTAL_LENGTH_MAX:
        return f"its name is longer than {NAME_TOTAL_LENGTH_MAX} characters"
    return None


def checked_image_ref(ref: str) -> ImageRef:
    """:func:`parse_image_ref` of a reference the grammar accepts; :class:`BadImageRef` (saying why) otherwise.

    The one gate before a reference goes into a registry URL."""
    why = reference_problem(ref)
    if why is not None:
        raise BadImageRef(str(ref), why)
    return parse_image_ref(ref)


def manifest_path(ref: str, reference: str | None = None) -> str:
    """``/v2/<repository>/manifests/<tag or digest>`` of a checked reference (:func:`checked_image_ref`), asked by
    ``reference`` (a digest the registry answered) when given, itself checked as a digest; BadImageRef otherwise."""
    r = checked_image_ref(ref)
    if reference is not None and _DIGEST_RE.fullmatch(reference) is None:
        raise BadImageRef(reference, "not a digest (algorithm:hex)")
    return f"/v2/{r.repository}/manifests/{reference or r.reference}"


_DIGEST_RE = re.compile(_DIGEST, re.ASCII)


def parse_image_ref(ref: str) -> ImageRef:
    """Split an image reference; a reference with no tag means ``:latest`` as Docker reads it.

    Lenient (a sentence may name any string): use :func:`checked_image_ref` before building a URL."""
    m = _REFERENCE.fullmatch(ref) if isinstance(ref, str) else None
    if m is not None and m.group("tag") and m.group("digest"):  # name:tag@digest: the digest decides
        ref = f"{m.group('name')}@{m.group('digest')}"
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

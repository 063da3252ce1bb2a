"""Every error a vyxops user can meet, rooted at :class:`VyxopsError`.

::

    VyxopsError                  root; .hint says what to do next
    ├── InputError               bad input (CLI exit 2): .name, .allowed
    │   └── ScenarioError        bad scenario file: .path, .key, .line
    ├── ConfigError              missing/invalid credentials or target (exit 2)
    ├── ApiError                 the platform answered with an error (exit 3)
    │   ├── AuthError            401/403
    │   ├── NotFoundError        404
    │   ├── RateLimitedError     429 after retries
    │   ├── ManifestUnknownError the image reference does not resolve
    │   └── UnexpectedAnswer     an answer of another shape than the read's (vyxops.core.answers)
    ├── TransportError           the platform could not be reached (exit 3)
    └── PreconditionError        a fix's precondition does not hold

No error ever carries a token: messages are built from platform, method, path,
status and a short excerpt of the body, and the excerpt is redacted.
"""

from __future__ import annotations

from typing import Any

# Redaction lives in vyxops.core.redaction (one home); these names stay importable from here.
from vyxops.core.redaction import (
    TOKEN_PATTERN,
    holds_secret,
    may_hold_secret,
    redact,
    register_secret,
    registered_secrets,
    secret_forms,
)

__all__ = [
    "VyxopsError",
    "InputError",
    "ScenarioError",
    "ConfigError",
    "ApiError",
    "AuthError",
    "NotFoundError",
    "RateLimitedError",
    "ManifestUnknownError",
    "UnexpectedAnswer",
    "TransportError",
    "PreconditionError",
    "redact",
    "register_secret",
    "registered_secrets",
    "secret_forms",
    "may_hold_secret",
    "holds_secret",
    "TOKEN_PATTERN",
    "exit_code_for",
]


class VyxopsError(Exception):
    """Root of every vyxops error: a message a person reads and a hint saying what to do."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = redact(message)
        if hint is not None:
            self.hint = redact(hint)
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message}\nhint: {self.hint}" if self.hint else self.message


class InputError(VyxopsError):
    """A user's input is invalid; names the input and what would be valid."""

    def __init__(self, name: str, message: str, *, allowed: Any = None, hint: str | None = None) -> None:
        self.name = name
        self.allowed = allowed
        text = f"{name}: {message}"
        if allowed is not None:
            text += f" (allowed: {allowed})"
        super().__init__(text, hint=hint)


class ScenarioError(InputError):
    """A scenario file is invalid: the file, the key, the line and what is allowed."""

    def __init__(self, path: str, key: str, message: str, *, line: int | None = None, allowed: Any = None) -> None:
        self.path = path
        self.key = key
        self.line = line
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {key}", message, allowed=allowed, hint="fix the scenario file and run again")


class ConfigError(VyxopsError):
    """Credentials or target settings are missing or invalid."""


class ApiError(VyxopsError):
    """A platform answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        platform: str,
        method: str,
        path: str,
        status: int | None,
        request_id: str | None = None,
        code: str | None = None,
        body_excerpt: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.platform = platform
        self.method = method
        self.path = redact(path)
        self.status = status
        self.request_id = request_id
        self.code = code
        self.body_excerpt = redact(body_excerpt) if body_excerpt else body_excerpt
        head = f"{platform} {method} {self.path} -> {status}"
        if code:
            head += f" {code}"
        if request_id:
            head += f" (request id {request_id})"
        super().__init__(f"{head}: {message}", hint=hint)


class AuthError(ApiError):
    """The platform refused the credentials (401/403)."""


class NotFoundError(ApiError):
    """The platform has no such resource (404)."""


class RateLimitedError(ApiError):
    """The platform kept answering 429 after every retry."""


class ManifestUnknownError(ApiError):
    """An image reference does not resolve in the registry (MANIFEST_UNKNOWN)."""


class UnexpectedAnswer(ApiError):
    """The platform answered, but not in the shape the read needs (:mod:`vyxops.core.answers`): nothing was read
    from it, and it is never taken for an empty answer. ``expected``/``got`` name places and kinds from the
    read's schema ("data.app: an object was expected, got null"), never the body's own text."""

    def __init__(
        self,
        mismatch: str,
        *,
        platform: str,
        method: str,
        path: str,
        status: int | None,
        request_id: str | None = None,
    ) -> None:
        self.mismatch = mismatch
        super().__init__(
            f"unexpected answer ({mismatch}); nothing was read from it",
            platform=platform,
            method=method,
            path=path,
            status=status,
            request_id=request_id,
            hint="something other than the API answered, or the API changed its answer (a proxy, a wrong base "
            "URL?); retry later, and if it persists check the base URL",
        )


class TransportError(VyxopsError):
    """The platform could not be reached (timeout, connection refused, malformed answer)."""

    def __init__(self, message: str, *, platform: str, method: str, path: str, hint: str | None = None) -> None:
        self.platform = platform
        self.method = method
        self.path = redact(path)
        super().__init__(f"{platform} {method} {self.path}: {message}", hint=hint)


class PreconditionError(VyxopsError):
    """A fix's precondition does not hold: the world moved since the plan was made."""


def exit_code_for(error: BaseException | type[BaseException]) -> int:
    """The CLI exit status for an error (or its class): 2 bad input/config, 3 platform, else 1."""
    cls = error if isinstance(error, type) else type(error)
    if issubclass(cls, (InputError, ConfigError)):
        return 2
    if issubclass(cls, (ApiError, TransportError)):
        return 3
    return 1

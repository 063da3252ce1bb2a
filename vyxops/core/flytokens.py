"""Fly tokens as fly-go parses and sends them: the one home for Fly token normalization.

A Fly token string may bundle several comma-separated tokens: macaroons
(``fm1r_``, ``fm1a_``, ``fm2_``) and user tokens (``fo1_…``, or a legacy bare
personal token), as ``fly auth login`` writes them to ``~/.fly/config.yml``.
fly-go (``tokens/tokens.go`` at superfly/fly-go 22d6e51) parses such a string
once — ``StripAuthorizationScheme`` removes any leading ``Bearer``/``FlyV1``
(case-insensitive, repeatedly), ``Parse`` splits on commas, trims each part and
files it by the text before its first ``_`` — and derives per service:

- ``Flaps()``/``Docker()``/``Bubblegum()`` (Machines API, registry password, logs API):
  the macaroons only when there are any, else the user tokens;
- ``GraphQL()``: macaroons and user tokens together ("The GraphQL API is the only
  service that accepts macaroons and OAuth tokens in the same request");
- the ``…Header()`` forms prefix ``FlyV1 `` when any macaroon is present, else ``Bearer ``.

fly-go's api.fly.io client sends ``GraphQLHeader()`` by default and overrides it
with ``BubblegumHeader()`` for ``GET /api/v1/apps/{app}/logs`` (``resource_logs.go``).
"""

from __future__ import annotations

from dataclasses import dataclass

from vyxops.core.errors import register_secret

__all__ = ["FlyTokens", "MACAROON_PREFIXES", "strip_authorization_scheme", "is_logs_path"]

#: The labels (text before the first ``_``) fly-go files as macaroons; anything else is a user token.
MACAROON_PREFIXES = ("fm1r", "fm1a", "fm2")

_SCHEMES = ("bearer", "flyv1")


def strip_authorization_scheme(token: str) -> str:
    """``token`` without leading ``Bearer``/``FlyV1`` schemes, as fly-go's ``StripAuthorizationScheme``.

    Case-insensitive and repeated, so ``Bearer FlyV1 fm2_…`` (a header pasted behind
    another scheme) comes out bare.
    """
    token = token.strip()
    while True:
        scheme, sep, rest = token.partition(" ")
        if not sep or scheme.strip().lower() not in _SCHEMES:
            return token
        token = rest.strip()


def _is_macaroon(part: str) -> bool:
    return part.partition("_")[0] in MACAROON_PREFIXES


@dataclass(frozen=True, repr=False)
class FlyTokens:
    """A parsed Fly token string: its macaroons and its user tokens, in the order given.

    Its repr shows how many of each it holds, never a value.
    """

    macaroons: tuple[str, ...] = ()
    user_tokens: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> FlyTokens:
        """Parse ``text`` as fly-go's ``tokens.Parse``; every part is registered for redaction.

        Empty parts (``a,,b`` or a trailing comma) are dropped: fly-go would keep an
        empty user token and send a dangling comma.
        """
        parts = [part.strip() for part in strip_authorization_scheme(text).split(",")]
        parts = [part for part in parts if part]
        tokens = cls(
            macaroons=tuple(p for p in parts if _is_macaroon(p)),
            user_tokens=tuple(p for p in parts if not _is_macaroon(p)),
        )
        tokens.register()
        return tokens

    @property
    def empty(self) -> bool:
        """Whether no token at all was given."""
        return not self.macaroons and not self.user_tokens

    def flaps(self) -> str:
        """The Machines API / logs API / registry token: macaroons only when there are any, no scheme.

        This is also the registry's Basic password (fly-go's ``Docker()``).
        """
        return ",".join(self.macaroons or self.user_tokens)

    def graphql(self) -> str:
        """GraphQL's token: macaroons and user tokens together, no scheme."""
        return ",".join(self.macaroons + self.user_tokens)

    def flaps_header(self) -> str:
        """``Authorization`` for the Machines API and the logs API."""
        return self._scheme() + self.flaps()

    def graphql_header(self) -> str:
        """``Authorization`` for GraphQL (and fly-go's default on api.fly.io)."""
        return self._scheme() + self.graphql()

    def api_header(self, path: str) -> str:
        """``Authorization`` for a request to api.fly.io at ``path``: the logs API's for logs, else GraphQL's."""
        return self.flaps_header() if is_logs_path(path) else self.graphql_header()

    def register(self) -> None:
        """Register every part and every derived string for redaction (a server may echo any of them)."""
        for value in (*self.macaroons, *self.user_tokens, self.flaps(), self.graphql()):
            register_secret(value)

    def counted(self) -> str:
        """How many parts of each kind it holds, e.g. "2 macaroon(s), 1 user token(s)"; never a value."""
        kinds = {"macaroon": len(self.macaroons), "user token": len(self.user_tokens)}
        return ", ".join(f"{n} {kind}(s)" for kind, n in kinds.items() if n) or "no token"

    def _scheme(self) -> str:
        return "FlyV1 " if self.macaroons else "Bearer "

    def __repr__(self) -> str:
        return f"FlyTokens(<{len(self.macaroons)} macaroons, {len(self.user_tokens)} user tokens redacted>)"

    __str__ = __repr__


def is_logs_path(path: str) -> bool:
    """Whether ``path`` is Fly's logs API, ``[prefix]/api/v1/apps/{app}/logs`` (fly-go sends it the macaroons only).

    A prefix is allowed because ``FLY_API_BASE_URL`` may carry a path.
    """
    parts = path.strip("/").split("/")
    return len(parts) >= 5 and parts[-5:-2] == ["api", "v1", "apps"] and parts[-1] == "logs"

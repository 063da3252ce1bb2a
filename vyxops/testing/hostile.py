"""Inputs that must stay data: markup that would run in a report, and credentials planted where users type."""

from __future__ import annotations

from vyxops.errors import secret_forms

#: Markup that would run if a report rendered it (issue 9: hostile data stays data).
HOSTILE_STRINGS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '"><svg onload=alert(3)>',
    "javascript:alert(4)",
)


def planted_forms(credential: str) -> list[str]:
    """Every way a credential might come back from a platform: raw, base64 (both alphabets), URL-encoded."""
    return sorted(f for f in secret_forms(credential) if len(f) >= 8)

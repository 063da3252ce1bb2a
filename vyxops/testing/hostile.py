"""Inputs that must stay data: markup that would run in a report, and credentials planted where users type."""

from __future__ import annotations

import json

from vyxops.core.errors import secret_forms

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


#: Text a platform may hand back in any string field (issue 19), by what it tries: each must stay data, never
#: crash a verb, reach a URL, run in a terminal or render as Markdown. Shared with `make faults` ("hostile text
#: per field"): plant each value in a field's answer as JSON (:func:`as_json_text`: a lone surrogate can only
#: travel as a ``\ud800`` escape).
HOSTILE_TEXT: dict[str, str] = {
    "lone_surrogate": "a\ud800b",
    "low_surrogate": "a\udfffb",
    "nul": "a\x00b",
    "bell": "a\x07b",
    "c1_csi": "a\x9b31mb",
    "ansi_colour": "\x1b[31mred\x1b[0m",
    "osc8_link": "\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07",
    "carriage_return_forge": "ok\rvyxops: all well",
    "newline_forge": "ok\nvyxops: all well",
    "bidi_override": "\u202eevil\u202c",
    "bidi_isolate": "\u2067evil\u2069",
    "markdown_link": "[click](http://evil.example/)",
    "markdown_image": "![](http://pixel.example/p.gif)",
    "markdown_emphasis_code_pipe": "**bold** `code` a|b",
    "html": "<img src=x onerror=alert(1)>",
}

#: Image references a row, a release or a secret may hold that must never reach a registry URL.
HOSTILE_IMAGE_REFS: dict[str, str] = {
    "path_traversal": "registry.fly.io/x/../../../v1/apps/vyx-app",
    "control_character": "registry.fly.io/vyx-app:st\x07ub",
    "query": "registry.fly.io/vyx-app:stub?x=1",
    "fragment": "registry.fly.io/vyx-app#stub",
    "space": "registry.fly.io/vyx-app:st ub",
    "upper_case_repository": "registry.fly.io/Vyx-App:stub",
    "bad_digest": "registry.fly.io/vyx-app@sha256:../../x",
    "newline": "registry.fly.io/vyx-app:stub\n",
}


def as_json_text(value: str) -> str:
    """``value`` as it travels inside a JSON string (without the quotes): ASCII escapes, lone surrogates kept."""
    return json.dumps(value)[1:-1]

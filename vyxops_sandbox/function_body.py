"""``GET /v1/projects/{ref}/functions/{slug}/body``: a function's source, as ``supabase functions download`` reads it.

What the Supabase CLI (2.117.0, the Go sidecar's ``internal/functions/download/download.go``,
``downloadWithServerSideUnbundle``) asks for and reads: ``Accept: multipart/form-data``; a
``multipart/*`` answer with an optional ``metadata`` part (JSON ``{"deno2_entrypoint_path": …}``)
and one part per file whose ``filename`` (or a ``Supabase-Path`` header) is its path in the
bundle. Each file lands at ``supabase/functions/<slug>/`` relative to the entrypoint. The parts
here are written as the CLI's own test double writes them (``download_test.go``,
``mockMultipartBody``). Without that Accept header the real API answers the eszip bundle
(``--legacy-bundle``/``--use-docker``), which the sandbox does not model: it answers the
spec's documented 500 for it.

The sandbox's functions have no source: their behaviour is modelled in Python
(:mod:`vyxops_sandbox.functions`, per the scenario's pipeline). The body is therefore a
**stand-in**: one ``index.ts`` that says so in its first line and sketches what the model
does (the image secret and its fallback, the Fly token secret, a Machines API create), so a
person who downloads it during an incident reads the same contract the sandbox follows.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from vyxops_sandbox.world import World

__all__ = ["MULTIPART", "STANDIN_MARK", "function_source", "multipart_body"]

MULTIPART = "multipart/form-data"
STANDIN_MARK = "// vyxops sandbox stand-in:"


def function_source(world: World, slug: str) -> str:
    """A minimal TypeScript source for ``slug`` that says it is a stand-in and what the modelled function does."""
    p = world.pipeline
    app = next(iter(world.state["fly"]["apps"]), "app")
    fallback = (p.image_fallback or "").replace("{app}", app)
    image = f'Deno.env.get("{p.image_secret}")' if p.image_secret else "undefined"
    return "\n".join(
        [
            f"{STANDIN_MARK} the sandbox models {slug} in Python and keeps no source.",
            "// This sketch follows the model: the image secret, else the fallback; one Machines API create.",
            "Deno.serve(async (req) => {",
            "  const body = await req.json();",
            f"  const image = {image} || {json.dumps(fallback)};",
            '  if (!image) return Response.json({ error: "no image configured" }, { status: 500 });',
            f'  const res = await fetch("https://api.machines.dev/v1/apps/{app}/machines", {{',
            '    method: "POST",',
            f'    headers: {{ Authorization: `Bearer ${{Deno.env.get("{p.fly_token_secret}")}}` }},',
            "    body: JSON.stringify({ region: body.region, config: { image, auto_destroy: true,",
            '      restart: { policy: "no" }, metadata: { user_id: String(body.user_id) } } }),',
            "  });",
            "  const machine = await res.json();",
            "  if (!res.ok) return Response.json({ error: machine.error }, { status: 500 });",
            "  return Response.json({ machine_id: machine.id });",
            "});",
            "",
        ]
    )


def multipart_body(entrypoint_url: str, source: str, boundary: str) -> bytes:
    """The multipart answer: the ``metadata`` part, then ``index.ts`` at the entrypoint's path in the bundle."""
    entry = urlparse(entrypoint_url).path or "/source/index.ts"
    parts = [
        ('form-data; name="metadata"', "application/json", json.dumps({"deno2_entrypoint_path": entry}) + "\n"),
        (f'form-data; name="file"; filename="{entry}"', "application/typescript", source),
    ]
    out = []
    for disposition, content_type, text in parts:
        out.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n{text}\r\n"
        )
    out.append(f"--{boundary}--\r\n")
    return "".join(out).encode()

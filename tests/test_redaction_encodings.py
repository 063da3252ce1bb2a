"""Issue 19: every sandbox credential, in every encoding, planted in every source that reaches an artefact, is
masked in every artefact (HTML, notebook, postmortem, Parquet, JSON, the audit log, stderr) and in a captured bundle.

The plantings and the scan are vyxops.testing.credentials: the scan unescapes JSON and URL escapes and decodes every
base64/base64url/hex run, apart from vyxops.core.redaction, so it finds a credential however it is written.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import httpx
import pytest

from vyxops.core import errors
from vyxops.fetch.http import Api, make_client
from vyxops.shell.cli import main
from vyxops.testing.clock import FakeClock
from vyxops.testing.credentials import CREDENTIAL_ENCODINGS, artefact_text, encode_credential, leaked_credentials
from vyxops_sandbox.functions import function_log
from vyxops_sandbox.platform import FlyPlatform, Platform, SupabasePlatform, credentials_for
from vyxops_sandbox.world import World

NAME = "planted-encodings"
APP = "vyx-app"
MACHINE = "5683732efe3208"
KINDS = (
    "fly_api_token",
    "fly_registry_password",
    "supabase_service_role_key",
    "supabase_anon_key",
    "supabase_access_token",
)
#: Each platform flavour: a legacy Fly token and JWT keys (no shape for the token: only registration finds it),
#: and a macaroon token with sb_secret keys.
FLAVOURS = {"legacy-jwt": ("legacy", "jwt"), "macaroon-sb_secret": ("macaroon", "sb_secret")}
#: What the issue names as leaking before this change (raw and plain base64 were masked already).
NAMED_BY_THE_ISSUE = (
    "hex",
    "blob-offset-1",
    "blob-offset-2",
    "jwt-payload",
    "basic",
    "json-escaped",
    "url",
)


def sandbox_credentials(flavour: str) -> dict[str, str]:
    token, key = FLAVOURS[flavour]
    return credentials_for(NAME, Platform(SupabasePlatform(api_key=key), FlyPlatform(token=token)))


def every_credential() -> list[bytes]:
    return sorted({v.encode() for f in FLAVOURS for k, v in sandbox_credentials(f).items() if k in KINDS})


def leaks(text: str | bytes) -> bool:
    return leaked_credentials(text.encode() if isinstance(text, str) else text, every_credential())


def register_all() -> None:
    """What a session over either flavour registers (the registry password is registered by its auth)."""
    for flavour in FLAVOURS:
        for kind in KINDS:
            errors.register_secret(sandbox_credentials(flavour)[kind])


# --------------------------------------------------------------------------- redact(), one text at a time


@pytest.mark.parametrize("encoding", sorted(CREDENTIAL_ENCODINGS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_redact_masks_a_credential_in_every_encoding(flavour: str, kind: str, encoding: str) -> None:
    """A credential written in any encoding, inside a log line or a JSON body, comes out of redact() masked."""
    register_all()
    planted = encode_credential(sandbox_credentials(flavour)[kind], encoding)
    for text in (f"auth failed for {planted} (retrying)", json.dumps({"detail": planted}), f"token={planted}&x=1"):
        assert leaks(text)  # the scan sees it before ...
        masked = errors.redact(text)
        assert not leaks(masked), (encoding, masked[:160])  # ... and not after
        assert "[REDACTED]" in masked


@pytest.mark.parametrize("encoding", NAMED_BY_THE_ISSUE)
def test_an_error_body_holding_a_credential_in_any_encoding_is_masked_in_the_error(encoding: str) -> None:
    """An error body echoing a credential (hex, a blob, a JWT payload, Basic, JSON- or URL-escaped) is masked in the
    ApiError's message and excerpt, which reach stderr and findings.json's gaps."""
    register_all()
    planted = encode_credential(sandbox_credentials("legacy-jwt")["fly_api_token"], encoding)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": f"bad request: {planted}"})

    client = make_client("fly-machines", "https://api.example.test", None, transport=httpx.MockTransport(handler))
    api = Api(client, "fly-machines", clock=FakeClock(), rng=random.Random(7))
    with pytest.raises(errors.ApiError) as info:
        api.request("GET", "/v1/apps/vyx-app/machines")
    assert not leaks(f"{info.value}\n{info.value.body_excerpt}\n{info.value!r}")


def test_ordinary_platform_text_is_left_alone() -> None:
    """Digests, image references, machine ids, ULIDs and a PNG's base64 are not credentials: redact() keeps them."""
    register_all()
    png = base64.b64encode(bytes(range(256)) * 40).decode()
    text = (
        "registry.fly.io/vyx-app:deployment-01K6JV132H7B7Y5PP8Y5QSR23X@sha256:"
        + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        + f" machine {MACHINE} exited 0; <img src='data:image/png;base64,{png}'> 100% done a%20b \\u00e9"
    )
    assert errors.redact(text) == text


# --------------------------------------------------------------------------- every source, every artefact


def scenario(tmp_path: Path, flavour: str) -> Path:
    token, key = FLAVOURS[flavour]
    path = tmp_path / f"{NAME}.yaml"
    path.write_text(
        f"""name: {NAME}
now: 2025-10-02T17:25:00Z
platform: {{fly: {{token: {token}}}, supabase: {{api_key: {key}}}}}
fly: {{org: personal, apps: [{APP}]}}
supabase: {{project_ref: vyxsandboxprojectref, machines_table: machines}}
pipeline: {{table: {{columns: {{error: error}}}}}}  # a table that keeps an error column, to plant text in
images:
  registry.fly.io/{APP}:stub: {{behaviour: exit, exit_code: 0, after_s: 2, pushed_at: 2025-10-01T09:00:00Z}}
steps:
  - at: 2025-10-01T21:40:00Z
    set_secret: {{name: DOCKER_IMAGE, value: registry.fly.io/{APP}:stub}}
  - at: 2025-10-02T16:11:02Z
    deploy: {{app: {APP}, image: registry.fly.io/{APP}:deployment-01K6JV132H7B7Y5PP8Y5QSR23X}}
  - at: 2025-10-02T16:18:40Z
    invoke: {{function: provision-machine, body: {{user_id: u-42, region: sjc}}, machine_id: {MACHINE}}}
"""
    )
    return path


def plantings(flavour: str) -> list[str]:
    creds = sandbox_credentials(flavour)
    return [encode_credential(creds[kind], encoding) for kind in KINDS for encoding in CREDENTIAL_ENCODINGS]


def plant(world: World, values: list[str]) -> None:
    """Each value in a Fly log line, a function log line, the row's error column and the release's description."""
    at = world.now_ms - 20 * 60_000  # after the invoke, inside the investigation's window
    fn = world.function("provision-machine")
    assert fn is not None
    for i, value in enumerate(values):
        world.fly_log(APP, at + i, f"auth failed for {value}", MACHINE, "sjc", "error", "app")
        function_log(world, fn, "", at + i, f"upstream answered {value}", "error")
    world.db_update("machines", {"fly_machine_id": MACHINE}, {"error": " ".join(values)})
    app = world.app(APP)
    assert app is not None
    app["releases"][0]["description"] = "Deploy " + " ".join(values)
    world.save()


def leaking_artefacts(root: Path) -> list[str]:
    suffixes = {".html", ".ipynb", ".md", ".parquet", ".json", ".jsonl", ".log", ".txt"}
    found = [p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes and p.name != "state.json"]
    assert found
    return sorted(str(p.relative_to(root)) for p in found if leaks(artefact_text(p)))


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_every_encoding_in_every_source_is_masked_in_every_artefact(
    flavour: str, sandbox_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Investigate and a remediate dry run over a world holding each credential in each encoding in each source:
    no artefact, no printed line holds any of them."""
    path = scenario(tmp_path, flavour)
    world = World.load(str(path), sandbox_env)
    plant(world, plantings(flavour))
    out = tmp_path / "out"
    assert main(["investigate", "--scenario", str(path), "--app", APP, "--out", str(out / "investigate")]) == 0
    assert main(["remediate", "--scenario", str(path), "--app", APP, "--out", str(out / "remediate")]) == 0
    if flavour == "legacy-jwt":  # the token no shape finds: audit, and an apply's result.json and audit log
        main(["audit", "--scenario", str(path), "--app", APP, "--json", "--out", str(out / "audit")])
        apply = ["remediate", "--scenario", str(path), "--app", APP, "--apply", "--confirm", APP]
        main([*apply, "--out", str(out / "apply")])
        assert (out / "audit" / "audit.json").is_file() and (out / "apply" / "result.json").is_file()
        assert not leaks((tmp_path / "audit.jsonl").read_bytes())
    printed = capsys.readouterr()
    assert {p.suffix for p in out.rglob("*")} >= {".html", ".ipynb", ".md", ".parquet", ".json"}
    assert leaking_artefacts(out) == []
    assert not leaks(printed.out + printed.err)


# --------------------------------------------------------------------------- capture and replay


def escaped_token_world(sandbox_env: Path, tmp_path: Path) -> tuple[Path, str]:
    """A legacy-token world (no token shape: only registration finds it) whose app logged the Fly token with one
    JSON-escaped character, as an app's JSON logger writes it."""
    path = scenario(tmp_path, "legacy-jwt")
    world = World.load(str(path), sandbox_env)
    plant(world, plantings("legacy-jwt"))  # and every other planting, in every source the bundle records
    token = world.credentials["fly_api_token"]
    plant_lines = [encode_credential(token, "json-escaped"), "MARKER-RAW-TOKEN-GOES-HERE"]
    at = world.now_ms - 20 * 60_000
    for i, line in enumerate(plant_lines):
        world.fly_log(APP, at + i, f'{{"msg":"auth","token":"{line}"}}', MACHINE, "sjc", "error", "app")
    world.save()
    return path, token


def test_capture_masks_a_json_escaped_token_and_its_replay_never_prints_it(sandbox_env: Path, tmp_path: Path) -> None:
    """`capture` redacts the parsed answers, so the bundle holds no form of the token, and the replay's report
    none either (before: the bundle kept the escaped token and the replay wrote it into investigate.html)."""
    path, token = escaped_token_world(sandbox_env, tmp_path)
    bundle = tmp_path / "bundle"
    assert main(["capture", "--scenario", str(path), "--app", APP, "--out", str(bundle)]) == 0
    assert leaking_artefacts(bundle) == []
    assert token not in (bundle / "bundle.json").read_text()  # it keeps digests, never the credential
    out = tmp_path / "replayed"
    assert main(["investigate", "--target", f"bundle:{bundle}", "--app", APP, "--out", str(out)]) == 0
    assert leaking_artefacts(out) == []


def test_replay_masks_the_captured_credentials_a_bundle_still_holds(sandbox_env: Path, tmp_path: Path) -> None:
    """A bundle holding the raw token (one written before this redaction) replays without it: the bundle target
    registers the digests of the credentials it was captured with, and the replay runs with no credentials."""
    path, token = escaped_token_world(sandbox_env, tmp_path)
    bundle = tmp_path / "bundle"
    assert main(["capture", "--scenario", str(path), "--app", APP, "--out", str(bundle)]) == 0
    exchanges = bundle / "exchanges.jsonl"
    lines = []
    for line in exchanges.read_text().splitlines():
        ex = json.loads(line)
        body = base64.b64decode(ex["body_b64"])
        if b"MARKER-RAW-TOKEN-GOES-HERE" in body:
            ex["body_b64"] = base64.b64encode(body.replace(b"MARKER-RAW-TOKEN-GOES-HERE", token.encode())).decode()
        lines.append(json.dumps(ex, sort_keys=True))
    assert token in "".join(base64.b64decode(json.loads(x)["body_b64"]).decode() for x in lines)
    exchanges.write_text("\n".join(lines) + "\n")
    out = tmp_path / "replayed"
    assert main(["investigate", "--target", f"bundle:{bundle}", "--app", APP, "--out", str(out)]) == 0
    html = (out / "investigate.html").read_text()
    assert "MARKER" not in html and token not in html
    assert leaking_artefacts(out) == []
    exchanges.unlink()  # the tampered bundle is this test's input, not an artefact vyxops wrote


# --------------------------------------------------------------------------- the pieces


def test_a_bundle_body_is_redacted_as_parsed_and_kept_byte_for_byte_when_clean() -> None:
    """A JSON body whose string holds a JSON-escaped token is rewritten masked; a JSON-lines body line by line;
    a clean body (a manifest, whose digest is its bytes) is kept as it came."""
    from vyxops.fetch.recording import redacted_body

    register_all()
    token = sandbox_credentials("legacy-jwt")["fly_api_token"]
    escaped = ('{"message": "auth ' + encode_credential(token, "json-escaped") + '"}').encode()
    assert token.encode() not in escaped and leaks(escaped)
    masked = redacted_body(escaped)
    assert json.loads(masked)["message"] == "auth [REDACTED]" and not leaks(masked)
    lines = b'{"a": "ok"}\n' + escaped + b"\n"
    assert not leaks(redacted_body(lines)) and json.loads(redacted_body(lines).splitlines()[0]) == {"a": "ok"}
    manifest = b'{ "schemaVersion": 2,\n  "config": {"digest": "sha256:' + b"ab" * 32 + b'"} }'
    assert redacted_body(manifest) is manifest


def test_a_registered_digest_masks_the_string_it_is_the_digest_of() -> None:
    """What the bundle target registers: a credential known only by its SHA-256 and length is masked as is,
    escaped or encoded; a string of the same length with another digest is not."""
    from vyxops.core.redaction import register_secret_digest, secret_digest

    secret = "digest-only-credential-0b9f6c1d2e3a4f5b"
    register_secret_digest(secret_digest(secret), len(secret))
    for encoding in CREDENTIAL_ENCODINGS:
        planted = encode_credential(secret, encoding)
        assert not leaked_credentials(errors.redact(f"said {planted} then").encode(), [secret.encode()]), encoding
    other = "digest-only-credential-0b9f6c1d2e3a4f5c"
    assert errors.redact(f"said {other}") == f"said {other}"

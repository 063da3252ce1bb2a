"""Credentials the platforms hand back (in log lines, rows, error bodies) are masked in every artefact."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote

import pytest

from vyxops.shell.cli import main
from vyxops.testing.hostile import planted_forms
from vyxops_sandbox.world import credentials_for

NAME = "planted-credentials"


def artefacts(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.suffix in {".html", ".ipynb", ".json", ".md", ".parquet"}]


def test_credentials_in_platform_data_never_reach_an_artefact(sandbox_env: Path, tmp_path: Path) -> None:
    """The service key as a user id, the Fly token base64'd in a row error, the access token URL-encoded: all masked."""
    creds = credentials_for(NAME)
    key, fly, access = creds["supabase_service_role_key"], creds["fly_api_token"], creds["supabase_access_token"]
    scenario = tmp_path / f"{NAME}.yaml"
    scenario.write_text(
        f"""name: {NAME}
now: 2025-10-02T17:25:00Z
fly: {{org: personal, apps: [vyx-app]}}
supabase: {{project_ref: vyxsandboxprojectref, machines_table: machines}}
pipeline: {{table: {{columns: {{error: error}}}}}}  # a table that keeps an error column, to plant text in
images:
  registry.fly.io/vyx-app:stub: {{behaviour: exit, exit_code: 0, after_s: 2}}
steps:
  - at: 2025-10-02T16:00:00Z
    deploy: {{app: vyx-app, image: registry.fly.io/vyx-app:deployment-01K6JV132H7B7Y5PP8Y5QSR23X}}
  - at: 2025-10-02T16:10:00Z
    set_secret: {{name: DOCKER_IMAGE, value: registry.fly.io/vyx-app:stub}}
  - at: 2025-10-02T16:18:40Z
    invoke:
      function: provision-machine
      body: {{user_id: "{key}", region: "{quote(access, safe="")}"}}
      machine_id: 5683732efe3208
  - at: 2025-10-02T16:30:00Z
    db_update:
      table: machines
      match: {{fly_machine_id: 5683732efe3208}}
      set: {{error: "{base64.b64encode(fly.encode()).decode()}"}}
"""
    )
    out = tmp_path / "out"
    assert main(["investigate", "--scenario", str(scenario), "--app", "vyx-app", "--out", str(out)]) == 0
    found = artefacts(out)
    assert {p.suffix for p in found} >= {".html", ".ipynb", ".json", ".md", ".parquet"}
    forms = [f for c in (key, fly, access) for f in planted_forms(c)]
    for path in found:
        data = path.read_bytes()
        leaked = [f for f in forms if f.encode() in data]
        assert not leaked, f"{path.name} holds a credential form"


@pytest.mark.parametrize("credential", ["sbp_0123456789abcdef0123456789abcdef", "fm2_lJPECAAAAAAAAMiYxBDf0123456789"])
def test_every_encoded_form_of_a_registered_credential_is_masked(credential: str) -> None:
    """register_secret masks the value, its base64 forms and its URL-encoded forms inside any text."""
    from vyxops.core.errors import redact, register_secret

    register_secret(credential)
    for form in planted_forms(credential):
        assert form not in redact(f"body: {{'detail': '{form}'}}"), form


@pytest.mark.parametrize("size", [3, 30_000])
def test_a_frame_small_or_large_has_each_credential_cell_masked_and_the_rest_untouched(size: int) -> None:
    """make_frame searches the cells as one text, then each column, then each cell of a column hit;
    a cell that is not a string is searched as the text its column will hold."""
    import pandas as pd

    from vyxops.core.errors import register_secret
    from vyxops.fetch.frames import make_frame

    planted = "a-registered-credential-0123456789"
    register_secret(planted)
    cells: list[object] = [f"line {i}" for i in range(size)]
    cells[1] = f"config says {planted}"
    cells[-1] = "Authorization: Bearer sbp_0123456789abcdef0123456789abcdef"
    cells.append(None)
    cells.append({"env": {"TOKEN": planted}})  # an API's object where a string was expected
    df = make_frame("fly_logs", [{"app": "a", "message": m, "level": "info"} for m in cells])
    out = df["message"]
    assert planted not in out[1] and "[REDACTED]" in out[1]
    assert "sbp_" not in out[size - 1] and pd.isna(out[size])
    assert planted not in out[size + 1] and "TOKEN" in out[size + 1]
    assert out[0] == "line 0" and len(out) == size + 2 and (df["level"] == "info").all()


def test_a_text_without_any_tokens_marker_is_not_searched_and_every_token_shape_has_one() -> None:
    """may_hold_secret is the literal scan before the regex: it must say yes to every token shape
    the regex masks (or a cell would keep its token), and no to an ordinary log line."""
    from vyxops.core.errors import may_hold_secret, redact

    shapes = [
        "sbp_0123456789abcdef0123",
        "fm2_lJPECAAAAAAAAMiYxBDf0123456789",
        "fm1r_lJPECAAAAAAAAMiYxBDf0123456789",
        "FlyV1 abc,def",
        "sb_secret_0123456789abcdefXYZ",
        "sb_publishable_0123456789abcdefXYZ",
        "eyJhbGciOiJI.eyJzdWIiOiIx.sig",
        "BeArEr abcdefgh12345",
    ]
    for shape in shapes:
        text = f"said: {shape} ok"
        assert redact(text) != text, shape  # the regex masks it ...
        assert may_hold_secret(text), shape  # ... so the scan before it must not skip it
    assert not may_hold_secret("machine 148e started: registry.fly.io/app:deployment-01J, exit 0")


def test_make_frame_masks_a_credential_in_any_string_column_and_leaves_clean_cells_alone() -> None:
    """make_frame searches all of a frame's string cells at once; a hit in any column is masked in that cell."""
    import pandas as pd

    from vyxops.core.errors import register_secret
    from vyxops.fetch.frames import make_frame

    planted = "another-registered-credential-9876543210"
    register_secret(planted)
    rows = [
        {"id": 1, "user_id": "u-1", "status": "running", "error": None, "machine_id": "m1"},
        {"id": 2, "user_id": "u-2", "status": "error", "error": f"boom {planted}", "machine_id": 42},
    ]
    df = make_frame("machine_rows", rows)
    assert planted not in df.loc[1, "error"] and "[REDACTED]" in df.loc[1, "error"]
    assert df["user_id"].tolist() == ["u-1", "u-2"] and df["machine_id"].tolist() == ["m1", "42"]
    assert pd.isna(df.loc[0, "error"]) and str(df["error"].dtype) == "string"

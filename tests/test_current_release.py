"""The current release is Fly's word (GraphQL ``currentReleaseUnprocessed``), not an inference.

flyctl and fly-go never infer it: fly-go's GetAppCurrentReleaseMachines and LatestImage ask
``app { currentReleaseUnprocessed { … imageRef } }`` (resource_releases.go, resource_images.go),
and flyctl deploys that imageRef on a restart-only deploy such as ``fly secrets set``
(internal/command/deploy/machines.go setImg). A deploy interrupted mid-rollout is marked
``interrupted`` and nothing is undone (machines_deploymachinesapp.go), so Fly's current release
can be a release that is not ``complete``: the newest-complete rule then names the wrong one.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from vyxops.act.fixes import plan_fixes
from vyxops.analysis.investigate import Investigation, investigate
from vyxops.core import config
from vyxops.fetch import frames
from vyxops.fetch.bundle import FixedClock
from vyxops.fetch.clients.fly import RELEASES_QUERY, RELEASES_WITH_CURRENT_QUERY
from vyxops.fetch.http import RetryPolicy
from vyxops.fetch.recording import exchange_key
from vyxops.fetch.session import Session, build_session, open_session
from vyxops.fetch.targets import Credentials, Opened
from vyxops.shell.cli import main

STORY = Path(__file__).parent / "scenarios" / "deploys-interrupted-rollout-secret-on-stub.yaml"
APP = "vyx-app"
V1 = "registry.fly.io/vyx-app:deployment-01M6V1RELEASE0NE0000000000V1"
V2 = "registry.fly.io/vyx-app:deployment-01M6V2RELEASETW00000000000V2"
# fly-go resource_images.go LatestImage, as flyctl sends it before a restart-only deploy.
LATEST_IMAGE_QUERY = (
    "query LatestImage($appName:String!) { app(name:$appName) { currentReleaseUnprocessed { id version imageRef } } }"
)


def _investigate(sandbox_dir: Path) -> Investigation:
    with open_session("sandbox", scenario=STORY, sandbox_dir=sandbox_dir) as s:
        return investigate(s, APP)


def test_an_interrupted_rollout_stays_fly_s_current_release(tmp_path: Path) -> None:
    """The sandbox answers fly-go's LatestImage query, and REST releases/current, with the interrupted v2."""
    with open_session("sandbox", scenario=STORY, sandbox_dir=tmp_path) as s:
        body = s.fly.api.get_json(
            "/graphql", method="POST", json={"query": LATEST_IMAGE_QUERY, "variables": {"appName": APP}}
        )
        rest = s.fly.api.get_json(f"/api/v1/apps/{APP}/releases/current")
        statuses = {n["version"]: n["status"] for n in s.fly.releases(APP)}
    assert body == {"data": {"app": {"currentReleaseUnprocessed": {"id": rest["id"], "version": 2, "imageRef": V2}}}}
    assert statuses == {2: "interrupted", 1: "complete"}


def test_investigation_and_pin_use_fly_s_current_release_after_an_interrupted_deploy(tmp_path: Path) -> None:
    """The secret is judged against v2, Fly's current release, and PIN_SECRET_TO_RELEASE pins v2's image,
    not v1's (the newest complete release); the finding and the plan say the word is Fly's."""
    inv = _investigate(tmp_path / "sandbox")
    releases = inv.evidence.releases
    assert releases.attrs["current_from"] == "platform"
    assert releases.loc[releases["current"].astype(bool), "version"].tolist() == [2]
    assert inv.root is not None and inv.root.code == "SECRET_IMAGE_NOT_CURRENT_RELEASE"
    assert "release v2's image" in inv.root.title, inv.root.title
    said = [e["detail"] for e in inv.root.evidence if e["source"] == "fly.releases"]
    assert said == [f"current release v2 runs {V2}; current per Fly (currentReleaseUnprocessed)"]
    plan = plan_fixes(inv, audit_log=tmp_path / "audit.jsonl")
    pins = [a for a in plan.actions if a.code == "PIN_SECRET_TO_RELEASE"]
    assert [a.desired["ref"] for a in pins] == [V2]
    assert "release v2, current per Fly" in pins[0].new


def _as_older_bundle(bundle: Path) -> int:
    """Rewrite ``bundle`` as vyxops captured it before it asked for the current release: the releases
    query `fly releases` sends, answered without ``currentRelease``. Returns how many exchanges changed."""
    combined = {
        exchange_key(_graphql(RELEASES_WITH_CURRENT_QUERY, limit)): exchange_key(_graphql(RELEASES_QUERY, limit))
        for limit in (10, 25, 50)
    }
    lines = (bundle / "exchanges.jsonl").read_text().splitlines()
    out, changed = [], 0
    for line in lines:
        ex: dict[str, Any] = json.loads(line)
        if ex["key"] in combined:
            body = json.loads(base64.b64decode(ex["body_b64"]))
            body["data"]["app"].pop("currentRelease")
            ex["key"] = combined[ex["key"]]
            ex["body_b64"] = base64.b64encode(json.dumps(body).encode()).decode()
            changed += 1
        out.append(json.dumps(ex, sort_keys=True))
    (bundle / "exchanges.jsonl").write_text("\n".join(out) + "\n")
    return changed


def _graphql(query: str, limit: int) -> httpx.Request:
    return httpx.Request(
        "POST", "https://api.fly.io/graphql", json={"query": query, "variables": {"appName": APP, "limit": limit}}
    )


def _root_release_detail(out: Path) -> str:
    doc = json.loads((out / "findings.json").read_text())
    assert doc["root_cause"]["code"] == "SECRET_IMAGE_NOT_CURRENT_RELEASE", doc["root_cause"]
    root = next(f for f in doc["findings"] if f["code"] == "SECRET_IMAGE_NOT_CURRENT_RELEASE")
    return next(str(e["detail"]) for e in root["evidence"] if e["source"] == "fly.releases")


def test_a_bundle_replays_fly_s_current_release_and_an_older_one_falls_back_saying_so(
    sandbox_env: Path, tmp_path: Path
) -> None:
    """A bundle holds Fly's answer; one captured before vyxops asked replays with the inference, and says so."""
    bundle = tmp_path / "bundle"
    assert main(["capture", "--scenario", str(STORY), "--app", APP, "--out", str(bundle)]) == 0
    assert main(["investigate", "--target", f"bundle:{bundle}", "--app", APP, "--out", str(tmp_path / "new")]) == 0
    assert _root_release_detail(tmp_path / "new").endswith("; current per Fly (currentReleaseUnprocessed)")

    assert _as_older_bundle(bundle) >= 1
    out = tmp_path / "old"
    assert main(["investigate", "--target", f"bundle:{bundle}", "--app", APP, "--out", str(out)]) == 0
    detail = _root_release_detail(out)
    assert detail.startswith(f"current release v1 runs {V1}; current by inference"), detail
    assert "not in the evidence bundle" in detail, detail


NODES = [
    {"id": "r2", "version": 2, "status": "interrupted", "imageRef": V2, "createdAt": "2026-11-04T10:00:00Z"},
    {"id": "r1", "version": 1, "status": "complete", "imageRef": V1, "createdAt": "2026-11-04T08:00:00Z"},
]


def _session(combined: dict[str, Any], asked: list[str]) -> Session:
    """Real clients over a MockTransport: the combined query gets ``combined``, `fly releases`'s own the nodes."""

    def handler(request: httpx.Request) -> httpx.Response:
        query = json.loads(request.content)["query"]
        asked.append(query)
        if query == RELEASES_QUERY:
            return httpx.Response(200, json={"data": {"app": {"releases": {"nodes": NODES}}}})
        return httpx.Response(200, json=combined)

    opened = Opened(
        opener="mock",
        label="mock",
        description="mock transport",
        credentials=Credentials("legacy-token-0000000000000000", "sb_secret_" + "a" * 32, "sbp_" + "a" * 40,
                                "mockprojectref0001"),
        clock=FixedClock(0.0),
        supabase_url="https://mockprojectref0001.supabase.co",
        transport=httpx.MockTransport(handler),
    )  # fmt: skip
    return build_session(config.parse_target("live"), opened, retry=RetryPolicy(max_attempts=1))


@pytest.mark.parametrize(
    ("combined", "current", "source", "note", "queries"),
    [
        (  # Fly's word, in the same round trip
            {"data": {"app": {"releases": {"nodes": NODES}, "currentRelease": {"id": "r2", "version": 2,
                                                                              "status": "interrupted",
                                                                              "imageRef": V2}}}},
            2, "platform", "", 1,
        ),
        (  # the field answered null: the inference, saying so
            {"data": {"app": {"releases": {"nodes": NODES}, "currentRelease": None}}},
            1, "inferred", "currentReleaseUnprocessed: null", 1,
        ),
        (  # an API whose schema lacks the field: `fly releases`'s own query, then the inference
            {"data": None, "errors": [{"message": "Field 'currentReleaseUnprocessed' doesn't exist on type 'App'"}]},
            1, "inferred", "currentReleaseUnprocessed: the API did not answer the field", 2,
        ),
    ],
)  # fmt: skip
def test_releases_frame_takes_fly_s_current_release_and_falls_back_saying_why(
    combined: dict[str, Any], current: int, source: str, note: str, queries: int
) -> None:
    """``current`` is Fly's currentReleaseUnprocessed; null or an unknown field falls back to the newest complete
    release, and the frame's attrs say which was used and why."""
    asked: list[str] = []
    with _session(combined, asked) as s:
        df = frames.fetch_releases(s, APP)
    assert df.loc[df["current"].astype(bool), "version"].tolist() == [current]
    assert df.loc[df["runs_image"].astype(bool), "version"].tolist() == [current]
    assert (df.attrs["current_from"], df.attrs["current_note"]) == (source, note)
    assert asked[0] == RELEASES_WITH_CURRENT_QUERY and len(asked) == queries

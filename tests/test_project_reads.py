"""A run's project-wide reads: a read the platform never answered is not waited out twice in one run."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from vyxops.analysis.evidence import ProjectReads, quietly
from vyxops.core.errors import ApiError, TransportError


class Fly:
    def __init__(self, error: Exception) -> None:
        self.error, self.calls = error, 0

    def list_machines(self, app: str, **_: Any) -> list[dict[str, Any]]:
        self.calls += 1
        raise self.error


class Session:
    def __init__(self, fly: Fly) -> None:
        self.fly = fly

    def now(self) -> pd.Timestamp:
        return pd.Timestamp("2026-03-01T12:00:00Z")


def test_a_read_that_timed_out_ahead_is_not_made_again_by_the_evidence() -> None:
    """Read ahead (discovery), then by the evidence: a hang on every attempt would cost the retries' time twice
    (issue 19's harness: a machines list hanging every attempt ran past 200 s). The second asker gets the same
    error at once."""
    fly = Fly(TransportError("timed out after 4 attempts", platform="fly-machines", method="GET", path="/v1/apps"))
    reads = ProjectReads(Session(fly))
    assert quietly(lambda: reads.listed("vyx-app"))() is None  # the read ahead swallows it
    with pytest.raises(TransportError):
        reads.listed("vyx-app")
    assert fly.calls == 1


def test_a_read_refused_for_another_reason_is_made_again() -> None:
    """A 5xx or a rate limit may pass by the time the evidence asks: only an unreachable platform is kept."""
    fly = Fly(ApiError("503", platform="fly-machines", method="GET", path="/v1/apps/x/machines", status=503))
    reads = ProjectReads(Session(fly))
    for _ in range(2):
        with pytest.raises(ApiError):
            reads.listed("vyx-app")
    assert fly.calls == 2


def test_each_app_gets_the_shared_read_as_its_own() -> None:
    """Apps share one read of the project's frames (held once, not once per app); a change one app makes to its
    frame, a value, a column or its attrs, is not seen by another app's."""
    reads = ProjectReads(Session(Fly(AssertionError("no machines read here"))))
    rows = pd.DataFrame({"name": ["IMAGE", "TOKEN"], "digest": ["d1", "d2"]})
    rows.attrs.update({"frame": "secrets", "gaps": []})
    first = reads._once(("secrets",), lambda: rows)
    first.loc[0, "digest"] = "changed"
    first["extra"] = 1
    first.attrs["gaps"].append({"source": "secrets"})
    second = reads._once(("secrets",), lambda: pytest.fail("read twice"))
    assert second["digest"].tolist() == ["d1", "d2"]
    assert list(second.columns) == ["name", "digest"] and second.attrs["gaps"] == []
    assert rows["digest"].tolist() == ["d1", "d2"]

"""PostgREST's failures reach the user typed, like every other platform's (issue 9: no loop, no bare 'None')."""

from __future__ import annotations

from pathlib import Path

import pytest

from vyxops.core.errors import RateLimitedError, TransportError
from vyxops.fetch.http import RetryPolicy
from vyxops.fetch.session import open_session
from vyxops_sandbox.faults import FaultRule, Faults

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01)


def rows_with(tmp_path: Path, rule: FaultRule) -> None:
    with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path, faults=Faults([rule]), retry=FAST) as s:
        s.supabase.select_all("machines")


def test_a_malformed_body_is_a_typed_error_not_an_endless_page_loop(tmp_path: Path) -> None:
    """A 200 whose body is not JSON stops paging with TransportError('malformed response body')."""
    with pytest.raises(TransportError, match="malformed response body"):
        rows_with(tmp_path, FaultRule(kind="malformed", path="/rest/v1/"))


def test_a_timeout_is_a_transport_error_not_a_raw_httpx_exception(tmp_path: Path) -> None:
    """A read timeout on every attempt leaves as TransportError naming supabase-rest."""
    with pytest.raises(TransportError) as caught:
        rows_with(tmp_path, FaultRule(kind="timeout", path="/rest/v1/"))
    assert caught.value.platform == "supabase-rest"


def test_a_429_after_every_retry_is_rate_limited_with_a_message(tmp_path: Path) -> None:
    """Rate limited to the end: RateLimitedError with a status and a hint, never 'ApiError … 429: None'."""
    with pytest.raises(RateLimitedError) as caught:
        rows_with(tmp_path, FaultRule(kind="429", path="/rest/v1/"))
    text = str(caught.value)
    assert "429" in text and ": None" not in text and caught.value.hint

"""What a failed provisioning request's logs say Fly answered, read from statuses and bodies, not sentences.

Every team words its function's logs its own way. What they share is what Fly sends
back, which a function that logs anything about a failed create tends to pass on:
the HTTP status, the JSON body (``{"error": …, "status": …}``, the Machines API's
``ErrorResponse``) or the registry's error code. Those are the signals read here:

=============  ====================================================================
class          what Fly said (checked in the order the platform checks a create)
=============  ====================================================================
token          401/403/404: the function's Fly token was refused (expired, revoked, no access to the app)
rate_limit     429: the Machines API rate-limited the creates
image          ``MANIFEST_UNKNOWN``/``NAME_UNKNOWN``/"failed to get manifest": the image does not resolve
capacity       no room in the region: ``status: insufficient_capacity`` (or
               ``volume_placement_capacity``), 412, or the hosts' "could not reserve resource"
config         another 400/422: the machine's config was refused
fly_error      another status Fly answered (5xx): the platform failed
=============  ====================================================================

Sources: the Machines API's ErrorResponse and its ``main.statusCode`` enum (unknown,
insufficient_capacity, volume_placement_capacity, name_taken) in
reference/fly/machines-openapi3.newer-excerpt.json; fly-go ``flaps/flaps_error.go``
(``regionOOCapacity = "insufficient_capacity"``) and ``flaps.handleAPIError`` (reads
``error`` and ``message``); the 401 body ``Authenticate: token validation error``
(reference/fly/machines-api-error-bodies.observed.json); capacity refusals seen as 412
"insufficient resources", 409 "insufficient memory" and 400 "no capacity"
(Kilo-Org/cloud PRs #412 and #787) and flyctl's own test of "could not reserve
resource for machine: insufficient memory available to fulfill request"
(internal/build/imgsrc/ensure_builder_test.go); 429 retried by flyctl
(internal/flapsutil/retry.go), its body undocumented.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["CLASSES", "Refusal", "read_refusal", "fly_status_in", "json_objects_in"]

#: Refusal classes in the order the platform checks a create (SPEC.md), then the rest.
CLASSES = ("token", "rate_limit", "image", "capacity", "config", "fly_error")
_IMAGE = re.compile(r"MANIFEST_UNKNOWN|NAME_UNKNOWN|failed to get manifest", re.IGNORECASE)
_CAPACITY_STATUS = frozenset({"insufficient_capacity", "volume_placement_capacity"})
_CAPACITY = re.compile(
    r"insufficient[ _](?:resources|memory|capacity|cpu)|could not reserve resource|no capacity|out of capacity",
    re.IGNORECASE,
)
# A status a log line attributes to an HTTP answer: "(400)", "status 429", "Fly API 422:", "said 401",
# "HTTP/1.1 503", "[http 404]" — a three-digit 4xx/5xx right after such a word, or in parentheses.
_STATUS = re.compile(
    r"(?:\b(?:status(?:[ _]?code)?|http(?:/[\d.]+)?|api|fly|error|said|answered|returned|responded|got|code)"
    r"[\s:=#(\[]{0,3}|\()([45]\d\d)\b"
    r"|\b([45]\d\d)[\s:\-]*(?=\{)",  # or right before the body it came with: `… 401 {"error": …}`
    re.IGNORECASE,
)
#: Fly's own words for a token it refused (reference/fly/machines-api-error-bodies.observed.json): its body,
#: not a function's sentence, so it names the class even where the function drops the status.
_TOKEN = re.compile(r"Authenticate: token validation error", re.IGNORECASE)


@dataclass(frozen=True)
class Refusal:
    """What a failed request's text says Fly answered; ``kind`` None: nothing readable."""

    kind: str | None
    status: int | None  # the HTTP status the text attributes to Fly
    error: str | None  # the ``error`` (or ``message``) of a JSON body in the text
    code: str | None  # the body's ``status`` code (e.g. insufficient_capacity)


def json_objects_in(text: str) -> list[dict[str, object]]:
    """Every JSON object embedded in ``text``, in order (each ``{`` that starts one that parses)."""
    decoder = json.JSONDecoder()
    out: list[dict[str, object]] = []
    at = text.find("{")
    while at != -1:
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            at = text.find("{", at + 1)
            continue
        if isinstance(value, dict):
            out.append(value)
        at = text.find("{", end)
    return out


def fly_status_in(text: str, bodies: list[dict[str, object]] | None = None) -> int | None:
    """The first 4xx/5xx status ``text`` attributes to an answer, or one a JSON body states as a number."""
    for body in bodies if bodies is not None else json_objects_in(text):
        for key in ("status", "status_code", "statusCode", "code"):
            value = body.get(key)
            if isinstance(value, int) and 400 <= value < 600:
                return value
    m = _STATUS.search(text)
    return int(m.group(1) or m.group(2)) if m else None


def read_refusal(text: str) -> Refusal:
    """Classify what ``text`` (a failed invocation's log lines) says Fly answered (see the module's table)."""
    bodies = json_objects_in(text)
    status = fly_status_in(text, bodies)
    error = next((str(b.get("error") or b.get("message")) for b in bodies if b.get("error") or b.get("message")), None)
    code = next((str(b["status"]) for b in bodies if isinstance(b.get("status"), str)), None)
    return Refusal(_kind(text, status, code), status, error, code)


def _kind(text: str, status: int | None, code: str | None) -> str | None:
    if status in (401, 403) or _TOKEN.search(text):
        return "token"
    if status == 429:
        return "rate_limit"
    if _IMAGE.search(text):
        return "image"  # before 404: the registry's own "[http 404]" travels inside this body
    if code in _CAPACITY_STATUS or status == 412 or _CAPACITY.search(text):
        return "capacity"
    if status == 404:
        return "token"  # the token cannot see the app: no access, or no such app (PLATFORM.md: 403/404)
    if status in (400, 422):
        return "config"
    if status is not None:
        return "fly_error"
    return None

"""The Machines API refused the creates, or the function failed without saying why: what a person does.

Commands as the CLIs spell them: ``fly tokens create deploy`` prints the token alone on stdout
(superfly/flyctl internal/command/tokens/create.go: ``fmt.Fprintln(io.Out, token)``), so it is passed
to ``supabase secrets set NAME=VALUE --project-ref REF`` in a command substitution and never shows;
``fly platform regions`` lists the regions; ``supabase functions deploy NAME --project-ref REF``
redeploys the function once it retries.
"""

from __future__ import annotations

import re
import shlex

from vyxops.analysis.advice.model import NextStep, Situation, register
from vyxops.core.present import fmt_time_in_text

#: A secret name that holds a Fly token, as teams name them.
# A secret named like a Fly token, and nothing but an environment name: the name goes into a shell command
# (`supabase secrets set "NAME=$(…)"`), so a name a platform answered with quotes, `$(` or spaces is never used.
_FLY_TOKEN_NAME = re.compile(r"(?i)(?=[A-Z_])[A-Z0-9_]*FLY[A-Z0-9_]*(?:TOKEN|KEY)[A-Z0-9_]*")
_DEFAULT_TOKEN_SECRET = "FLY_API_TOKEN"


def _refused(s: Situation) -> str:
    f = s.root.facts
    first, last = fmt_time_in_text(f.get("first"), s.tz), fmt_time_in_text(f.get("last"), s.tz)
    return (
        f"Fly refused {f.get('count')} create(s) of {f.get('function')} between {first} "
        f"and {last} (HTTP {f.get('statuses')}); {f.get('attempts')} still in effect"
    )


def _token_secret(s: Situation) -> tuple[str, str]:
    """The secret the function sends to Fly, and how vyxops knows it."""
    names = [str(n) for n in s.evidence.secrets["name"].dropna().unique() if _FLY_TOKEN_NAME.fullmatch(str(n))]
    if len(names) == 1:
        return names[0], f"the project's only secret named like a Fly token is {names[0]}"
    said = ", ".join(names) if names else "none"
    return _DEFAULT_TOKEN_SECRET, (
        f"which secret {s.place.contract.function} sends to Fly is not known (secrets named like a Fly token: "
        f"{said}); the command says {_DEFAULT_TOKEN_SECRET}: use the name the function reads"
    )


@register(
    "ROTATE_FLY_TOKEN", "Fly refused the function's token: make a new deploy token and set it", "FLY_TOKEN_REJECTED"
)
def rotate_fly_token(s: Situation) -> NextStep | None:
    name, how = _token_secret(s)
    app, fn = s.place.app_arg, s.place.contract.function
    value = f'"{name}=$(fly tokens create deploy --app {app})"'
    return NextStep(
        "ROTATE_FLY_TOKEN",
        f"Make a new Fly deploy token for {s.place.app} and set it as the secret {fn} sends to Fly (a 403/404 "
        "means the token cannot see this app: make it in the app's org); then verify provisioning",
        (f"supabase secrets set {value} --project-ref {s.place.ref_arg}",),
        (s.place.supabase("functions/secrets"), "https://fly.io/tokens"),
        (_refused(s), how),
    )


@register(
    "RETRY_WITH_BACKOFF",
    "the Machines API rate-limited the creates: retry 429s with a backoff in the function",
    "PROVISIONING_RATE_LIMITED",
)
def retry_with_backoff(s: Situation) -> NextStep | None:
    fn = s.place.contract.function
    return NextStep(
        "RETRY_WITH_BACKOFF",
        f"Make {fn} retry a 429 with a backoff (flyctl does) and spread bursts: the Machines API allows 1 create a "
        "second per app, bursts of 3; then redeploy the function. Nothing is wrong with the image or the token",
        (f"supabase functions deploy {shlex.quote(fn)} --project-ref {s.place.ref_arg}",),
        (s.place.supabase(f"functions/{fn}/logs"),),
        (_refused(s),),
    )


@register(
    "PROVISION_IN_ANOTHER_REGION",
    "no capacity in the region: provision elsewhere or retry later",
    "REGION_CAPACITY",
)
def provision_in_another_region(s: Situation) -> NextStep | None:
    region = s.root.facts.get("region")
    where = region if isinstance(region, str) else "the region (the logs do not name it)"
    return NextStep(
        "PROVISION_IN_ANOTHER_REGION",
        f'Provision in another region than {where}, or retry later (fly-go: "Try choosing a different region for '
        'machine creation"): the region the function asks for comes from the request',
        ("fly platform regions", f"fly machines list --app {s.place.app_arg}"),
        (s.place.fly("machines"),),
        (_refused(s),),
    )


@register(
    "READ_FUNCTION_LOGS",
    "the function failed and its logs do not say what Fly answered: read its own logs and its answers",
    "PROVISIONING_REQUEST_FAILED",
)
def read_function_logs(s: Situation) -> NextStep | None:
    f, fn = s.root.facts, s.place.contract.function
    return NextStep(
        "READ_FUNCTION_LOGS",
        f"Read {fn}'s own logs for these invocations (its Logs tab): its console does not say what Fly answered; "
        "the verification canary reads its answer body",
        (),
        (s.place.supabase(f"functions/{fn}/logs"), s.place.supabase(f"functions/{fn}/invocations")),
        (
            f"{fn} answered {f.get('statuses')} to {f.get('count')} request(s) between "
            f"{fmt_time_in_text(f.get('first'), s.tz)} and {fmt_time_in_text(f.get('last'), s.tz)}",
        ),
    )

"""The app's own image fails: roll back to the last release whose machines served, or deploy a fixed image;
a machine outside the releases (a worker started with `fly machine run`) that keeps failing: put it back on an
image that served.

Commands as flyctl spells them (superfly/flyctl, internal/command): ``fly releases --image`` ("Display the Docker
image reference of the release", apps/releases.go); ``fly deploy --image`` redeploys an image without a build
(fly.io/docs/blueprints/rollback-guide: "There's no special rollback command ... redeploy its image directly");
``fly logs --machine ID --no-tail`` (logs/logs.go: "Filter by machine ID", alias --instance; "Do not continually
stream logs"); ``fly machine update ID --image`` (machine/update.go, flag.Image); ``fly machine status ID``.
"""

from __future__ import annotations

import shlex

from vyxops.analysis.advice.model import NextStep, Situation, register, release_said
from vyxops.analysis.advice.served import SERVED_AFTER, ReleaseRecord
from vyxops.analysis.detect.model import Finding
from vyxops.core.present import fmt_time_in_text

MACHINE_ROOTS = ("MACHINE_EXITED_AUTO_DESTROYED", "MACHINE_EXITED", "MACHINE_LAUNCH_FAILED", "MACHINE_RESTART_LOOP")
#: Machines that something other than provisioning made (a worker, a console): the releases do not update them.
NOT_PROVISIONED = ("other",)


def _logs(s: Situation, machine_id: object) -> str:
    return f"fly logs --app {s.place.app_arg} --machine {shlex.quote(str(machine_id))} --no-tail"


def _failing_evidence(s: Situation, cur: ReleaseRecord, failing: str) -> list[str]:
    out = [f"{release_said(cur)} is current and fails: " + ("; ".join(cur.failed[:3]) or failing)]
    if s.root.code in MACHINE_ROOTS:
        out.append(f"root cause {s.root.code}: {s.root.title}")
    return out


def _release_case(s: Situation) -> tuple[ReleaseRecord, ReleaseRecord | None, list[str]] | None:
    """(the current release, the last one that served or None, notes on releases passed over) when the release's
    own image fails and the root is a machine that ran it; else None."""
    cur = s.health.current
    if cur is None or s.root.code not in MACHINE_ROOTS or s.root.facts.get("origin") in NOT_PROVISIONED:
        return None
    if not s.release_fails():
        return None
    good, passed_over = s.health.last_good()
    return cur, good, passed_over


@register(
    "ROLL_BACK_RELEASE",
    "the current release's own image fails and an earlier release's machines served: deploy that release's image",
    *MACHINE_ROOTS,
)
def roll_back_release(s: Situation) -> NextStep | None:
    case = _release_case(s)
    if case is None or case[1] is None:
        return None
    cur, good, passed_over = case
    assert good is not None
    app = s.place.app_arg
    evidence = _failing_evidence(s, cur, s.release_fails() or "")
    evidence.append(f"{release_said(good)} served: " + "; ".join(good.served[:2]))
    evidence += passed_over
    return NextStep(
        "ROLL_BACK_RELEASE",
        f"Roll {s.place.app} back to release v{good.version}, the last release whose machines served: deploy its "
        f"image {good.image} (a new release; no build). Then fix release v{cur.version}'s code before deploying again",
        (f"fly releases --app {app} --image", f"fly deploy --app {app} --image {shlex.quote(good.image)}"),
        (s.place.fly(""), s.place.fly("monitoring")),
        tuple(evidence),
    )


@register(
    "DEPLOY_FIXED_IMAGE",
    "the current release's own image fails and no earlier release's machines served: read why, fix and deploy",
    *MACHINE_ROOTS,
)
def deploy_fixed_image(s: Situation) -> NextStep | None:
    case = _release_case(s)
    if case is None or case[1] is not None:
        return None
    cur, _, passed_over = case
    app, mid = s.place.app_arg, s.root.facts.get("machine_id")
    minutes = int(SERVED_AFTER.total_seconds() // 60)
    evidence = _failing_evidence(s, cur, s.release_fails() or "")
    evidence.append(
        f"no earlier release's machines served (none reached started with its row running, or ran {minutes} min "
        "without exiting): there is no release to roll back to"
    )
    evidence += passed_over
    memory = "; it was killed for memory: give the machines the provisioning function creates more memory (the "
    memory += "machine config's guest.memory_mb) or make the image use less"
    return NextStep(
        "DEPLOY_FIXED_IMAGE",
        f"Fix release v{cur.version}'s image and deploy the fix: read why machine {mid} "
        f"{'never started' if s.root.code == 'MACHINE_LAUNCH_FAILED' else 'exited'} in its logs, then deploy from "
        "the fixed source (`fly deploy` builds and releases it)" + (memory if s.root.facts.get("oom_killed") else ""),
        (_logs(s, mid), f"fly releases --app {app} --image", f"fly deploy --app {app}"),
        (s.place.fly("monitoring"), s.place.fly("")),
        tuple(evidence),
    )


def _image_that_served(s: Situation, failing: Finding) -> ReleaseRecord | None:
    """The newest release whose machines served and whose image still resolves, other than the failing image."""
    digest = failing.facts.get("digest")
    for r in s.health.releases:
        if r.image == failing.facts.get("image") or s.health.identity.same(r.digest, digest):
            continue
        if r.served and r.exists is not False:
            return r
    return None


def _machine_evidence(s: Situation) -> list[str]:
    f = s.root
    return [f"machine {f.facts.get('machine_id')} runs {f.facts.get('image')}: {f.title}"] + [
        f"{fmt_time_in_text(x['time'], s.tz) if x['time'] else ''} {x['detail']}".strip() for x in f.evidence[-2:]
    ]


@register(
    "ROLL_BACK_MACHINE_IMAGE",
    "a machine no release updates (a worker) keeps failing on its own image: update it to a release image that served",
    *MACHINE_ROOTS,
)
def roll_back_machine_image(s: Situation) -> NextStep | None:
    if s.root.code not in MACHINE_ROOTS or _release_case(s) is not None:
        return None
    good = _image_that_served(s, s.root)
    if good is None:
        return None
    mid, app = s.root.facts.get("machine_id"), s.place.app_arg
    return NextStep(
        "ROLL_BACK_MACHINE_IMAGE",
        f"Put machine {mid} back on an image that served: release v{good.version}'s image {good.image} "
        f"(its own image {s.root.facts.get('image')} keeps failing); read why in its logs first",
        (_logs(s, mid), f"fly machine update {shlex.quote(str(mid))} --app {app} --image {shlex.quote(good.image)}"),
        (s.place.fly("machines"), s.place.fly("monitoring")),
        tuple(_machine_evidence(s) + [f"{release_said(good)} served: " + "; ".join(good.served[:2])]),
    )


@register(
    "FIX_MACHINE_IMAGE",
    "a machine no release updates keeps failing and no image that served is known: read why and fix its image",
    *MACHINE_ROOTS,
)
def fix_machine_image(s: Situation) -> NextStep | None:
    if s.root.code not in MACHINE_ROOTS or _release_case(s) is not None or _image_that_served(s, s.root):
        return None
    mid, app = s.root.facts.get("machine_id"), s.place.app_arg
    return NextStep(
        "FIX_MACHINE_IMAGE",
        f"Read why machine {mid} fails in its logs and fix its image {s.root.facts.get('image')}; then put the "
        f"machine on the fixed image with `fly machine update {mid} --image …`. No release image is known to serve",
        (_logs(s, mid), f"fly machine status {shlex.quote(str(mid))} --app {app}"),
        (s.place.fly("machines"), s.place.fly("monitoring")),
        tuple(_machine_evidence(s)),
    )

"""The machine runs but its app never reported to the DB: what to check in the app's own reporting.

Nothing vyxops can change fixes this (the callback is the app's code); the row is not
reconciled while its machine runs, since the machine may still report. The checks use
flyctl's own commands: ``fly logs --machine ID --no-tail`` (internal/command/logs/logs.go),
``fly machine status ID --display-config`` (machine/status.go: prints the machine's config,
its env among it) and ``fly secrets list`` (the names of the app's secrets, never values).
"""

from __future__ import annotations

import shlex

from vyxops.analysis.advice.model import NextStep, Situation, register


@register(
    "CHECK_APP_REPORTING",
    "a machine started but its row never left its first status: check the app's callback, its env and secrets",
    "DB_FLY_STATE_DRIFT",
    "DB_STATUS_STUCK",
)
def check_app_reporting(s: Situation) -> NextStep | None:
    f = s.root
    if f.facts.get("machine_state") != "started":
        return None  # the machine is gone: the row is reconciled (RECONCILE_STUCK_ROWS), nothing is to report
    row = f.facts["row"]
    c = s.place.contract.table
    mid, app, rid = f.facts.get("machine_id"), s.place.app_arg, row["id"]
    status = c.columns.status
    running = s.place.contract.status.first("running") or "running"
    evidence = [f"{x['time']} {x['detail']}".strip() for x in f.evidence]
    evidence.append(
        f"the app must set {c.name}.{status} = '{running}' where {c.columns.key} = '{rid}'; it is still "
        f"'{row['status']}'"
    )
    return NextStep(
        "CHECK_APP_REPORTING",
        f"Check the app's own reporting: machine {mid} runs, but its app never set row {rid} of {c.name} to "
        f"'{running}'. Read its logs for the callback's error, check the env it was given (the row's id, the "
        "Supabase URL) and that the secrets the callback uses are set on the app",
        (
            f"fly logs --app {app} --machine {shlex.quote(str(mid))} --no-tail",
            f"fly machine status {shlex.quote(str(mid))} --app {app} --display-config",
            f"fly secrets list --app {app}",
        ),
        (s.place.supabase("editor"), s.place.fly("monitoring")),
        tuple(evidence),
    )

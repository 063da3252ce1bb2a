"""Fleets for scale work: big scenarios, frames straight from a world, synthetic frames.

- :func:`generate_fleet` writes a scenario (YAML text, the format of
  ``vyxops/scenarios/*.yaml``) for several apps over several days, with releases,
  ``DOCKER_IMAGE`` set and unset, and provisioning calls of which a share fail the
  three ways the incidents do (a stub image that exits, a missing tag, a crashing
  release). Same arguments, same text.
- :func:`fleet_frames` reads a :class:`~vyxops_sandbox.world.World`'s state into the
  frames of :mod:`vyxops.frames` without HTTP.
- :func:`generate_fleet_frames` synthesizes those frames directly, vectorised, for
  million-event benchmarks: replaying a world that big is far too slow (see
  ``bench/bench_timeline.py``). Its records follow the world model's lifecycle and
  messages, so the timeline it yields reads like a replayed one.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pandas as pd

from vyxops import facts
from vyxops.frames import function_log_record, machine_records, make_frame, release_records
from vyxops.images import secret_digest
from vyxops_sandbox.functions import FUNCTION_CREATE_MS, FUNCTION_DONE_MS
from vyxops_sandbox.machines import APP_REPORT_MS, DESTROY_AFTER_EXIT_MS, PULL_MS, START_MS
from vyxops_sandbox.world import World

FLEET_START = pd.Timestamp("2025-09-01T00:00:00Z")
FLEET_PROJECT_REF = "fleetprojectref0001"
REGIONS = ("sjc", "iad", "ams", "fra", "lhr", "nrt", "syd", "gru")
FAILURE_MODES = ("stub", "missing_tag", "crash_release")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# --------------------------------------------------------------------------- scenario text


def _ulid(ms: int, rng: random.Random) -> str:
    """A ULID whose first 10 characters encode ``ms``, like Fly's deployment tags."""
    t = "".join(_CROCKFORD[(ms >> (5 * i)) & 31] for i in reversed(range(10)))
    return t + "".join(rng.choice(_CROCKFORD) for _ in range(16))


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_fleet(
    apps: int = 3, machines_per_day: int = 50, days: int = 7, seed: int = 0, failure_rate: float = 0.1
) -> str:
    """Scenario YAML for ``apps`` apps provisioning ``machines_per_day`` machines each per day for ``days`` days.

    Deterministic in its arguments. Each app gets a first release the hour before
    day one (tagged ``:latest``) and one more release a day. Each provisioning call
    (``body.app`` names its app) fails with probability ``failure_rate``, one of:

    - ``stub``: ``DOCKER_IMAGE`` is set to the app's ``:stub`` image (exits 0) just
      before the call and unset just after;
    - ``missing_tag``: ``DOCKER_IMAGE`` names a tag never pushed (400, no machine);
    - ``crash_release``: a release whose image crashes is deployed (and tagged
      ``:latest``) just before the call, and rolled back just after.

    Calls are spread over the day in fixed slots, one call per slot, and every
    failure window stays inside its call's slot, so one failure never leaks into
    another call. Releases fall on slot boundaries for the same reason.
    """
    if apps < 1 or days < 1 or machines_per_day < 1:
        raise ValueError("apps, machines_per_day and days must be >= 1")
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError("failure_rate must be within [0, 1]")
    rng = random.Random(seed)
    start = int(FLEET_START.value // 1_000_000)
    day_ms = 86_400_000
    names = [f"fleet-app-{i + 1}" for i in range(apps)]
    calls_per_day = apps * machines_per_day
    slot = day_ms // calls_per_day
    pre, post = min(60_000, slot // 4), min(30_000, slot // 4)

    images: list[str] = []
    steps: list[tuple[int, int, str]] = []  # (at_ms, order, line): order keeps same-time steps as written
    seq = 0

    def step(at: int, text: str) -> None:
        nonlocal seq
        seq += 1
        steps.append((at, seq, f"  - at: {_iso(at)}\n    {text}"))

    current: dict[str, str] = {}
    for i, app in enumerate(names):
        images.append(f"  registry.fly.io/{app}:stub: {{behaviour: exit, exit_code: 0, after_s: 2}}")
        at = start - 3_600_000 + i * 60_000
        image = f"registry.fly.io/{app}:deployment-{_ulid(at - 300_000, rng)}"
        current[app] = image
        step(at, f"deploy: {{app: {app}, image: {image}, tag_latest: true}}")

    user = 0
    for day in range(days):
        day_start = start + day * day_ms
        # one release per app per day, each at the start of its own slot
        release_slots = rng.sample(range(calls_per_day), k=min(apps, calls_per_day))
        release_at = {app: day_start + s * slot for app, s in zip(names, release_slots)}
        order = [names[k % apps] for k in range(calls_per_day)]
        rng.shuffle(order)
        for k, app in enumerate(order):
            slot_start = day_start + k * slot
            if release_at.get(app) == slot_start:
                image = f"registry.fly.io/{app}:deployment-{_ulid(slot_start - 300_000, rng)}"
                current[app] = image
                step(slot_start, f"deploy: {{app: {app}, image: {image}, tag_latest: true}}")
            at = slot_start + int(slot * rng.uniform(0.3, 0.7)) // 1000 * 1000
            user += 1
            body = f"{{user_id: u-{user}, region: {rng.choice(REGIONS)}, app: {app}}}"
            mode = rng.choice(FAILURE_MODES) if rng.random() < failure_rate else None
            if mode == "stub":
                step(at - pre, f"set_secret: {{name: DOCKER_IMAGE, value: registry.fly.io/{app}:stub}}")
            elif mode == "missing_tag":
                missing = f"registry.fly.io/{app}:deployment-{_ulid(at, rng)}"
                step(at - pre, f"set_secret: {{name: DOCKER_IMAGE, value: {missing}}}")
            elif mode == "crash_release":
                crash = f"registry.fly.io/{app}:deployment-{_ulid(at - pre, rng)}"
                images.append(
                    f"  {crash}: {{behaviour: crash, exit_code: {rng.choice((1, 2, 137))}, after_s: {rng.choice((1, 3, 5))}}}"
                )
                step(at - pre, f"deploy: {{app: {app}, image: {crash}, tag_latest: true}}")
            step(at, f"invoke: {{function: provision-machine, body: {body}}}")
            if mode in ("stub", "missing_tag"):
                step(at + post, "unset_secret: {name: DOCKER_IMAGE}")
            elif mode == "crash_release":
                step(at + post, f"deploy: {{app: {app}, image: {current[app]}, tag_latest: true}}")  # roll back

    now = start + days * day_ms + 3_600_000
    steps.sort()
    lines = [
        f"# Generated by vyxops.testing.fleet.generate_fleet(apps={apps}, machines_per_day={machines_per_day}, "
        f"days={days}, seed={seed}, failure_rate={failure_rate}).",
        f"name: fleet-{apps}a-{machines_per_day}m-{days}d-s{seed}",
        f"title: Fleet of {apps} apps, {machines_per_day} machines per app per day, {days} days",
        f"now: {_iso(now)}",
        f"fly: {{org: fleet, apps: [{', '.join(names)}]}}",
        f"supabase: {{project_ref: {FLEET_PROJECT_REF}, machines_table: machines}}",
        "images:",
        *images,
        "steps:",
        *(text for _, _, text in steps),
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- frames from a world


def fleet_frames(world: World) -> dict[str, pd.DataFrame]:
    """The frames a session would fetch, read straight from ``world.state`` (no HTTP).

    Keys: machines, machine_events, releases, fly_logs, machine_rows, secrets,
    functions, function_logs; each frame is built by :func:`vyxops.frames.make_frame`.
    """
    state = world.state
    machines: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    releases: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    for app, a in state["fly"]["apps"].items():
        rows, evs = machine_records(app, list(a["machines"].values()))
        machines.extend(rows)
        events.extend(evs)
        releases.extend(release_records(app, a["releases"]))
        logs.extend(
            {
                "app": app,
                "time": e["ts_ns"],
                "instance": e.get("instance"),
                "region": e.get("region"),
                "level": e.get("level"),
                "provider": e.get("provider"),
                "message": e.get("message"),
            }
            for e in a["logs"]
        )
    sup = state["supabase"]
    rows_out: list[dict[str, Any]] = []
    for table, t in sup["tables"].items():
        rows_out.extend({**r, "table": table, "updated_at_raw": r.get("updated_at")} for r in t["rows"])
    slugs = {f["id"]: f["slug"] for f in sup["functions"]}
    fn_logs = []
    for r in sup["logs"]:  # as the logs endpoint would answer _FN_LOG_COLUMNS, then as the fetcher reads it
        attrs = r.get("log_attributes") or {}
        row = {
            "id": r["id"],
            "timestamp": r["timestamp_us"],
            "event_message": r.get("event_message"),
            "severity_text": r.get("severity_text"),
            **{k: attrs.get(k) for k in ("function_id", "execution_id", "level", "event_type", "execution_time_ms")},
            "status_code": attrs.get("response.status_code"),
        }
        fn_logs.append(function_log_record(row, r["source"], slugs))
    src = f"sandbox:{world.scenario_name}"
    return {
        "machines": make_frame("machines", machines, source=src),
        "machine_events": make_frame("machine_events", events, units={"time": "ms"}, source=src),
        "releases": make_frame("releases", releases, source=src),
        "fly_logs": make_frame("fly_logs", logs, units={"time": "ns"}, source=src),
        "machine_rows": make_frame("machine_rows", rows_out, source=src),
        "secrets": make_frame(
            "secrets",
            [
                {"name": k, "digest": secret_digest(v["value"]), "updated_at": v["updated_at"]}
                for k, v in sup["secrets"].items()
            ],
            source=src,
        ),
        "functions": make_frame(
            "functions",
            [
                {
                    "function_id": f["id"],
                    "slug": f["slug"],
                    "name": f.get("name"),
                    "status": f.get("status"),
                    "version": f.get("version"),
                    "created_at": f.get("created_at"),
                    "updated_at": f.get("updated_at"),
                    "verify_jwt": f.get("verify_jwt"),
                }
                for f in sup["functions"]
            ],
            units={"created_at": "ms", "updated_at": "ms"},
            source=src,
        ),
        "function_logs": make_frame("function_logs", fn_logs, units={"time": "us"}, source=src),
    }


# --------------------------------------------------------------------------- synthetic frames


def _fill(template: str, **columns: Any) -> np.ndarray:
    """``template.format(**row)`` for every row of equal-length arrays (or constants), vectorised."""
    import string

    out: Any = ""
    for literal, field, _, _ in string.Formatter().parse(template):
        out = np.char.add(out, literal) if literal else out
        if field:
            out = np.char.add(out, np.asarray(columns[field]).astype(str))
    return np.asarray(out)


def _string_array(values: Any) -> pd.arrays.ArrowStringArray:
    """numpy str/object values or a pyarrow array as a pandas ``string`` column, without a Python loop."""
    import pyarrow as pa

    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
    return pd.arrays.ArrowStringArray(arr.cast(pa.large_string()))


def _hex(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """``n`` random lower-case hex strings of ``width`` (≤ 32) characters."""
    hi = rng.integers(0, 2**63, size=n, dtype=np.int64)
    lo = rng.integers(0, 2**63, size=n, dtype=np.int64)
    text = np.char.add(np.char.mod("%016x", hi), np.char.mod("%016x", lo))
    return text.astype(f"<U{width}")  # the cast truncates to the first ``width`` characters


def _uuid(rng: np.random.Generator, n: int) -> np.ndarray:
    chars = _hex(rng, n, 32).view("<U1").reshape(n, 32)
    out = chars[:, 0:8].copy().view("<U8").ravel()
    for a, b in ((8, 12), (12, 16), (16, 20), (20, 32)):
        out = np.char.add(np.char.add(out, "-"), chars[:, a:b].copy().view(f"<U{b - a}").ravel())
    return out


def generate_fleet_frames(
    n_events: int, seed: int = 0, *, apps: int = 5, days: int = 7, failure_rate: float = 0.1
) -> dict[str, pd.DataFrame]:
    """Frames whose timeline holds exactly ``n_events`` events (for ``n_events`` ≥ ~100), synthesized with numpy.

    Same keys and schemas as :func:`fleet_frames`; each provisioning call follows the
    world model (PULL_MS, START_MS, … offsets, the same log lines and messages):
    a serving machine (launch, start, row starting → running) or, at
    ``failure_rate``, one of: a stub image that exits 0, a crashing release image,
    a missing tag (500, no machine, no row). Calls are spread over ``days`` days
    across ``apps`` apps. Deterministic in its arguments.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if n_events < 100:
        raise ValueError("n_events must be >= 100 (a fleet's releases, secrets and function alone make ~50)")
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError("failure_rate must be within [0, 1]")
    rng = np.random.default_rng(seed)
    L = pa.large_string()
    app_names = np.array([f"fleet-app-{i + 1}" for i in range(apps)])
    start_ms = int(FLEET_START.value // 1_000_000)
    span_ms = days * 86_400_000

    # Events per call by outcome: ok, exit (stub), crash, missing; see the blocks below.
    per_outcome = np.array([13, 15, 15, 4])
    extras = apps * (days + 1) + 3 + 1  # releases, secrets, the function
    p_fail = failure_rate / 3
    mean = (1 - failure_rate) * per_outcome[0] + p_fail * per_outcome[1:].sum()
    guess = int((n_events - extras) / mean * 1.1) + 50  # enough calls for the count, drawn once
    outcome_all = rng.choice(4, size=guess, p=[1 - failure_rate, p_fail, p_fail, p_fail])
    total = np.cumsum(per_outcome[outcome_all]) + extras
    n_calls = int(np.searchsorted(total, n_events)) + 1
    if n_calls > guess:
        raise ValueError(f"n_events={n_events} is too large for the draw; this should not happen")
    outcome = outcome_all[:n_calls]
    excess = int(total[n_calls - 1] - n_events)  # trimmed from the fly logs at the end

    # strictly increasing start times: two calls in the same ms would repeat their boot line
    t0 = start_ms + np.cumsum(rng.integers(1, max(2, 2 * span_ms // n_calls), size=n_calls))
    app_i = rng.integers(0, apps, size=n_calls)
    app = app_names[app_i]
    region = np.array(REGIONS)[rng.integers(0, len(REGIONS), size=n_calls)]
    user = np.char.add("u-", np.arange(1, n_calls + 1).astype(str))

    # releases: one before the fleet starts, then one a day per app
    rel_app = np.repeat(app_names, days + 1)
    rel_version = np.tile(np.arange(1, days + 2), apps)
    rel_time = (
        np.tile(np.arange(days + 1) * 86_400_000 - 3_600_000, apps)
        + start_ms
        + rng.integers(0, 3_600_000, size=apps * (days + 1))
    )
    rel_image = np.char.add(
        np.char.add(np.char.add("registry.fly.io/", rel_app), ":deployment-"),
        np.char.upper(_hex(rng, len(rel_app), 26)),
    )
    # the image in force at each call: its app's latest release before it (a loop over apps, not calls)
    rel_key = np.zeros(n_calls, dtype=np.int64)
    for a in range(apps):
        mine = app_i == a
        times = rel_time[a * (days + 1) : (a + 1) * (days + 1)]
        rel_key[mine] = a * (days + 1) + np.clip(np.searchsorted(times, t0[mine], side="right") - 1, 0, days)
    image = rel_image[rel_key]
    stub = np.char.add(np.char.add("registry.fly.io/", app), ":stub")
    missing_img = np.char.add(
        np.char.add(np.char.add("registry.fly.io/", app), ":deployment-"), np.char.upper(_hex(rng, n_calls, 26))
    )
    image = np.where(outcome == 1, stub, np.where(outcome == 3, missing_img, image))

    made = outcome != 3
    m_idx = np.flatnonzero(made)
    nm = len(m_idx)
    mid = _hex(rng, nm, 14)
    m_app, m_region, m_image, m_out = app[m_idx], region[m_idx], image[m_idx], outcome[m_idx]
    launch = t0[m_idx] + FUNCTION_CREATE_MS
    start = launch + START_MS
    after_ms = np.where(m_out == 1, 2000, rng.choice([1000, 3000, 5000], size=nm))
    code = np.where(m_out == 1, 0, rng.choice([1, 2, 137], size=nm))
    exited = np.flatnonzero(m_out != 0)
    exit_at = start + after_ms

    # machine events: launch + start for all, exit + destroy for the ones that exit
    ev_m = np.concatenate([np.arange(nm), np.arange(nm), exited, exited])
    ev_type = np.concatenate(
        [np.full(nm, "launch"), np.full(nm, "start"), np.full(len(exited), "exit"), np.full(len(exited), "destroy")]
    )
    ev_status = np.concatenate(
        [
            np.full(nm, "created"),
            np.full(nm, "started"),
            np.full(len(exited), "stopped"),
            np.full(len(exited), "destroyed"),
        ]
    )
    ev_source = np.where(ev_type == "launch", "user", "flyd")
    ev_time = np.concatenate([launch, start, exit_at[exited] + 30, exit_at[exited] + 30 + DESTROY_AFTER_EXIT_MS])
    is_exit = ev_type == "exit"
    ev_code = np.where(is_exit, code[ev_m], 0)
    ne = len(ev_m)
    machine_events = pd.DataFrame(
        {
            "app": _string_array(m_app[ev_m]),
            "machine_id": _string_array(mid[ev_m]),
            "event_id": _string_array(np.char.add("01K", np.char.upper(_hex(rng, ne, 23)))),
            "time": pd.to_datetime(ev_time, unit="ms", utc=True).astype("datetime64[ns, UTC]"),
            "type": _string_array(ev_type),
            "status": _string_array(ev_status),
            "source": _string_array(ev_source),
            "exit_code": pd.arrays.IntegerArray(ev_code.astype(np.int64), ~is_exit),
            "oom_killed": pd.arrays.BooleanArray(np.zeros(ne, dtype=bool), ~is_exit),
            "requested_stop": pd.arrays.BooleanArray(np.zeros(ne, dtype=bool), ~is_exit),
            "restart_count": pd.arrays.IntegerArray(np.zeros(ne, dtype=np.int64), ~is_exit),
            "exited_at": pd.to_datetime(np.where(is_exit, ev_time - 30, 0), unit="ms", utc=True)
            .astype("datetime64[ns, UTC]")
            .where(is_exit),
            "error": _string_array(pa.nulls(ne, L)),
        }
    )

    last = np.full(nm, 0, dtype=np.int64)
    last[:] = start
    last[exited] = exit_at[exited] + 30 + DESTROY_AFTER_EXIT_MS
    destroyed = m_out != 0
    machines = pd.DataFrame(
        {
            "app": _string_array(m_app),
            "machine_id": _string_array(mid),
            "name": _string_array(np.char.add("fleet-", mid)),
            "state": _string_array(np.where(destroyed, "destroyed", "started")),
            "region": _string_array(m_region),
            "image": _string_array(m_image),
            "image_repository": _string_array(m_app),
            "image_tag": _string_array(np.char.rpartition(m_image, ":")[:, 2] if nm else np.array([], dtype=str)),
            "image_digest": _string_array(np.char.add("sha256:", _hex(rng, nm, 32))),
            "auto_destroy": pd.arrays.BooleanArray(np.ones(nm, dtype=bool), np.zeros(nm, dtype=bool)),
            "restart_policy": _string_array(np.full(nm, "no")),
            "restart_max_retries": pd.array([None] * nm, dtype="Int64"),
            "process_group": _string_array(pa.nulls(nm, L)),
            "user_id": _string_array(user[m_idx]),
            "instance_id": _string_array(np.char.add("01K", np.char.upper(_hex(rng, nm, 23)))),
            "created_at": pd.to_datetime(launch - launch % 1000, unit="ms", utc=True).astype("datetime64[ns, UTC]"),
            "updated_at": pd.to_datetime(last - last % 1000, unit="ms", utc=True).astype("datetime64[ns, UTC]"),
            "destroyed": pd.arrays.BooleanArray(destroyed, np.zeros(nm, dtype=bool)),
        }
    )

    # Fly logs, as the world model writes them
    ok = np.flatnonzero(m_out == 0)
    mimg = pa.array(m_image, L)
    code_text = pa.array(code.astype(str), L)
    parts = [
        (
            np.arange(nm),
            launch + 100,
            pc.binary_join_element_wise(pa.scalar("Pulling container image ", L), mimg, pa.scalar("", L)),
            "runner",
        ),
        (
            np.arange(nm),
            launch + PULL_MS,
            pc.binary_join_element_wise(
                pa.scalar("Successfully prepared image ", L),
                mimg,
                pa.scalar(f" ({PULL_MS / 1000:.1f}s)", L),
                pa.scalar("", L),
            ),
            "runner",
        ),
        (np.arange(nm), start - 100, pa.repeat(pa.scalar("Configuring firecracker", L), nm), "runner"),
        (
            np.arange(nm),
            start + 20,
            pa.repeat(pa.scalar(f"Machine started in {(START_MS - PULL_MS) / 1000:.3f}s", L), nm),
            "app",
        ),
        (ok, start[ok] + 600, pa.repeat(pa.scalar("Listening on 0.0.0.0:8080", L), len(ok)), "app"),
        (
            exited,
            exit_at[exited] - 5,
            pc.binary_join_element_wise(
                pa.scalar("INFO Main child exited normally with code: ", L),
                code_text.take(pa.array(exited)),
                pa.scalar("", L),
            ),
            "app",
        ),
        (exited, exit_at[exited] + 10, pa.repeat(pa.scalar("INFO Starting clean up.", L), len(exited)), "app"),
    ]
    lg_m = np.concatenate([p[0] for p in parts])
    lg_ns = np.concatenate([p[1] for p in parts]) * 1_000_000 + rng.integers(0, 1000, size=len(lg_m))
    lg_msg = pa.concat_arrays([(p[2] if len(p[0]) == len(p[2]) else p[2].take(pa.array(p[0]))) for p in parts])
    lg_provider = np.concatenate([np.full(len(p[0]), p[3]) for p in parts])
    if excess:  # trim to the exact event count asked for
        lg_m, lg_ns, lg_msg, lg_provider = lg_m[:-excess], lg_ns[:-excess], lg_msg[:-excess], lg_provider[:-excess]
    nl = len(lg_m)
    fly_logs = pd.DataFrame(
        {
            "app": _string_array(m_app[lg_m]),
            "time": pd.to_datetime(lg_ns, unit="ns", utc=True),
            "instance": _string_array(mid[lg_m]),
            "region": _string_array(m_region[lg_m]),
            "level": _string_array(np.full(nl, "info")),
            "provider": _string_array(lg_provider),
            "message": _string_array(lg_msg),
        }
    )

    # DB rows: created `starting` by the function; serving machines report `running`
    created = launch + 200
    updated = np.where(m_out == 0, start + APP_REPORT_MS, created)
    updated_raw = pd.to_datetime(updated, unit="ms", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "+00:00"
    machine_rows = pd.DataFrame(
        {
            "table": _string_array(np.full(nm, "machines")),
            "id": _string_array(_uuid(rng, nm)),
            "user_id": _string_array(user[m_idx]),
            "fly_machine_id": _string_array(mid),
            "fly_app": _string_array(m_app),
            "region": _string_array(m_region),
            "image": _string_array(m_image),
            "status": _string_array(np.where(m_out == 0, "running", "starting")),
            "error": _string_array(pa.nulls(nm, L)),
            "created_at": pd.to_datetime(created, unit="ms", utc=True).astype("datetime64[ns, UTC]"),
            "updated_at": pd.to_datetime(updated, unit="ms", utc=True).astype("datetime64[ns, UTC]"),
            "updated_at_raw": _string_array(pa.array(updated_raw.to_numpy(dtype=str), L)),
        }
    )

    # function logs: boot, provisioning line, created/error line, then the edge log
    fid = "7c1e5f2b-9a0d-4a51-8c3e-2b6f1d7e9a10"
    exec_id = _uuid(rng, n_calls)
    provisioning = _fill(facts.PROVISIONING_LINE, user_id=user, region=region, image=image)
    created_line = np.full(n_calls, "", dtype=object)
    created_line[m_idx] = _fill(facts.CREATED_LINE, machine_id=mid, image=m_image)
    miss = np.flatnonzero(~made)
    refused = np.char.add(np.char.add('{"error": "failed to get manifest ', image[miss]), ': MANIFEST_UNKNOWN"}')
    created_line[miss] = _fill(facts.API_ERROR_LINE, status="400", body=refused)
    second_at = np.where(made, t0 + FUNCTION_CREATE_MS + 210, t0 + FUNCTION_CREATE_MS + 120)
    status = np.where(made, 200, 500)
    fl_time_us = np.concatenate(
        [t0 * 1000 + 266, (t0 + 40) * 1000 + 561, second_at * 1000 + 713, (t0 + FUNCTION_DONE_MS) * 1000]
    )
    fl_src = np.repeat(np.array(["function_logs", "function_logs", "function_logs", "function_edge_logs"]), n_calls)
    fl_level = np.concatenate(
        [
            np.full(n_calls, "log"),
            np.full(n_calls, "info"),
            np.where(made, "info", "error"),
            np.full(n_calls, "", dtype="<U5"),
        ]
    )
    fl_event_type = np.concatenate(
        [np.full(n_calls, "Boot"), np.full(n_calls, "Log"), np.full(n_calls, "Log"), np.full(n_calls, "", dtype="<U4")]
    )
    edge_msg = np.char.add(
        np.char.add("POST | ", status.astype(str)),
        f" | https://{FLEET_PROJECT_REF}.supabase.co/functions/v1/provision-machine",
    )
    fl_msg = pa.concat_arrays(
        [
            pa.repeat(pa.scalar("booted (time: 31ms)", L), n_calls),
            pa.array(provisioning, L),
            pa.array(created_line.astype(str), L),
            pa.array(edge_msg, L),
        ]
    )
    nf = 4 * n_calls
    is_edge = fl_src == "function_edge_logs"
    function_logs = pd.DataFrame(
        {
            "time": pd.to_datetime(fl_time_us, unit="us", utc=True).astype("datetime64[ns, UTC]"),
            "source": _string_array(fl_src),
            "log_id": _string_array(_uuid(rng, nf)),
            "function_id": _string_array(np.full(nf, fid)),
            "function": _string_array(np.full(nf, "provision-machine")),
            "execution_id": _string_array(
                pa.array(np.concatenate([np.full(n_calls, None, dtype=object), exec_id, exec_id, exec_id]), L)
            ),
            "level": _string_array(pa.array(np.where(fl_level == "", None, fl_level), L)),
            "event_type": _string_array(pa.array(np.where(fl_event_type == "", None, fl_event_type), L)),
            "status_code": pd.arrays.IntegerArray(
                np.concatenate([np.zeros(3 * n_calls, dtype=np.int64), status]), ~is_edge
            ),
            "duration_ms": pd.arrays.IntegerArray(np.full(nf, FUNCTION_DONE_MS, dtype=np.int64), ~is_edge),
            "message": _string_array(fl_msg),
        }
    )

    first = start_ms - 2 * 3_600_000
    releases = pd.DataFrame(
        {
            "app": _string_array(rel_app),
            "version": pd.array(rel_version, dtype="Int64"),
            "image": _string_array(rel_image),
            "status": _string_array(np.full(len(rel_app), "complete")),
            "stable": pd.array(np.ones(len(rel_app), dtype=bool), dtype="boolean"),
            "user": _string_array(np.full(len(rel_app), "deployer@example.com")),
            "description": _string_array(np.char.add("Deploy image ", rel_image)),
            "created_at": pd.to_datetime(rel_time, unit="ms", utc=True).astype("datetime64[ns, UTC]"),
            "current": pd.array(rel_version == days + 1, dtype="boolean"),
            "runs_image": pd.array(rel_version == days + 1, dtype="boolean"),
        }
    )
    secret_rows = [
        {"name": "FLY_APP_NAME", "digest": secret_digest(str(app_names[0])), "updated_at": first},
        {
            "name": "SUPABASE_URL",
            "digest": secret_digest(f"https://{FLEET_PROJECT_REF}.supabase.co"),
            "updated_at": first,
        },
        {
            "name": "DOCKER_IMAGE",
            "digest": secret_digest(f"registry.fly.io/{app_names[0]}:stub"),
            "updated_at": start_ms + span_ms // 2,
        },
    ]
    secrets = make_frame("secrets", secret_rows, units={"updated_at": "ms"}, source="synthetic")
    functions = make_frame(
        "functions",
        [
            {
                "function_id": fid,
                "slug": "provision-machine",
                "name": "provision-machine",
                "status": "ACTIVE",
                "version": 1,
                "created_at": first,
                "updated_at": first,
                "verify_jwt": True,
            }
        ],
        units={"created_at": "ms", "updated_at": "ms"},
        source="synthetic",
    )
    frames = {
        "machines": machines,
        "machine_events": machine_events,
        "releases": releases,
        "fly_logs": fly_logs,
        "machine_rows": machine_rows,
        "secrets": secrets,
        "functions": functions,
        "function_logs": function_logs,
    }
    for name, df in frames.items():
        df.attrs.update(
            {
                "frame": name,
                "source": f"synthetic:generate_fleet_frames({n_events}, {seed})",
                "complete": True,
                "note": "",
            }
        )
    return frames

"""The direct PostgreSQL source vs PostgREST paging: a busy day's machines table of 10,000 and 100,000 rows.

Run: ``.venv/bin/python bench/bench_direct.py`` (``make bench`` runs it). Each size's table is loaded into a
throwaway PostgreSQL server (:func:`vyxops_sandbox.pg_server.running_postgres`, :func:`vyxops_sandbox.pg_load.
load_world`) and into the in-process sandbox's PostgREST model, then read whole into the ``machine_rows`` frame
both ways, interleaved: :func:`vyxops.fetch.pg_frames.fetch_machine_rows_direct` (one server-side cursor) and
:func:`vyxops.fetch.frames.fetch_machine_rows` (1000-row pages). The two frames are checked equal before timing.
Target (issue 22): the direct read at least 5x faster at 100,000 rows. Medians of the runs, with their range.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from vyxops.core.contract import Contract  # noqa: E402
from vyxops.fetch.clients.postgres import PgClient  # noqa: E402
from vyxops.fetch.frames import fetch_machine_rows  # noqa: E402
from vyxops.fetch.pg_frames import fetch_machine_rows_direct  # noqa: E402
from vyxops.fetch.session import Session, open_session  # noqa: E402
from vyxops.testing.postgres import pipeline_contract  # noqa: E402
from vyxops_sandbox.pg_load import load_world  # noqa: E402
from vyxops_sandbox.pg_server import PgServer, PostgresMissing, running_postgres  # noqa: E402
from vyxops_sandbox.testing import world_of  # noqa: E402

TARGET = 5.0
SIZES = (10_000, 100_000)
RUNS = int(os.environ.get("VYXOPS_BENCH_DIRECT_RUNS", "3"))
#: The seed team's scenario: its table has every contract column (updated_at too) and a status enum.
SCENARIO = "stub-image"
DAY_MS = 86_400_000
DAY_START_MS = 1_759_363_200_000  # 2025-10-02T00:00:00Z, the seed's day
REGIONS = ("iad", "ord", "sjc", "ams", "fra", "nrt")


def _postgrest_time(ms: int) -> str:
    """A timestamptz as PostgREST's JSON writes it (UTC, the fraction's trailing zeros dropped)."""
    text = pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "+00:00"


def busy_rows(n: int, app: str, image: str, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` machine rows provisioned over one day: most running or stopped, some starting, a few failed."""
    rng = random.Random(seed)
    statuses = ("running", "stopped", "starting", "failed")
    rows = []
    for i in range(n):
        created = DAY_START_MS + rng.randrange(DAY_MS)
        status = rng.choices(statuses, weights=(60, 25, 10, 5))[0]
        updated = created + (rng.randrange(1, 90_000) if status != "starting" else 0)
        rows.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "user_id": f"u-{rng.randrange(5000)}",
                "fly_machine_id": f"{rng.getrandbits(56):014x}",
                "fly_app": app,
                "region": rng.choice(REGIONS),
                "image": image,
                "status": status,
                "created_at": _postgrest_time(created),
                "updated_at": _postgrest_time(updated),
            }
        )
    return rows


def _database(server: PgServer, name: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.admin_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def _timed(read: Callable[[], pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    frame = read()
    return time.perf_counter() - start, frame


def measure(server: PgServer, session: Session, contract: Contract, n: int) -> dict[str, list[float]]:
    """Load ``n`` rows both ways, check the two frames agree, then time ``RUNS`` interleaved rounds."""
    world = world_of(session)
    table = world.state["supabase"]["tables"][contract.table.name]
    template = table["rows"][0]
    table["rows"] = busy_rows(n, template["fly_app"], template["image"])
    url = server.url(_database(server, f"busy_{n}"))
    load_world(server.admin_conninfo(f"busy_{n}"), world, grant_to=server.role)
    times: dict[str, list[float]] = {"direct": [], "postgrest": []}
    with PgClient(url) as client:

        def direct() -> pd.DataFrame:
            return fetch_machine_rows_direct(client, contract)

        def postgrest() -> pd.DataFrame:
            return fetch_machine_rows(session, contract)

        _, a = _timed(direct)
        _, b = _timed(postgrest)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        if len(a) != n:
            raise AssertionError(f"read {len(a)} rows of {n}")
        del a, b
        for i in range(RUNS):
            order = (("direct", direct), ("postgrest", postgrest))
            for name, read in order if i % 2 == 0 else order[::-1]:
                times[name].append(_timed(read)[0])
    return times


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)
    load_before = os.getloadavg()
    results: dict[int, dict[str, list[float]]] = {}
    try:
        with (
            running_postgres() as server,
            tempfile.TemporaryDirectory() as tmp,
            open_session("sandbox", scenario=SCENARIO, sandbox_dir=Path(tmp)) as session,
        ):
            contract = pipeline_contract(world_of(session))
            for n in SIZES:
                results[n] = measure(server, session, contract, n)
    except PostgresMissing as exc:
        print(f"== direct PostgreSQL vs PostgREST paging: not measured: {exc}")
        return 1
    print(f"== the machines table read whole: direct PostgreSQL vs PostgREST paging (in-process sandbox), {RUNS} "
          "interleaved rounds")  # fmt: skip
    print(f"{'rows':>8} {'direct':>22} {'PostgREST pages':>22} {'ratio':>20}  target")
    ok = True
    for n, t in results.items():
        ratios = [p / d for d, p in zip(t["direct"], t["postgrest"], strict=True)]
        ratio = statistics.median(ratios)
        verdict = "(reported)"
        if n == max(SIZES):
            met = ratio >= TARGET
            ok = ok and met
            verdict = f">= {TARGET:g}x  {'MET' if met else 'MISSED'}"
        ratio_text = f"{ratio:.1f}x ({min(ratios):.1f}-{max(ratios):.1f})"
        print(f"{n:>8,} {_spread(t['direct']):>22} {_spread(t['postgrest']):>22} {ratio_text:>20}  {verdict}")
    print("medians (range of runs); the ratio's range is over the rounds' own ratios")
    after = os.getloadavg()
    print(f"load average (1, 5, 15 min) before {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after {' '.join(f'{x:.2f}' for x in after)} on {os.cpu_count()} CPUs")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

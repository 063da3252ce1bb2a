"""Evidence fetched side by side: the same findings as one request at a time, shared reads made once."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import Future
from pathlib import Path

import pytest

from vyxops.analysis.audit import run_audit
from vyxops.analysis.investigate import investigate
from vyxops.fetch import fanout
from vyxops.fetch.bundle import write_bundle
from vyxops.fetch.session import open_session
from vyxops.testing.fleet import generate_fleet
from vyxops.testing.overlap import Overlap
from vyxops_sandbox.faults import FaultRule, Faults
from vyxops_sandbox.scenario import load_scenario, scenario_names


def findings_bytes(scenario: str | Path, app: str, directory: Path, *, faults: Faults | None = None) -> str:
    with open_session("sandbox", scenario=scenario, sandbox_dir=directory, faults=faults) as s:
        return json.dumps(investigate(s, app).document, sort_keys=True)


@pytest.mark.parametrize("name", scenario_names())
def test_concurrent_and_sequential_evidence_give_identical_findings(name: str, tmp_path: Path) -> None:
    """Every shipped scenario: findings.json is byte for byte the same whichever order the answers came in."""
    app = load_scenario(name).apps[0]
    concurrent = findings_bytes(name, app, tmp_path / "concurrent")
    with fanout.sequential():
        one_by_one = findings_bytes(name, app, tmp_path / "sequential")
    assert concurrent == one_by_one


def test_gather_keeps_the_given_order_and_raises_the_first_failure_in_it() -> None:
    """Results come back keyed in call order; with two failures, the earlier key's is raised after all finish."""
    finished: list[str] = []
    gate = threading.Barrier(3, timeout=5)

    def ok(name: str) -> str:
        gate.wait()  # all three run at once, or this times out
        finished.append(name)
        return name

    assert list(fanout.gather({n: (lambda n=n: ok(n)) for n in ("c", "a", "b")})) == ["c", "a", "b"]

    def fail(msg: str) -> str:
        raise ValueError(msg)

    with pytest.raises(ValueError, match="first"):
        fanout.gather({"x": lambda: fail("first"), "y": lambda: fail("second"), "z": lambda: "done"})


def test_fan_outs_reuse_kept_threads_honour_their_width_and_nest_without_deadlock() -> None:
    """A second fan-out runs on the first's threads (no thread started per call); a fan-out never has
    more than its width of calls at once; fan-outs nested five deep, 8 wide, all finish."""
    ran: list[int] = []

    def who(_: int) -> int:
        gate.wait()
        ran.append(threading.get_ident())
        return threading.get_ident()

    gate = threading.Barrier(8, timeout=5)
    first = set(fanout.map_ordered(who, range(8)))
    kept = {t.ident for t in threading.enumerate() if t.name.startswith("vyxops-")}
    second = set(fanout.map_ordered(who, range(8)))
    assert len(first) == 8 and first <= kept and second <= kept  # no thread was started for the second

    overlap = Overlap()

    def slow(_: int) -> None:
        with overlap.call(lasting=0.01):
            pass

    fanout.map_ordered(slow, range(40), width=4)
    assert overlap.most == 4

    def nest(depth: int) -> int:
        return 1 if depth == 0 else sum(fanout.map_ordered(nest, [depth - 1] * 2))

    assert fanout.map_ordered(nest, [4] * 8) == [16] * 8


def test_a_fan_out_returns_only_once_its_threads_count_themselves_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """When a fan-out's caller is woken, every thread that ran its calls is already waiting for work: the next
    fan-out runs on them rather than starting threads (a drainer that said it was done before it counted itself
    idle let the next fan-out find none idle)."""
    monkeypatch.setattr(fanout, "_workers", fanout._Workers())
    idle_when_woken: list[int] = []

    class Watched(Future):  # type: ignore[type-arg]
        def set_result(self, result: object) -> None:
            idle_when_woken.append(fanout.idle_threads())  # what the woken caller would find
            super().set_result(result)

    monkeypatch.setattr(fanout, "Future", Watched)
    both = threading.Barrier(2, timeout=5)

    def side_by_side(i: int) -> int:
        both.wait()  # two threads, or this times out
        return i

    assert fanout.map_ordered(side_by_side, range(2)) == [0, 1]
    assert len(idle_when_woken) == 2 and all(n >= i for i, n in enumerate(idle_when_woken, 1)), idle_when_woken


def test_a_kept_thread_ends_once_idle_and_a_failing_call_does_not_end_one() -> None:
    """The pool shrinks when the work stops (a kernel does not keep an audit's threads), and an
    exception is the caller's, not the thread's."""
    from vyxops.fetch.fanout import _Workers

    workers = _Workers(idle_s=0.05)
    seen: list[threading.Thread] = []
    done = threading.Event()

    def task() -> None:
        seen.append(threading.current_thread())
        done.set()

    workers.run(task, Future())
    assert done.wait(5)
    seen[0].join(timeout=5)
    assert not seen[0].is_alive()
    with pytest.raises(KeyError):
        fanout.gather({"a": lambda: {}["missing"], "b": lambda: 1})
    assert fanout.gather({"a": lambda: 1, "b": lambda: 2}) == {"a": 1, "b": 2}


def test_the_turn_goes_to_work_in_the_order_it_came_and_is_re_entrant() -> None:
    """Waiting for the turn: first come, first served; the holder may take it again without waiting."""
    ran: list[str] = []

    def wait_for_turn(name: str) -> threading.Thread:
        def work() -> None:
            with fanout.turn():
                ran.append(name)

        thread = threading.Thread(target=work)
        queued = fanout.waiting_for_turn()
        thread.start()
        while fanout.waiting_for_turn() == queued:  # queued behind the holder, in this order
            time.sleep(0.001)
        return thread

    with fanout.turn(), fanout.turn():  # held, twice over by the same thread
        threads = [wait_for_turn(name) for name in ("analysis", "first", "rest", "second")]
    for thread in threads:
        thread.join(timeout=5)
    assert ran == ["analysis", "first", "rest", "second"]


def test_a_forked_child_fans_out_on_threads_of_its_own() -> None:
    """After a fork the parent's kept threads are gone: the child's fan-outs start their own."""
    import os
    import signal

    assert fanout.map_ordered(lambda i: i, range(4)) == [0, 1, 2, 3]  # the parent now keeps threads
    for _ in range(500):  # ... idle ones, waiting for work
        if fanout.idle_threads() >= 2:
            break
        time.sleep(0.01)
    assert fanout.idle_threads() >= 2
    pid = os.fork()
    if pid == 0:  # the child: a hang here is what the test is about, so it is bounded
        signal.alarm(10)
        ok = fanout.map_ordered(lambda i: i * 2, range(2)) == [0, 2]  # two calls for two idle threads
        with fanout.turn():
            pass
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def fleet_audit(tmp_path: Path, apps: int, faults: Faults | None = None, *, record: bool = False):  # type: ignore[no-untyped-def]
    tmp_path.mkdir(parents=True, exist_ok=True)
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(generate_fleet(apps=apps, machines_per_day=4, days=1, seed=11, failure_rate=0.5))
    session = open_session("sandbox", scenario=scenario, sandbox_dir=tmp_path / "world", faults=faults, record=record)
    return session, run_audit(session)


def test_an_audit_asks_about_each_image_reference_once_and_each_app_only_about_its_own(tmp_path: Path) -> None:
    """One GET per reference for the whole audit (no HEAD); no app's manifests name another app's repository."""
    session, audit = fleet_audit(tmp_path, 4, record=True)
    with session:
        keys = [json.loads(ex["key"]) for ex in session.recorder.exchanges]
    gets = Counter(path for method, path, *_ in keys if method == "GET" and "/manifests/" in path)
    assert gets and max(gets.values()) == 1 and not [k for k in keys if k[0] == "HEAD"]
    for app, inv in audit.investigations.items():
        others = {a for a in audit.apps if a != app}
        repos = {str(r).split("/", 1)[0] for r in inv.evidence.manifests["repository"]}
        assert not repos & others, (app, repos & others)


def test_a_429_storm_slows_an_audit_but_never_fails_it(tmp_path: Path) -> None:
    """Three answers in ten are 429 (seeded; twelve in a row for one request: 1 in 2 million).

    The audit finishes with no app in error and the same verdicts as without the storm."""
    _, calm = fleet_audit(tmp_path / "calm", 3)
    storm = Faults([FaultRule(kind="429", rate=0.3, retry_after=1)], seed=5)
    session, stormy = fleet_audit(tmp_path / "storm", 3, storm)
    session.close()
    assert storm.rules[0].fired >= 10
    assert stormy.errors == {}
    assert stormy.frame()[["app", "worst", "root_cause"]].equals(calm.frame()[["app", "worst", "root_cause"]])


def test_a_bundle_of_a_concurrent_run_lists_its_requests_in_one_order_and_replays_to_the_same_findings(
    tmp_path: Path,
) -> None:
    """Two captures of the seed, answered in whatever order, list the same requests in the same order (sorted by
    key), and each replays to the findings it was captured with. The answers themselves may differ: a platform's
    rate-limit counters (X-RateLimit-Remaining) count requests in the order they arrived."""
    for run in ("one", "two"):
        with open_session("sandbox", scenario="stub-image", sandbox_dir=tmp_path / run, record=True) as s:
            document = investigate(s, "vyx-app").document
            meta = {"project_ref": s.project_ref, "now": str(s.now()), "captured_from": s.label}
            bundle = write_bundle(tmp_path / f"bundle-{run}", s.recorder, meta)  # type: ignore[arg-type]
        with open_session(f"bundle:{bundle}") as replay:
            replayed = investigate(replay, "vyx-app").document
        replayed.pop("target"), document.pop("target")  # bundle:PATH vs sandbox:stub-image, by design
        assert json.dumps(replayed, sort_keys=True) == json.dumps(document, sort_keys=True)
    keys = [
        [json.loads(line)["key"] for line in (tmp_path / f"bundle-{run}" / "exchanges.jsonl").read_text().splitlines()]
        for run in ("one", "two")
    ]
    assert keys[0] == keys[1] and len(keys[0]) >= 15


def test_an_app_checks_its_own_references_a_typo_and_what_the_secret_names_but_not_another_apps() -> None:
    """refs_to_check: releases, :latest, rows and own logs; function-log refs unless another app's repository;
    the DOCKER_IMAGE secret's reference even when it lies in another app's repository."""
    import pandas as pd

    from vyxops.analysis.evidence import refs_in
    from vyxops.analysis.sources import refs_to_check
    from vyxops.core.images import secret_digest

    releases = pd.DataFrame({"image": ["registry.fly.io/a:deployment-1"]})
    machines = pd.DataFrame({"image": ["registry.fly.io/a:deployment-1"]})
    rows = pd.DataFrame({"image": [None]}, dtype=object)
    project_texts = [
        'Fly API error (400): {"error": "failed to get manifest registry.fly.io/b:deployment-9: MANIFEST_UNKNOWN"}',
        "Provisioning machine for user u in region sjc with image registry.fly.io/a-typo:deployment-2",
        "Provisioning machine for user v in region sjc with image registry.fly.io/b:shared",
    ]
    common = dict(own_texts=[], project_refs=refs_in(project_texts), other_apps={"b"})
    refs = refs_to_check("a", releases, machines, rows, secret=None, **common)  # type: ignore[arg-type]
    assert refs == ["registry.fly.io/a:deployment-1", "registry.fly.io/a:latest", "registry.fly.io/a-typo:deployment-2"]
    named = secret_digest("registry.fly.io/b:shared")
    refs = refs_to_check("a", releases, machines, rows, secret=named, **common)  # type: ignore[arg-type]
    assert refs[-1] == "registry.fly.io/b:shared" and "registry.fly.io/b:deployment-9" not in refs


def test_what_every_app_derives_from_a_project_read_is_derived_once_per_audit_and_is_each_apps_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refused creates in the project's function logs are parsed once for the audit, not once per app;
    each app still keeps only its own, as its investigation alone would."""
    from vyxops.analysis.detect import context

    calls: list[int] = []
    parse = context.project_failures

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return parse(*args, **kwargs)

    monkeypatch.setattr(context, "project_failures", counted)
    scenario = Path(__file__).parent / "scenarios" / "two-apps-only-beta-broken.yaml"
    with open_session("sandbox", scenario=scenario) as session:
        audit = run_audit(session)
        assert len(audit.investigations) >= 2 and len(calls) == 1
        refused = {app: inv.context.refusals for app, inv in audit.investigations.items()}
        assert any(not r.empty for r in refused.values())
        for app, frame in refused.items():
            alone = investigate(session, app, until=audit.generated_at).context.refusals
            assert frame.reset_index(drop=True).equals(alone.reset_index(drop=True)), app


def test_an_audit_builds_no_timeline_until_one_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """An audit reports findings only: its investigations build their timeline when first read, once."""
    import vyxops.analysis.sources

    built: list[int] = []
    build = vyxops.analysis.sources.build_timeline

    def counted(**frames):  # type: ignore[no-untyped-def]
        built.append(1)
        return build(**frames)

    monkeypatch.setattr(vyxops.analysis.sources, "build_timeline", counted)
    scenario = Path(__file__).parent / "scenarios" / "two-apps-only-beta-broken.yaml"
    with open_session("sandbox", scenario=scenario) as session:
        audit = run_audit(session)
    assert built == [] and audit.errors == {}
    inv = audit.investigations["beta-app"]
    timeline = inv.timeline
    assert inv.timeline is timeline and built == [1]
    assert not timeline.empty and set(timeline["app"].dropna()) <= {"beta-app", None}


def test_an_audit_lists_the_orgs_apps_once_and_a_token_that_may_not_list_them_is_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The apps are listed once per audit (the read ahead's list is the audit's); when the token may
    not list them, the audit fails with the platform's refusal, not with an empty fleet."""
    from vyxops.core.errors import AuthError
    from vyxops.fetch.clients.fly import FlyClient

    listed: list[str] = []
    list_apps = FlyClient.list_apps

    def counted(self, org):  # type: ignore[no-untyped-def]
        listed.append(org)
        return list_apps(self, org)

    monkeypatch.setattr(FlyClient, "list_apps", counted)
    session, audit = fleet_audit(tmp_path, 3)
    with session:
        assert len(listed) == 1 and len(audit.apps) == 3 and audit.errors == {}

    def refused(self, org):  # type: ignore[no-untyped-def]
        listed.append(org)
        raise AuthError("listing apps: 401", platform="fly-machines", method="GET", path="/v1/apps", status=401)

    monkeypatch.setattr(FlyClient, "list_apps", refused)
    with open_session("sandbox", scenario=tmp_path / "fleet.yaml") as session, pytest.raises(AuthError):
        run_audit(session)


def test_the_project_reads_an_audit_makes_ahead_are_made_once_and_a_failed_one_is_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The function logs are read ahead while the apps are listed. A read that fails is not kept: the
    apps read again and see the logs. One that works is not read again by any app."""
    from vyxops.analysis.evidence import ProjectReads
    from vyxops.core.errors import TransportError

    scenario = Path(__file__).parent / "scenarios" / "two-apps-only-beta-broken.yaml"
    with open_session("sandbox", scenario=scenario) as session:
        alone = investigate(session, "beta-app")
    read = ProjectReads.function_log_rows
    threads: list[str] = []

    def first_fails(self, start, end, function=None):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        if len(threads) == 1:
            raise TransportError("GET logs: ReadTimeout", platform="supabase-mgmt", method="GET", path="/logs")
        return read(self, start, end, function)

    prefetch = ProjectReads.prefetch
    ahead: list[int] = []

    def counted_prefetch(self, start, end):  # type: ignore[no-untyped-def]
        ahead.append(len(threads))
        prefetch(self, start, end)
        ahead.append(len(threads))

    monkeypatch.setattr(ProjectReads, "function_log_rows", first_fails)
    monkeypatch.setattr(ProjectReads, "prefetch", counted_prefetch)
    with open_session("sandbox", scenario=scenario, record=True) as session:
        audit = run_audit(session)
        logs_queries = sum("/analytics/endpoints/logs" in ex["key"] for ex in session.recorder.exchanges)
    # The prefetch ran, the first read of the logs (most often the prefetch's) failed, and it was made again.
    assert len(ahead) == 2 and len(threads) >= 2 and audit.errors == {}
    beta = audit.investigations["beta-app"]
    assert not beta.evidence.function_logs.empty and beta.document == alone.document
    monkeypatch.setattr(ProjectReads, "function_log_rows", read)
    with open_session("sandbox", scenario=scenario, record=True) as session:
        run_audit(session)
        again = sum("/analytics/endpoints/logs" in ex["key"] for ex in session.recorder.exchanges)
    assert again == logs_queries > 0  # read once, ahead, whether or not the first try failed


def test_apps_take_turns_at_building_frames_but_the_project_frames_everyone_waits_for_never_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An app's frames (frames.app_frame) are built one at a time across threads; a project frame
    (frames.make_frame, a plain schema builder) is built even while another thread holds the turn (it is what
    every app is waiting for)."""
    from concurrent.futures import ThreadPoolExecutor

    from vyxops.fetch import frames

    overlap, build = Overlap(), frames._build

    def slow_build(*args, **kwargs):  # type: ignore[no-untyped-def]
        with overlap.call(lasting=0.01):
            return build(*args, **kwargs)

    monkeypatch.setattr(frames, "_build", slow_build)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: frames.app_frame("releases", []), range(16)))
    assert overlap.most == 1
    with fanout.turn():  # another app's analysis holds the turn
        with ThreadPoolExecutor(1) as pool:
            logs = pool.submit(frames.make_frame, "function_logs", []).result(timeout=5)
    assert logs.empty and list(logs.columns) == list(frames.SCHEMAS["function_logs"])


def test_a_filtered_copy_of_a_project_read_gets_its_own_derivation_not_the_whole_reads() -> None:
    """In a notebook, an audit's evidence with its function logs filtered (here: to none) is analysed on those logs:
    the refused creates and image references derived once for the whole read are not handed to the filtered copy
    (pandas carries a frame's attrs through filtering, so attrs cannot say which read a frame is)."""
    import dataclasses

    from vyxops.analysis.evidence import function_log_refs
    from vyxops.analysis.investigate import analyse

    scenario = Path(__file__).parent / "scenarios" / "two-apps-only-beta-broken.yaml"
    with open_session("sandbox", scenario=scenario) as session:
        evidence = run_audit(session).investigations["beta-app"].evidence
    logs = evidence.function_logs
    assert function_log_refs(logs, evidence.derive) and not analyse(evidence).context.refusals.empty
    none = logs[logs["message"] == "no such line"]
    assert function_log_refs(none, evidence.derive) == []
    assert analyse(
        dataclasses.replace(evidence, by_source={**evidence.by_source, "function_logs": none})
    ).context.refusals.empty


def test_a_wide_fan_out_leaves_only_the_kept_idle_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads beyond the kept idle ones end once their work is done: a wide audit does not leave hundreds of
    threads (and their memory) behind; the kept ones serve the next fan-out."""
    workers = fanout._Workers(keep_idle=2)
    monkeypatch.setattr(fanout, "_workers", workers)
    together = threading.Barrier(6, timeout=5)
    ran: list[threading.Thread] = []

    def call(i: int) -> int:
        ran.append(threading.current_thread())
        together.wait()  # six threads at once, or this times out
        return i

    assert fanout.map_ordered(call, range(6), width=6) == list(range(6))
    for _ in range(500):
        if sum(t.is_alive() for t in ran) == 2:
            break
        time.sleep(0.01)
    assert sum(t.is_alive() for t in ran) == 2 and workers.idle == 2
    assert fanout.map_ordered(lambda i: i, range(2)) == [0, 1]

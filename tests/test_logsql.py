"""The sandbox's Supabase logs endpoint runs ClickHouse SQL on DuckDB like the real one.

Row sets are hand-built after the reference samples in
/work/shared/reference/supabase/logs-endpoint-*.json; the expected rows are the
samples' ``result`` arrays.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from vyxops_sandbox.logsql import LogQueryError, run_logs_query

FN = "5f2b7c1e-9a0d-4a51-8c3e-2b6f1d7e9a10"
OTHER_FN = "11111111-2222-4333-8444-555555555555"
URL = "https://abcdefghijklmnopqrst.supabase.co/functions/v1/provision-machine"
DEPLOYMENT = f"abcdefghijklmnopqrst_{FN}_14"
WINDOW = ("2026-09-24T09:00:00Z", "2026-09-24T11:00:00Z")
NOW_MS = 1_790_247_600_000  # 2026-09-24T11:00:00Z


def us(iso: str) -> int:
    """Return the naive-UTC ISO time ``iso`` as unix microseconds."""
    delta = dt.datetime.fromisoformat(iso) - dt.datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def row(id_: str, ts: str, source: str, message: str, severity: str = "", **attributes: str) -> dict[str, Any]:
    """Return one stored log record; keyword names use '__' for the dots of attribute keys."""
    return {
        "id": id_,
        "timestamp_us": us(ts),
        "source": source,
        "event_message": message,
        "severity_text": severity,
        "log_attributes": {k.replace("__", "."): v for k, v in attributes.items()},
    }


def edge(id_: str, ts: str, status: str, execution_id: str, ms: str, function_id: str = FN) -> dict[str, Any]:
    """Return a function_edge_logs invocation row shaped like the reference sample."""
    return row(
        id_, ts, "function_edge_logs", f"POST | {status} | {URL}",
        response__status_code=status, request__method="POST", request__pathname="/functions/v1/provision-machine",
        function_id=function_id, execution_id=execution_id, execution_time_ms=ms,
        deployment_id=f"abcdefghijklmnopqrst_{function_id}_14", version="14",
    )  # fmt: skip


ROWS: list[dict[str, Any]] = [
    edge("b6f0e0a2-3c1d-4b8e-9f7a-1d2c3b4a5e61", "2026-09-24T10:47:13.512", "200",
         "8a1f2e3d-4c5b-4a69-8e7d-6f5a4b3c2d1e", "1843"),
    edge("c7a1f1b3-4d2e-4c9f-8a6b-2e3d4c5b6f72", "2026-09-24T10:41:51.004", "500",
         "9b2e3f4a-5d6c-4b7a-9f8e-7a6b5c4d3e2f", "412"),
    # another function, and one invocation of ours outside the 09:00-11:00 window
    edge("d8b2a2c4-0000-4000-8000-000000000001", "2026-09-24T10:30:00", "503", "e-other", "9", function_id=OTHER_FN),
    edge("d8b2a2c4-0000-4000-8000-000000000002", "2026-09-24T08:59:59.999999", "500", "e-early", "7"),
    row("0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", "2026-09-24T10:47:13.498211", "function_logs",
        "machine created: 148e2d3f7a9e89 image=registry.fly.io/vyx-app:deployment-DOESNOTEXIST\n", "INFO",
        level="info", event_type="Log", function_id=FN, execution_id="8a1f2e3d-4c5b-4a69-8e7d-6f5a4b3c2d1e"),
    row("1e2f3a4b-5c6d-4e7f-9a81-92a3b4c5d6e7", "2026-09-24T10:41:51.001877", "function_logs",
        "Error: Fly API 422: image not found\n    at provisionMachine (file:///.../index.ts:41:11)\n", "ERROR",
        level="error", event_type="UncaughtException", function_id=FN,
        execution_id="9b2e3f4a-5d6c-4b7a-9f8e-7a6b5c4d3e2f"),
    row("2f3a4b5c-6d7e-4f80-8b92-a3b4c5d6e7f8", "2026-09-24T10:41:40.120044", "function_logs",
        "booted (time: 31ms)\n", "", level="log", event_type="Boot", function_id=FN),
    row("3a4b5c6d-0000-4000-8000-000000000003", "2026-09-24T10:20:00", "edge_logs", "GET | 404 | /rest/v1/x",
        request__method="GET", request__path="/rest/v1/x", response__status_code="404"),
    row("3a4b5c6d-0000-4000-8000-000000000004", "2026-09-24T10:21:00", "edge_logs", "GET | 200 | /rest/v1/x",
        request__method="GET", request__path="/rest/v1/x", response__status_code="200"),
    row("3a4b5c6d-0000-4000-8000-000000000005", "2026-09-24T10:22:00", "edge_logs", "POST | 200 | /auth/v1/token",
        request__method="POST", request__path="/auth/v1/token", response__status_code="200"),
]  # fmt: skip


def query(
    sql: str,
    start: str | None = WINDOW[0],
    end: str | None = WINDOW[1],
    rows: list[dict[str, Any]] | None = None,
    now_ms: int = NOW_MS,
) -> list[dict[str, Any]]:
    """Run ``sql`` over ``rows`` (default ROWS) in the sample window."""
    return run_logs_query(ROWS if rows is None else rows, sql, start, end, now_ms)


def refused(sql: str, start: str | None = WINDOW[0], end: str | None = WINDOW[1]) -> LogQueryError:
    """Return the LogQueryError the endpoint answers ``sql`` with, failing if it answers rows."""
    with pytest.raises(LogQueryError) as caught:
        query(sql, start, end)
    return caught.value


# --------------------------------------------------------------------------- reference queries


def test_function_edge_logs_sample_query_returns_the_sample_rows() -> None:
    """The function_edge_logs sample SQL returns exactly the sample's two rows, newest first, map values as strings."""
    sql = (
        "select id, timestamp, event_message, log_attributes['response.status_code'] as status_code, "
        "log_attributes['request.method'] as method, log_attributes['request.pathname'] as pathname, "
        "log_attributes['function_id'] as function_id, log_attributes['execution_id'] as execution_id, "
        "log_attributes['execution_time_ms'] as execution_time_ms, log_attributes['deployment_id'] as deployment_id, "
        "log_attributes['version'] as version from logs where source = 'function_edge_logs' "
        f"and log_attributes['function_id'] = '{FN}' order by timestamp desc limit 100"
    )
    common = {"method": "POST", "pathname": "/functions/v1/provision-machine", "function_id": FN,
              "deployment_id": DEPLOYMENT, "version": "14"}  # fmt: skip
    assert query(sql) == [
        {"id": "b6f0e0a2-3c1d-4b8e-9f7a-1d2c3b4a5e61", "timestamp": "2026-09-24T10:47:13.512000",
         "event_message": f"POST | 200 | {URL}", "status_code": "200", **common,
         "execution_id": "8a1f2e3d-4c5b-4a69-8e7d-6f5a4b3c2d1e", "execution_time_ms": "1843"},
        {"id": "c7a1f1b3-4d2e-4c9f-8a6b-2e3d4c5b6f72", "timestamp": "2026-09-24T10:41:51.004000",
         "event_message": f"POST | 500 | {URL}", "status_code": "500", **common,
         "execution_id": "9b2e3f4a-5d6c-4b7a-9f8e-7a6b5c4d3e2f", "execution_time_ms": "412"},
    ]  # fmt: skip


def test_result_keys_follow_the_select_list_order() -> None:
    """Each result row's keys come in the order the SELECT lists them."""
    sql = (
        "select log_attributes['version'] as version, id, timestamp from logs "
        "where source = 'function_edge_logs' limit 1"
    )
    assert list(query(sql)[0]) == ["version", "id", "timestamp"]


def test_studio_micros_variant_returns_ints_and_floats() -> None:
    """Studio's 5xx query gives timestamp as int µs (toUnixTimestamp64Micro) and execution_time_ms as a float."""
    sql = (
        "select toUnixTimestamp64Micro(timestamp) as timestamp, event_message, "
        "log_attributes['request.method'] as method, log_attributes['response.status_code'] as status_code, "
        "toFloat64OrZero(log_attributes['execution_time_ms']) as execution_time_ms, "
        "log_attributes['execution_id'] as execution_id from logs where source = 'function_edge_logs' "
        f"and log_attributes['function_id'] = '{FN}' "
        "and toInt32OrZero(log_attributes['response.status_code']) >= 500 order by timestamp desc limit 50"
    )
    result = query(sql)
    assert result == [
        {"timestamp": 1790246511004000, "event_message": f"POST | 500 | {URL}", "method": "POST",
         "status_code": "500", "execution_time_ms": 412.0, "execution_id": "9b2e3f4a-5d6c-4b7a-9f8e-7a6b5c4d3e2f"},
    ]  # fmt: skip
    assert type(result[0]["timestamp"]) is int and type(result[0]["execution_time_ms"]) is float


def test_function_logs_sample_query_gives_empty_string_for_missing_key() -> None:
    """The function_logs sample SQL returns the three sample rows, the Boot row's missing execution_id as ''."""
    sql = (
        "select id, timestamp, event_message, severity_text, log_attributes['level'] as level, "
        "log_attributes['event_type'] as event_type, log_attributes['function_id'] as function_id, "
        "log_attributes['execution_id'] as execution_id from logs where source = 'function_logs' "
        f"and log_attributes['function_id'] = '{FN}' order by timestamp desc limit 100"
    )
    assert query(sql) == [
        {"id": "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", "timestamp": "2026-09-24T10:47:13.498211",
         "event_message": "machine created: 148e2d3f7a9e89 image=registry.fly.io/vyx-app:deployment-DOESNOTEXIST\n",
         "severity_text": "INFO", "level": "info", "event_type": "Log", "function_id": FN,
         "execution_id": "8a1f2e3d-4c5b-4a69-8e7d-6f5a4b3c2d1e"},
        {"id": "1e2f3a4b-5c6d-4e7f-9a81-92a3b4c5d6e7", "timestamp": "2026-09-24T10:41:51.001877",
         "event_message": "Error: Fly API 422: image not found\n    at provisionMachine (file:///.../index.ts:41:11)\n",
         "severity_text": "ERROR", "level": "error", "event_type": "UncaughtException", "function_id": FN,
         "execution_id": "9b2e3f4a-5d6c-4b7a-9f8e-7a6b5c4d3e2f"},
        {"id": "2f3a4b5c-6d7e-4f80-8b92-a3b4c5d6e7f8", "timestamp": "2026-09-24T10:41:40.120044",
         "event_message": "booted (time: 31ms)\n", "severity_text": "", "level": "log", "event_type": "Boot",
         "function_id": FN, "execution_id": ""},
    ]  # fmt: skip


def test_missing_map_key_is_empty_string_in_filters_too() -> None:
    """A missing key compares equal to '' and never to NULL, as with a ClickHouse Map."""
    sql = ("select id, log_attributes['nope'] as nope from logs where source = 'function_logs' "
           "and log_attributes['execution_id'] = '' and log_attributes['nope'] is not null")  # fmt: skip
    assert query(sql) == [{"id": "2f3a4b5c-6d7e-4f80-8b92-a3b4c5d6e7f8", "nope": ""}]


def test_runtime_logs_for_chosen_executions() -> None:
    """Studio's runtime-logs query selects function_logs rows whose execution_id is in a list."""
    sql = (
        "select toUnixTimestamp64Micro(timestamp) as timestamp, event_message, log_attributes['level'] as level, "
        "log_attributes['event_type'] as event_type from logs where source = 'function_logs' "
        f"and log_attributes['function_id'] = '{FN}' "
        "and log_attributes['execution_id'] in ('9b2e3f4a-5d6c-4b7a-9f8e-7a6b5c4d3e2f', 'no-such-execution') "
        "order by timestamp desc limit 100"
    )
    assert query(sql) == [
        {"timestamp": 1790246511001877, "event_message": ROWS[5]["event_message"], "level": "error",
         "event_type": "UncaughtException"},
    ]  # fmt: skip


def test_synthesized_invocations_example_with_comment_and_string_time_bounds() -> None:
    """The synthesized example (leading -- comment, timestamp compared with 'YYYY-MM-DD hh:mm:ss') returns its rows."""
    rows = [
        row("r1", "2025-10-02T16:18:40.912", "function_edge_logs", "Created machine 5683732efe3208"),
        row("r2", "2025-10-02T17:59:59.999999", "function_edge_logs", "last"),
        row("r3", "2025-10-02T18:00:00", "function_edge_logs", "at the exclusive SQL bound"),
        row("r4", "2025-10-02T16:30:00", "function_logs", "other source"),
    ]
    sql = (
        "-- provision-machine invocations\nselect id, timestamp, event_message from logs "
        "where source = 'function_edge_logs' and timestamp >= '2025-10-02 16:00:00' "
        "and timestamp < '2025-10-02 18:00:00' order by timestamp desc limit 100"
    )
    assert query(sql, "2025-10-02T16:00:00Z", "2025-10-02T18:30:00Z", rows=rows) == [
        {"id": "r2", "timestamp": "2025-10-02T17:59:59.999999", "event_message": "last"},
        {"id": "r1", "timestamp": "2025-10-02T16:18:40.912000", "event_message": "Created machine 5683732efe3208"},
    ]


def test_timestamp_compares_with_t_separated_string_and_todatetime() -> None:
    """`timestamp` compares with 'YYYY-MM-DDThh:mm:ss' strings and with toDateTime('...') alike."""
    base = "select id from logs where source = 'edge_logs' and timestamp {op} {bound} order by timestamp"
    t_form = query(base.format(op=">=", bound="'2026-09-24T10:21:00'"))
    fn_form = query(base.format(op=">=", bound="toDateTime('2026-09-24 10:21:00')"))
    expected = [{"id": "3a4b5c6d-0000-4000-8000-000000000004"}, {"id": "3a4b5c6d-0000-4000-8000-000000000005"}]
    assert t_form == expected and fn_form == expected


def test_invocation_count_with_count() -> None:
    """Studio's invocation count, count() as count, counts one function's in-window invocations as an int."""
    sql = (
        "select count() as count from logs "
        f"where source = 'function_edge_logs' and log_attributes['function_id'] = '{FN}'"
    )
    assert query(sql) == [{"count": 2}]


def test_status_histogram_with_group_by_and_order() -> None:
    """The docs' status histogram groups toInt32OrZero(status) with count() and orders by the count."""
    sql = (
        "select toInt32OrZero(log_attributes['response.status_code']) as status, count() as count from logs "
        "where source = 'edge_logs' group by status order by count desc, status"
    )
    assert query(sql) == [{"status": 200, "count": 2}, {"status": 404, "count": 1}]


def test_select_alias_usable_in_where() -> None:
    """A select alias can be filtered on in WHERE, as ClickHouse allows."""
    sql = ("select id, toInt32OrZero(log_attributes['response.status_code']) as status from logs "
           "where source = 'function_edge_logs' and status >= 500 order by id")  # fmt: skip
    assert query(sql) == [
        {"id": "c7a1f1b3-4d2e-4c9f-8a6b-2e3d4c5b6f72", "status": 500},
        {"id": "d8b2a2c4-0000-4000-8000-000000000001", "status": 503},
    ]


def test_discover_keys_with_arrayjoin_mapkeys() -> None:
    """The skill's key-discovery query (arrayJoin(mapKeys(log_attributes)), count()) lists each key once, counted."""
    sql = (
        "select arrayJoin(mapKeys(log_attributes)) as key, count() as n from logs "
        "where source = 'edge_logs' group by key order by n desc, key limit 200"
    )
    assert query(sql) == [
        {"key": "request.method", "n": 3},
        {"key": "request.path", "n": 3},
        {"key": "response.status_code", "n": 3},
    ]


def test_match_ilike_and_like() -> None:
    """match() is a regex search, ilike ignores case and like does not."""
    regex = query(r"select id from logs where match(event_message, '^POST \\| 5\\d\\d') order by id")
    assert regex == [{"id": "c7a1f1b3-4d2e-4c9f-8a6b-2e3d4c5b6f72"}, {"id": "d8b2a2c4-0000-4000-8000-000000000001"}]
    insensitive = query("select id from logs where event_message ilike '%BOOTED%'")
    assert insensitive == [{"id": "2f3a4b5c-6d7e-4f80-8b92-a3b4c5d6e7f8"}]
    assert query("select id from logs where event_message like '%BOOTED%'") == []


def test_countif_lower_upper_and_unaliased_names() -> None:
    """countIf, lower and upper work, and unaliased outputs are named by their ClickHouse text such as count()."""
    sql = ("select upper(source) as s, count(), countIf(severity_text = 'ERROR') as errors, lower('AbC') as l "
           "from logs where source = 'function_logs' group by s")  # fmt: skip
    assert query(sql) == [{"s": "FUNCTION_LOGS", "count()": 3, "errors": 1, "l": "abc"}]


def test_has_mapkeys_and_map_output() -> None:
    """has(mapKeys(...), k) tests key presence; a selected map is an object of strings and mapKeys a list."""
    sql = ("select id, has(mapKeys(log_attributes), 'execution_id') as has_exec, log_attributes as attrs, "
           "mapKeys(log_attributes) as keys from logs where event_message like 'booted%'")  # fmt: skip
    expected_attrs = {"level": "log", "event_type": "Boot", "function_id": FN}
    assert query(sql) == [{"id": "2f3a4b5c-6d7e-4f80-8b92-a3b4c5d6e7f8", "has_exec": False, "attrs": expected_attrs,
                           "keys": ["level", "event_type", "function_id"]}]  # fmt: skip


def test_to_start_of_minute_and_hour_render_as_timestamps() -> None:
    """toStartOfMinute/toStartOfHour truncate and render in the documented timestamp format."""
    sql = ("select toStartOfMinute(timestamp) as m, toStartOfHour(timestamp) as h, count() as n from logs "
           "where source = 'function_logs' group by m, h order by m")  # fmt: skip
    assert query(sql) == [
        {"m": "2026-09-24T10:41:00.000000", "h": "2026-09-24T10:00:00.000000", "n": 2},
        {"m": "2026-09-24T10:47:00.000000", "h": "2026-09-24T10:00:00.000000", "n": 1},
    ]


def test_or_zero_conversions_follow_clickhouse() -> None:
    """toInt32OrZero gives 0 for '', '12.5' and text (no rounding); toFloat64OrZero parses '1e3', gives 0.0 for text."""
    sql = (
        "select toInt32OrZero('') as a, toInt32OrZero('12.5') as b, toInt32OrZero('abc') as c, "
        "toInt32OrZero('-7') as d, toFloat64OrZero('1e3') as e, toFloat64OrZero('x') as f "
        "from logs limit 1"
    )
    assert query(sql) == [{"a": 0, "b": 0, "c": 0, "d": -7, "e": 1000.0, "f": 0.0}]


def test_now_is_the_sandbox_clock() -> None:
    """now() reads the sandbox clock (now_ms, to the second), so relative filters see sandbox time, not wall time."""
    assert query("select now() as n") == [{"n": "2026-09-24T11:00:00.000000"}]
    sql = "select id from logs where source = 'edge_logs' and timestamp > now() - interval 40 minute order by id"
    assert query(sql) == [
        {"id": "3a4b5c6d-0000-4000-8000-000000000004"},
        {"id": "3a4b5c6d-0000-4000-8000-000000000005"},
    ]


# --------------------------------------------------------------------------- window


def _minute_rows() -> list[dict[str, Any]]:
    """Return rows 30 s, 90 s and 10 min before NOW_MS."""
    now = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=NOW_MS)
    return [row(name, (now - dt.timedelta(seconds=s)).isoformat(), "edge_logs", name) for name, s in
            (("30s", 30), ("90s", 90), ("10m", 600))]  # fmt: skip


def test_window_defaults_to_last_minute() -> None:
    """With neither bound only the minute before now is queried, even by count()."""
    rows = _minute_rows()
    assert query("select id from logs", None, None, rows=rows) == [{"id": "30s"}]
    assert query("select count() as n from logs", None, None, rows=rows) == [{"n": 1}]


def test_window_with_only_end_is_the_minute_before_it() -> None:
    """With only iso_timestamp_end the window is the minute before it."""
    rows = _minute_rows()
    assert query("select id from logs", None, "2026-09-24T10:58:45Z", rows=rows) == [{"id": "90s"}]


def test_window_with_only_start_runs_to_now() -> None:
    """With only iso_timestamp_start the window runs from it to now."""
    rows = _minute_rows()
    assert query("select id from logs order by id", "2026-09-24T10:55:00", None, rows=rows) == [
        {"id": "30s"},
        {"id": "90s"},
    ]


def test_rows_outside_window_are_invisible_and_z_is_optional() -> None:
    """Rows outside the window never reach the query, and bounds with or without Z mean UTC."""
    sql = (
        f"select id from logs where log_attributes['function_id'] = '{FN}' "
        "and source = 'function_edge_logs' order by id"
    )
    with_z = query(sql)
    without_z = query(sql, "2026-09-24T09:00:00", "2026-09-24T11:00:00")
    with_offset = query(sql, "2026-09-24T11:00:00+02:00", "2026-09-24T13:00:00+02:00")
    assert (
        with_z
        == without_z
        == with_offset
        == [
            {"id": "b6f0e0a2-3c1d-4b8e-9f7a-1d2c3b4a5e61"},
            {"id": "c7a1f1b3-4d2e-4c9f-8a6b-2e3d4c5b6f72"},
        ]
    )


def test_window_over_24h_is_refused() -> None:
    """A window longer than 24 h once rounded to the minute is a 400 validation error; exactly 24 h is accepted."""
    error = refused("select id from logs", "2026-09-23T08:59:00Z", "2026-09-24T09:00:00Z")
    assert error.status == 400 and "24 hours" in str(error)
    assert query("select id from logs", "2026-09-23T08:59:59Z", "2026-09-24T09:00:00Z") is not None  # rounds to 24 h
    assert query("select count() as n from logs", "2026-09-23T11:00:00Z", "2026-09-24T11:00:00Z") == [{"n": len(ROWS)}]


def test_start_only_older_than_24h_is_refused() -> None:
    """A lone start more than 24 h before now makes a window over 24 h, refused with 400."""
    assert refused("select id from logs", "2026-09-20T00:00:00Z", None).status == 400


def test_bad_window_bounds_are_refused() -> None:
    """A start after the end, or a bound that is not ISO 8601, is a 400."""
    assert refused("select id from logs", "2026-09-24T11:00:00Z", "2026-09-24T10:00:00Z").status == 400
    error = refused("select id from logs", "yesterday", "2026-09-24T10:00:00Z")
    assert error.status == 400 and "iso_timestamp_start" in str(error)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "sql",
    ["select * from logs", "SELECT * FROM logs WHERE source = 'edge_logs'", "select logs.* from logs",
     "select id from (select * from logs)"],
)  # fmt: skip
def test_select_star_is_refused(sql: str) -> None:
    """select * (anywhere, qualified or not) is refused with 400."""
    error = refused(sql)
    assert error.status == 400 and "select *" in str(error)


def test_count_star_is_refused_but_count_works() -> None:
    """count(*) is refused with 400 and tells the caller to use count()."""
    error = refused("select count(*) from logs where source = 'edge_logs'")
    assert error.status == 400 and "count()" in str(error)


@pytest.mark.parametrize(
    "sql",
    ["drop table logs", "insert into logs (id) values ('x')", "delete from logs where 1 = 1",
     "create table t (id String)", "alter table logs delete where 1", "set max_threads = 1",
     "describe logs", "truncate table logs", "grant select on logs to someone", "show tables"],
)  # fmt: skip
def test_non_select_is_refused(sql: str) -> None:
    """Statements other than SELECT are refused with 400."""
    error = refused(sql)
    assert error.status == 400 and "SELECT" in str(error)


@pytest.mark.parametrize(
    "sql",
    ["select id from other_table", "select name from system.tables", "select number from numbers(10)",
     "select id from logs join secrets on 1 = 1", "select column0 from read_csv('/etc/passwd')"],
)  # fmt: skip
def test_other_tables_are_refused(sql: str) -> None:
    """Only the logs table (and CTEs over it) may be read: other tables and table functions are 400."""
    error = refused(sql)
    assert error.status == 400 and "logs" in str(error)


def test_cte_over_logs_is_allowed() -> None:
    """A WITH clause over logs is a SELECT over logs and runs."""
    sql = (
        "with e as (select id, timestamp from logs where source = 'edge_logs') "
        "select id from e order by timestamp limit 1"
    )
    assert query(sql) == [{"id": "3a4b5c6d-0000-4000-8000-000000000003"}]


def test_multiple_statements_are_refused() -> None:
    """Two statements in one sql parameter are refused with 400."""
    assert refused("select id from logs; drop table logs").status == 400


def test_syntax_error_is_400_with_short_message() -> None:
    """A syntax error is a 400 whose message is the parser's, on one line."""
    error = refused("select id from logs where")
    assert error.status == 400
    assert str(error).startswith("syntax error") and "\n" not in str(error)


def test_unknown_function_is_400() -> None:
    """A function the engine does not know is a 400, not a crash."""
    error = refused("select noSuchFunction(id) as x from logs")
    assert error.status == 400 and "\n" not in str(error)


def test_log_query_error_carries_status() -> None:
    """LogQueryError defaults to status 400 and str() is the message."""
    error = LogQueryError("nope")
    assert (error.status, str(error)) == (400, "nope")
    assert LogQueryError("busy", status=503).status == 503


# --------------------------------------------------------------------------- size


def test_100k_rows_group_by_and_page() -> None:
    """A 100k-row window is loaded and both a group-by and a bounded page return the right rows."""
    base = us("2026-09-24T10:00:00")
    rows = [
        {
            "id": f"id{i:06d}",
            "timestamp_us": base + i * 10_000,
            "source": "function_edge_logs" if i % 2 else "function_logs",
            "event_message": f"POST | {500 if i % 10 == 0 else 200} | {URL}",
            "severity_text": "INFO",
            "log_attributes": {"response.status_code": "500" if i % 10 == 0 else "200", "function_id": f"f{i % 4}"},
        }
        for i in range(100_000)
    ]
    start, end = "2026-09-24T10:00:00Z", "2026-09-24T11:00:00Z"  # all rows span 1000 s
    histogram = run_logs_query(
        rows,
        "select toInt32OrZero(log_attributes['response.status_code']) as status, count() as n from logs "
        "group by status order by status",
        start, end, NOW_MS,
    )  # fmt: skip
    assert histogram == [{"status": 200, "n": 90_000}, {"status": 500, "n": 10_000}]
    page = run_logs_query(
        rows,
        "select id, timestamp from logs where source = 'function_edge_logs' and log_attributes['function_id'] = 'f3' "
        "order by timestamp desc limit 3",
        start, end, NOW_MS,
    )  # fmt: skip
    assert page == [
        {"id": "id099999", "timestamp": "2026-09-24T10:16:39.990000"},
        {"id": "id099995", "timestamp": "2026-09-24T10:16:39.950000"},
        {"id": "id099991", "timestamp": "2026-09-24T10:16:39.910000"},
    ]


def test_a_query_sees_only_its_own_window_after_a_wider_one() -> None:
    """The engine is reused between queries: a narrow window after a wide one still sees only its own rows."""
    sql = "select id from logs order by id"
    wide = query(sql)
    narrow = query(sql, "2026-09-24T10:59:00Z", "2026-09-24T11:00:00Z")
    assert len(narrow) < len(wide)
    assert query(sql) == wide
    assert query(sql, "2026-09-24T10:59:00Z", "2026-09-24T11:00:00Z") == narrow


def test_window_bounds_are_rounded_to_the_nearest_minute() -> None:
    """The endpoint rounds each bound to the nearest minute (the OpenAPI text): rows just inside a bound may fall out.

    Pinned from management-api-openapi.json (v1-get-project-logs): "The timestamp range must be no more than
    24 hours and is rounded to the nearest minute."
    """
    rows = [
        row("early", "2026-09-24T10:00:10", "function_logs", "10 s after 10:00"),
        row("mid", "2026-09-24T10:00:40", "function_logs", "40 s after 10:00"),
        row("late", "2026-09-24T10:01:20", "function_logs", "80 s after 10:00"),
    ]
    sql = "select id from logs order by timestamp"
    # 10:00:20 rounds down to 10:00 (early comes back), 10:01:10 rounds down to 10:01 (late falls out)
    assert query(sql, "2026-09-24T10:00:20Z", "2026-09-24T10:01:10Z", rows=rows) == [{"id": "early"}, {"id": "mid"}]
    # 10:00:30 rounds up to 10:01: early and mid fall out although they are inside the asked window
    assert query(sql, "2026-09-24T10:00:30Z", "2026-09-24T10:01:30Z", rows=rows) == [{"id": "late"}]

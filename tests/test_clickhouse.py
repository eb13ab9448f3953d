"""
The ClickHouse section of the scaling report, against chDB through clickhouse-connect.

chDB allows one engine path per process, so the integration tests share one module-scoped
client on a temporary path, closed at the end of the module so other modules may open theirs.
Each test seeds its own table, so the tests do not depend on each other's data.
"""

import base64
import dataclasses
import http.server
import json
import re
import socket
import threading
from datetime import date, datetime, timedelta, timezone

import clickhouse_connect
import pytest

from aspects_routing.conf import parse
from aspects_routing.scaling.collectors.clickhouse import (
    ClickHouseReport,
    DayVolume,
    OutOfRange,
    PartitionStorage,
    bytes_per_row,
    collect_clickhouse,
    daily_volumes,
    disk_from_row,
    in_range,
    partition_from_row,
    superset_from_row,
    project_storage,
    quote_identifier,
    redact_dsn,
    summarise_storage,
    system_table,
    target_from_dsn,
    target_from_settings,
)
from aspects_routing.testing.xapi import (
    DEFAULT_TTL_EXPRESSION,
    create_xapi_table,
    plan_hours,
    xapi_table_ddl,
    rows_per_day,
    seed_xapi_events,
)

PASSWORD = "Sup3r-Secret-Pw"
USER = "ch_secret_user"


def every_output(report: ClickHouseReport) -> str:
    """All the ways a report is shown: repr, str, and JSON of its fields."""
    as_json = json.dumps(dataclasses.asdict(report), default=str)
    return "\n".join([repr(report), str(report), as_json, *(str(m) for _name, m in report.measurements())])


# --- pure functions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn, shown",
    [
        (f"http://{USER}:{PASSWORD}@clickhouse:8123/xapi", "http://clickhouse:8123/xapi"),
        (f"https://{USER}:{PASSWORD}@ch.example.com:8443/?password={PASSWORD}", "https://ch.example.com:8443/"),
        (f"clickhouse://{USER}:{PASSWORD}@[::1]:8123/xapi#frag", "clickhouse://[::1]:8123/xapi"),
        ("chdb:///var/lib/aspects-demo", "chdb:///var/lib/aspects-demo"),
        ("chdb://memory", "chdb://memory"),
    ],
)
def test_redact_dsn_drops_credentials(dsn, shown):
    assert redact_dsn(dsn) == shown


def test_target_from_dsn_reads_database_and_credentials():
    target = target_from_dsn(f"http://{USER}:{PASSWORD}@clickhouse:8123/xapi_custom")
    assert (target.database, target.table, target.username, target.password) == (
        "xapi_custom", "xapi_events_all", USER, PASSWORD
    )
    assert PASSWORD not in repr(target)
    assert set(target.secrets) == {PASSWORD}  # a user name is not a secret: it is never scrubbed
    assert target_from_dsn("chdb:///tmp/x").database == "xapi"
    with pytest.raises(ValueError, match="unsupported ClickHouse DSN scheme 'mysql'"):
        target_from_dsn("mysql://root@localhost/xapi")


def test_target_from_aspects_settings_is_read_at_call_time(settings):
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {
        "url": "http://clickhouse:8123",
        "username": USER,
        "password": PASSWORD,
        "database": "event_sink",
        "timeout_secs": 5,
    }
    target = target_from_settings()
    assert (target.dsn, target.database, target.table, target.username, target.password) == (
        "http://clickhouse:8123", "xapi", "xapi_events_all", USER, PASSWORD
    )
    assert target.source == "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG"
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {
        "url": "https://ch:8443", "xapi_database": "lrs", "xapi_table": "statements"
    }
    target = target_from_settings()
    assert (target.database, target.table) == ("lrs", "statements")
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {}
    assert target_from_settings() is None


def test_cluster_name_is_validated_and_quoted():
    assert system_table("parts", None) == "system.parts"
    assert system_table("parts", "openedx-cluster") == "clusterAllReplicas(`openedx-cluster`, system.parts)"
    for bad in ("x`, system.users) --", "a b", "", "x'y"):
        with pytest.raises(ValueError):
            system_table("parts", bad)
    assert quote_identifier("xapi-prod") == "`xapi-prod`"
    for bad in ("xapi; DROP TABLE x", "x`y", "x.y", "1abc"):
        with pytest.raises(ValueError):
            quote_identifier(bad)


def test_bad_cluster_setting_is_a_system_check_error():
    config = parse({"CLICKHOUSE_CLUSTER": "c`, system.users) --"})
    assert config.clickhouse_cluster is None
    assert [p.id for p in config.problems] == ["aspects_routing.W132"]
    assert parse({"CLICKHOUSE_CLUSTER": "openedx.main-1"}).problems == ()


def test_projection_arithmetic():
    today = date(2026, 11, 27)
    daily = (
        DayVolume(date(2026, 11, 22), 0, 0),  # before the first event: not counted
        DayVolume(date(2026, 11, 23), 1000, 250_000),
        DayVolume(date(2026, 11, 24), 0, 0),  # a quiet day after the start: counted
        DayVolume(date(2026, 11, 25), 3000, 750_000),
        DayVolume(date(2026, 11, 26), 2000, 500_000),
        DayVolume(today, 9999, 9_999_999),  # incomplete: not counted
    )
    projection = project_storage(daily, today, retention_days=365, headroom=1.5)
    assert projection.days_measured == 4
    assert projection.growth_rows_per_day == 1500
    assert projection.growth_bytes_per_day == 375_000
    assert projection.projected_bytes == 375_000 * 365 * 1.5
    assert project_storage(daily[-1:], today, 365) is None  # only today: no complete day
    assert project_storage((DayVolume(date(2026, 11, 26), 5, None),), today, 365) is None  # no sizes


def test_storage_is_sized_on_the_largest_replica():
    partitions = (
        PartitionStorage("ch-0", "202610", 1_000, 200_000, 1_000_000, 3),
        PartitionStorage("ch-0", "202611", 500, 120_000, 600_000, 2),
        PartitionStorage("ch-1", "202610", 1_000, 210_000, 1_000_000, 5),
        PartitionStorage("ch-1", "202611", 400, 100_000, 480_000, 9),  # lagging replica: smaller
    )
    storage = summarise_storage(partitions)
    assert (storage.rows, storage.bytes_on_disk, storage.active_parts, storage.partitions, storage.replicas) == (
        1_500, 320_000, 5, 2, 2
    )
    assert storage.total_bytes_all_replicas == 630_000
    # Bytes per row of each month from the replica holding most of it.
    # and of the whole table (for days whose partition is not a month), under "*".
    assert bytes_per_row(partitions) == {"202610": 200.0, "202611": 240.0, "*": (200_000 + 120_000) / 1_500}
    daily = daily_volumes(date(2026, 11, 2), {date(2026, 10, 31): 10, date(2026, 11, 1): 5}, bytes_per_row(partitions), 3)
    assert daily == (
        DayVolume(date(2026, 10, 31), 10, 2_000),
        DayVolume(date(2026, 11, 1), 5, 1_200),
        DayVolume(date(2026, 11, 2), 0, 0),
    )


def test_plan_is_exact_deterministic_and_has_rhythm():
    end = datetime(2026, 11, 27, 10, 30, 15, tzinfo=timezone.utc)
    plan = plan_hours(days=28, events_per_day=10_000, end=end, seed=7)
    assert sum(h.rows for h in plan) == 280_000
    assert plan == plan_hours(days=28, events_per_day=10_000, end=end, seed=7)
    assert plan != plan_hours(days=28, events_per_day=10_000, end=end, seed=8)
    assert plan[0].start == datetime(2026, 10, 31, tzinfo=timezone.utc)
    assert plan[-1].end == end and plan[-1].rows >= 1
    by_day = dict(rows_per_day(plan))
    assert len(by_day) == 28 and sum(by_day.values()) == 280_000
    full_days = [d for d in by_day if d != end.date()]
    weekend = [by_day[d] for d in full_days if d.weekday() >= 5]
    weekday = [by_day[d] for d in full_days if d.weekday() < 5]
    assert max(weekend) < min(weekday)
    afternoon = sum(h.rows for h in plan[:-11] if h.start.hour == 15)
    night = sum(h.rows for h in plan[:-11] if h.start.hour == 3)
    assert afternoon > 3 * night


# --- chDB ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chdb(tmp_path_factory):
    """One chDB engine for the module (one path per process), closed afterwards."""
    client = clickhouse_connect.get_client(interface="chdb", path=str(tmp_path_factory.mktemp("chdb")))
    yield client
    client.close()


def server_now(client) -> datetime:
    micros = client.query("SELECT toUnixTimestamp64Micro(now64(6))").result_rows[0][0]
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)


def test_seeded_table_gives_exact_rows_per_day_lag_and_projection(chdb):
    # One second more than 90 minutes back: setting the microseconds moves the time by up to +0.25 s,
    # which made the lag a fraction of a second short of 90 minutes in one run in many.
    end = (server_now(chdb) - timedelta(minutes=90, seconds=1)).replace(microsecond=250_000)
    seeded = seed_xapi_events(chdb, days=12, events_per_day=3_000, end=end, seed=3, database="xapi_exact")

    report = collect_clickhouse(chdb, database="xapi_exact", retention_days=365, timeout=30)

    assert report.unavailable is None
    lag = report.lag.value
    assert lag.latest_event == end
    assert lag.lag_seconds == (lag.server_now - end).total_seconds()
    assert 90 * 60 <= lag.lag_seconds < 90 * 60 + 300

    daily = report.daily.value
    assert len(daily) == 30
    measured = {d.day: d.rows for d in daily if d.rows}
    assert measured == dict(seeded.rows_per_day)
    assert sum(d.rows for d in daily) == seeded.rows == 36_000

    storage = report.storage.value
    assert storage.rows == 36_000 and storage.replicas == 1
    assert storage.bytes_on_disk > 0
    # Per-day bytes share out the partitions' bytes by rows: they add up to the table's size.
    assert abs(sum(d.compressed_bytes for d in daily) - storage.bytes_on_disk) <= len(daily)

    projection = report.projection.value
    today = lag.server_now.date()
    complete = [d for d in daily if seeded.first_hour.date() <= d.day < today]
    assert projection.days_measured == len(complete)
    assert projection.growth_rows_per_day == sum(d.rows for d in complete) / len(complete)
    assert projection.growth_bytes_per_day == sum(d.compressed_bytes for d in complete) / len(complete)
    assert projection.projected_bytes == round(projection.growth_bytes_per_day * 365 * 1.5)
    # What the sizing model reads from the section.
    assert report.rows_per_day == projection.growth_rows_per_day
    assert report.bytes_per_row == storage.bytes_on_disk / 36_000
    assert report.storage_bytes == storage.bytes_on_disk
    assert report.superset_query_p95_seconds is None  # chDB has no query_log


def test_data_older_than_the_window_still_gives_the_lag(chdb):
    end = (server_now(chdb) - timedelta(days=40)).replace(microsecond=0)
    seed_xapi_events(chdb, days=2, events_per_day=100, end=end, seed=9, database="xapi_stale")
    report = collect_clickhouse(chdb, database="xapi_stale", timeout=30)
    assert report.lag.value.latest_event == end
    assert report.lag.value.lag_seconds >= 40 * 86400
    assert all(d.rows == 0 for d in report.daily.value)
    assert report.storage.value.rows == 200
    assert "complete UTC day" in report.projection.unavailable


def test_empty_table_has_no_latest_event(chdb):
    create_xapi_table(chdb, "xapi_empty")
    report = collect_clickhouse(chdb, database="xapi_empty", timeout=30)
    assert report.lag.ok and report.lag.value.latest_event is None and report.lag.value.lag_seconds is None
    assert report.storage.value.rows == 0 and report.storage.value.replicas == 0


def test_seeder_builds_the_aspects_schema_and_real_looking_statements(chdb):
    end = datetime(2026, 11, 20, 18, 0, tzinfo=timezone.utc)
    seeded = seed_xapi_events(chdb, days=3, events_per_day=2_000, end=end, seed=11, database="xapi_shape")
    engine, partition_key, sorting_key, primary_key, ddl = chdb.query(
        "SELECT engine, partition_key, sorting_key, primary_key, create_table_query FROM system.tables "
        "WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": "xapi_shape", "t": "xapi_events_all"},
    ).result_rows[0]
    assert engine == "ReplacingMergeTree"
    assert partition_key == "toYYYYMM(emission_time)"
    assert sorting_key == primary_key == "emission_time, event_id"
    assert "TTL toDateTime(emission_time) + toIntervalYear(1)" in ddl
    assert DEFAULT_TTL_EXPRESSION.startswith("toDateTime(emission_time)")

    columns = chdb.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
        parameters={"db": "xapi_shape", "t": "xapi_events_all"},
    ).result_rows
    assert columns == [("event_id", "UUID"), ("emission_time", "DateTime64(6)"), ("event", "String")]

    rows = chdb.query(
        "SELECT event_id, emission_time, event FROM xapi_shape.xapi_events_all ORDER BY rand() LIMIT 200"
    ).result_rows
    verbs, courses = set(), set()
    for event_id, emission_time, event in rows:
        statement = json.loads(event)
        assert statement["id"] == str(event_id)
        assert statement["timestamp"].startswith(emission_time.strftime("%Y-%m-%dT%H:%M:%S"))
        assert statement["actor"]["account"]["name"]
        verbs.add(statement["verb"]["id"])
        parent = statement["context"]["contextActivities"]["parent"][0]
        assert parent["definition"]["type"] == "http://adlnet.gov/expapi/activities/course"
        courses.add(parent["id"])
    assert len(verbs) >= 6 and len(courses) >= 4
    count, avg_len, distinct_ids = chdb.query(
        "SELECT count(), avg(length(event)), uniqExact(event_id) FROM xapi_shape.xapi_events_all"
    ).result_rows[0]
    assert count == distinct_ids == seeded.rows == 6_000
    assert 800 <= avg_len <= 1500  # xAPI statements from event-routing-backends run about 1 KB


def test_same_seed_same_table(chdb):
    end = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    digests = []
    for database in ("xapi_same_a", "xapi_same_b", "xapi_same_c"):
        seed = 5 if database != "xapi_same_c" else 6
        seed_xapi_events(chdb, days=2, events_per_day=500, end=end, seed=seed, database=database)
        digests.append(
            chdb.query(
                f"SELECT groupBitXor(cityHash64(event_id, emission_time, event)) FROM {database}.xapi_events_all"
            ).result_rows[0][0]
        )
    assert digests[0] == digests[1] != digests[2]


def test_missing_table_is_unavailable_not_a_crash(chdb):
    report = collect_clickhouse(chdb, database="xapi_nowhere", table="xapi_events_all", timeout=30)
    assert report.unavailable is None
    assert report.server_version.ok
    for item in (report.lag, report.daily, report.storage, report.projection):
        assert not item.ok
        assert "xapi_nowhere" in item.unavailable
        assert str(item).startswith("unavailable: ")
    assert report.disks.ok and report.delayed_inserts.ok


def test_system_tables_chdb_lacks_are_unavailable_and_the_rest_renders(chdb):
    seed_xapi_events(chdb, days=2, events_per_day=200, database="xapi_sys", seed=1)
    report = collect_clickhouse(chdb, database="xapi_sys", timeout=30)
    assert not report.superset_queries.ok
    assert "query_log" in report.superset_queries.unavailable
    # chDB has no system.asynchronous_metrics: the part count comes from system.parts instead.
    parts = report.max_parts_per_partition
    assert parts.ok and parts.value >= 1
    assert "system.asynchronous_metrics unavailable" in parts.source
    assert report.delayed_inserts.value == 0
    assert report.pending_distributed_files.value == 0
    assert report.stuck_replication_tasks.value == 0
    disk = report.disks.value[0]
    assert 0 < disk.free_bytes <= disk.total_bytes
    assert report.lag.ok and report.daily.ok and report.storage.ok


@pytest.fixture
def server_only_tables(chdb):
    """
    ``system.query_log`` and ``system.asynchronous_metrics`` as a ClickHouse server has them (the
    columns the collector reads, same types). chDB has neither but lets us create them, so the
    collector's real SQL runs on them; they are dropped afterwards.
    """
    chdb.command(
        "CREATE TABLE system.query_log (event_date Date, event_time DateTime, "
        "type Enum8('QueryStart' = 1, 'QueryFinish' = 2, 'ExceptionBeforeStart' = 3, 'ExceptionWhileProcessing' = 4), "
        "query_kind LowCardinality(String), user LowCardinality(String), http_user_agent String, "
        "query_duration_ms UInt64) ENGINE = MergeTree ORDER BY event_time"
    )
    chdb.command(
        "CREATE TABLE system.asynchronous_metrics (metric String, value Float64, description String) "
        "ENGINE = MergeTree ORDER BY metric"
    )
    yield chdb
    chdb.command("DROP TABLE system.query_log SYNC")
    chdb.command("DROP TABLE system.asynchronous_metrics SYNC")


def test_superset_p95_and_part_count_from_server_tables(server_only_tables):
    chdb = server_only_tables
    log = "INSERT INTO system.query_log SELECT toDate(t), t, {type:String}, {kind:String}, {user:String}, {ua:String}, d FROM "
    superset_ms = list(range(1, 101))
    chdb.command(
        log + "(SELECT now() - toIntervalSecond(number * 10) AS t, number + 1 AS d FROM numbers(100))",
        parameters={"type": "QueryFinish", "kind": "Select", "user": "ch_report", "ua": "clickhouse-connect/0.8"},
    )
    # Another user, but Superset's engine names itself in the user agent: counted.
    chdb.command(
        log + "(SELECT now() - toIntervalMinute(5) AS t, 5000 AS d)",
        parameters={"type": "QueryFinish", "kind": "Select", "user": "analyst",
                    "ua": "superset/4.1.1 clickhouse-connect/0.8.0 (lv:py/3.11; mode:sqlalchemy)"},
    )
    superset_ms.append(5000)
    not_superset = [
        ("QueryFinish", "Select", "ch_lms", "clickhouse-connect/0.8", "now() - toIntervalMinute(1)"),  # the LMS
        ("QueryStart", "Select", "ch_report", "", "now() - toIntervalMinute(1)"),  # not finished
        ("QueryFinish", "Insert", "ch_report", "", "now() - toIntervalMinute(1)"),  # not a read
        ("QueryFinish", "Select", "ch_report", "", "now() - toIntervalMinute(61)"),  # before the window
    ]
    for kind_type, kind, user, agent, when in not_superset:
        chdb.command(
            log + f"(SELECT {when} AS t, 99999 AS d)",
            parameters={"type": kind_type, "kind": kind, "user": user, "ua": agent},
        )
    chdb.command(
        "INSERT INTO system.asynchronous_metrics VALUES ('MaxPartCountForPartition', 42, ''), ('Uptime', 9, '')"
    )
    expected_p95 = chdb.query(
        "SELECT quantileExact(0.95)(d) FROM (SELECT arrayJoin({d:Array(UInt64)}) AS d)",
        parameters={"d": superset_ms},
    ).result_rows[0][0]

    report = collect_clickhouse(chdb, database="xapi_sys", timeout=30)

    superset = report.superset_queries.value
    assert superset.queries == 101
    assert superset.p95_seconds == expected_p95 / 1000
    assert superset.users == ("ch_report",)
    assert report.superset_query_p95_seconds == superset.p95_seconds
    assert report.max_parts_per_partition.value == 42
    assert report.max_parts_per_partition.source == "system.asynchronous_metrics"


def test_unknown_cluster_leaves_the_xapi_measurements(chdb):
    seed_xapi_events(chdb, days=2, events_per_day=200, database="xapi_cluster", seed=2)
    report = collect_clickhouse(chdb, database="xapi_cluster", cluster="no_such_cluster", timeout=30)
    assert report.lag.ok and report.daily.ok
    assert not report.storage.ok and "no_such_cluster" in report.storage.unavailable
    assert "clusterAllReplicas(`no_such_cluster`, system.parts)" == report.storage.source
    assert not report.disks.ok


def test_invalid_cluster_name_makes_the_section_unavailable(chdb):
    report = collect_clickhouse(chdb, cluster="c`, system.users) --", timeout=30)
    assert report.unavailable and "not a valid ClickHouse name" in report.unavailable
    assert all(not item.ok for _name, item in report.measurements())


def test_timeout_spent_gives_unavailable(chdb):
    report = collect_clickhouse(chdb, database="xapi_sys", timeout=0)
    assert report.unavailable and "timeout ran out" in report.unavailable


def test_chdb_dsn_runs_the_same_queries(chdb):
    path = chdb.path  # a second client on the same path shares the engine
    seed_xapi_events(chdb, days=2, events_per_day=300, database="xapi", seed=4)
    report = collect_clickhouse(f"chdb://{path}", timeout=30)
    assert report.dsn == f"chdb://{path}" and report.unavailable is None
    assert report.storage.value.rows == 600


# --- a server that is down or is not ClickHouse -------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("scheme", ["http", "clickhouse", "https", "clickhouses"])
def test_down_server_is_unavailable_and_secret_free(scheme):
    dsn = f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{closed_port()}/xapi"
    report = collect_clickhouse(dsn, timeout=5)
    assert report.unavailable.startswith(f"cannot connect to {scheme}://127.0.0.1:")
    assert all(str(item).startswith("unavailable: ") for _name, item in report.measurements())
    output = every_output(report)
    assert PASSWORD not in output


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with a 500 that repeats the credentials it was sent, decoded."""

    def do_GET(self):  # pylint: disable=invalid-name
        self._echo()

    def do_POST(self):  # pylint: disable=invalid-name
        self._echo()

    def _echo(self):
        auth = self.headers.get("Authorization", "")
        decoded = base64.b64decode(auth.split(" ", 1)[1]).decode() if " " in auth else ""
        body = f"Code: 516. bad login {decoded} {self.headers.get('X-ClickHouse-Key')} {self.path}".encode()
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


def test_credentials_echoed_by_a_server_are_scrubbed():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dsn = f"http://{USER}:{PASSWORD}@127.0.0.1:{server.server_address[1]}/xapi"
        report = collect_clickhouse(dsn, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert report.unavailable
    output = every_output(report)
    assert PASSWORD not in output
    assert "***" in report.unavailable  # the echoed credentials were there, and were scrubbed


# --- nonsense data never drives advice -----------------------------------------------------------------


def _insert_event(client, database: str, when: datetime) -> None:
    client.command(
        f"INSERT INTO `{database}`.xapi_events_all VALUES (generateUUIDv4(), {{t:DateTime64(6, 'UTC')}}, '{{}}')",
        parameters={"t": when},
    )


@pytest.mark.parametrize("ahead", [timedelta(minutes=10), timedelta(days=365 * 50)])
def test_future_dated_rows_are_clock_skew_and_do_not_hide_a_stall(chdb, ahead):
    from aspects_routing.scaling.recommendations import clickhouse_findings  # pylint: disable=C0415

    database = f"xapi_future_{int(ahead.total_seconds())}"
    now = server_now(chdb)
    stalled_at = (now - timedelta(days=3)).replace(microsecond=0)
    seed_xapi_events(chdb, days=4, events_per_day=200, end=stalled_at, seed=5, database=database)
    _insert_event(chdb, database, now + ahead)  # one row from a host whose clock is ahead

    report = collect_clickhouse(chdb, database=database, timeout=30)

    lag = report.lag.value
    assert lag.latest_event == stalled_at  # the newest row that is not in the future
    assert lag.lag_seconds >= 3 * 86400  # the three-day stall shows
    assert lag.future_rows == 1 and lag.skew_seconds >= ahead.total_seconds() - 5
    titles = [r.title for r in clickhouse_findings(report)]
    assert any("clock skew" in t for t in titles), titles
    assert any("The newest xAPI event is" in t for t in titles), titles


def test_only_future_rows_in_the_window_fall_back_to_the_whole_table(chdb):
    now = server_now(chdb)
    seed_xapi_events(chdb, days=1, events_per_day=50, end=(now - timedelta(days=60)).replace(microsecond=0),
                     seed=6, database="xapi_future_only")
    _insert_event(chdb, "xapi_future_only", now + timedelta(hours=2))
    lag = collect_clickhouse(chdb, database="xapi_future_only", timeout=30).lag.value
    assert lag.lag_seconds >= 59 * 86400 and lag.future_rows == 1


@pytest.mark.parametrize(
    "partition_by, basis",
    [("tuple()", "whole table"), ("toYYYYMMDD(emission_time)", "day's partition"), ("toMonday(emission_time)", "whole table")],
)
def test_growth_is_projected_whatever_the_partitioning(chdb, partition_by, basis):
    database = "xapi_part_" + "".join(c for c in partition_by if c.isalnum())[:20].lower()
    chdb.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    chdb.command(
        xapi_table_ddl(database, ttl_expression=None).replace(
            "PARTITION BY toYYYYMM(emission_time)", f"PARTITION BY {partition_by}"
        )
    )
    end = (server_now(chdb) - timedelta(minutes=30)).replace(microsecond=0)
    seed_xapi_events(chdb, days=5, events_per_day=1_000, end=end, seed=8, database=database, create=False)

    report = collect_clickhouse(chdb, database=database, retention_days=365, timeout=30)

    projection = report.projection.value
    assert basis in projection.bytes_basis
    assert projection.growth_bytes_per_day > 0 and projection.projected_bytes > 0
    per_row = report.storage.value.bytes_on_disk / report.storage.value.rows
    # Every complete day is sized from real bytes/row, within what the partitions hold.
    complete = [d for d in report.daily.value if d.rows and d.day < end.date()]
    assert all(0 < d.compressed_bytes <= d.rows * per_row * 3 for d in complete)


@pytest.mark.parametrize(
    "row, message",
    [
        (("ch-0", "202611", -5, 100, 100, 1), "rows of partition '202611' on 'ch-0' = -5, outside"),
        (("ch-0", "202611", 10, 10**300, 100, 1), "bytes_on_disk of partition '202611' on 'ch-0' = 10000000000"),
        (("ch-0", "202611", 10, 100, 100, None), "active parts of partition '202611' on 'ch-0' = None, not a number"),
        (("ch-0", "202611", 10, float("nan"), 100, 1), "= nan"),
    ],
)
def test_out_of_range_partition_values_are_refused(row, message):
    with pytest.raises(OutOfRange, match=re.escape(message)):
        partition_from_row(row)


def test_out_of_range_disk_and_superset_values_are_refused():
    with pytest.raises(OutOfRange, match="free_space 200 > total_space 100"):
        disk_from_row(("ch-0", "default", 200, 100))
    assert disk_from_row(("ch-0", "default", 50, 100)).free_ratio == 0.5
    with pytest.raises(OutOfRange, match="Superset query p95"):
        superset_from_row((3, 1.8e19), 60, ("ch_report",))
    with pytest.raises(OutOfRange, match="not a number"):
        superset_from_row((3, None), 60, ("ch_report",))
    assert superset_from_row((0, float("nan")), 60, ()).p95_seconds is None  # no queries: no p95 to check
    assert in_range(42.0, "x", "parts") == 42


def test_injected_system_values_become_unavailable_and_drive_no_advice(server_only_tables):
    from aspects_routing.scaling.recommendations import clickhouse_findings  # pylint: disable=C0415

    chdb = server_only_tables
    chdb.command(
        "INSERT INTO system.query_log VALUES (today(), now() - 60, 'QueryFinish', 'Select', 'ch_report', '', "
        "18000000000000000000)"
    )
    chdb.command("INSERT INTO system.asynchronous_metrics VALUES ('MaxPartCountForPartition', -5, '')")
    seed_xapi_events(chdb, days=2, events_per_day=100, database="xapi_injected", seed=12)

    report = collect_clickhouse(chdb, database="xapi_injected", timeout=30)

    assert not report.superset_queries.ok and "outside" in report.superset_queries.unavailable
    assert str(report.superset_queries).startswith("unavailable: ClickHouse returned Superset query p95")
    assert report.superset_query_p95_seconds is None  # the sizing model never sees it
    # The bad metric is refused; the part count is then counted from system.parts instead.
    assert report.max_parts_per_partition.ok and report.max_parts_per_partition.value >= 1
    assert "MaxPartCountForPartition = -5.0, outside" in report.max_parts_per_partition.source
    assert not any("parts in one partition" in r.title for r in clickhouse_findings(report))


@pytest.mark.parametrize(
    "dsn, shown",
    [
        ("http://admin:Hunter#2secret@127.0.0.1:{port}/xapi", "http://127.0.0.1:{port}/xapi"),  # the case
        ("http://admin:Hunter/2?sec@ret@127.0.0.1:{port}/xapi", "http://127.0.0.1:{port}/xapi"),
    ],
)
def test_reserved_characters_in_the_dsn_password_reach_the_right_host_and_never_show(dsn, shown):
    port = closed_port()
    report = collect_clickhouse(dsn.format(port=port), timeout=5)
    assert report.dsn == shown.format(port=port)
    assert report.unavailable == f"cannot connect to {shown.format(port=port)} (--clickhouse-dsn): connection refused"
    assert "Hunter" not in every_output(report)


def test_a_dsn_with_no_findable_host_says_why_without_the_password():
    report = collect_clickhouse("http://admin:Hunter#2secret", timeout=5)
    assert report.unavailable.startswith("--clickhouse-dsn: is not a usable URL: no host[:port] could be found")
    assert report.dsn == "http://<unparseable URL>"
    assert "Hunter" not in every_output(report)

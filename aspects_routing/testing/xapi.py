"""
The Aspects xAPI table, and a seeder that fills it with a realistic stretch of synthetic events.

Schema
======
Ralph writes every xAPI statement to ``xapi.xapi_events_all`` (tutor-contrib-aspects settings
``ASPECTS_XAPI_DATABASE`` / ``ASPECTS_RAW_XAPI_TABLE``). Its newest definition in the Aspects
ClickHouse migrations (0029 turned ``event_str`` into the String column ``event``; 0032 added
monthly partitions) is::

    event_id UUID, emission_time DateTime64(6), event String
    ENGINE ReplacingMergeTree  (ReplicatedReplacingMergeTree with a cluster)
    ORDER BY (emission_time, event_id)  PRIMARY KEY (emission_time, event_id)
    PARTITION BY toYYYYMM(emission_time)

and Aspects expires its data with ``ASPECTS_DATA_TTL_EXPRESSION``
(default ``toDateTime(emission_time) + INTERVAL 1 YEAR``), which :func:`xapi_table_ddl` adds as the
table TTL. Simplification: the replicated engine (cluster installs) needs Keeper, which chDB does
not have, so only the single-node engine is built here.

Seeder
======
:func:`plan_hours` decides, in Python and deterministically from ``seed``, how many events fall in
each hour (a daily rhythm peaking in the afternoon UTC, quieter weekends, a little jitter).
:func:`seed_xapi_events` then generates the rows inside ClickHouse with one ``INSERT ... SELECT``
over that plan: course (a few popular courses and a long tail), verb (navigation, video, problem,
grade, enrolment verbs in realistic proportions), learner, block, and an xAPI statement shaped like
the ones event-routing-backends emits (about 1 KB each). No per-row Python, so ten million rows
take seconds, not hours. The last event is stamped exactly ``end``, so tests know the newest
``emission_time``; the plan gives the exact rows per day.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from aspects_routing.scaling.collectors.clickhouse import quote_identifier

XAPI_DATABASE = "xapi"
XAPI_TABLE = "xapi_events_all"
#: Aspects' default ``ASPECTS_DATA_TTL_EXPRESSION``.
DEFAULT_TTL_EXPRESSION = "toDateTime(emission_time) + INTERVAL 1 YEAR"

#: (course key, relative popularity). A few big courses and a tail, across three orgs.
COURSES = (
    ("course-v1:OpenedX+DemoX+Demo_Course", 40),
    ("course-v1:MITx+6.00.1x+2026_T1", 25),
    ("course-v1:MITx+18.01x+2026_T1", 12),
    ("course-v1:HarvardX+CS50P+2026", 10),
    ("course-v1:HarvardX+PH125.1x+2026_T2", 6),
    ("course-v1:OpenedX+Accessibility101+2026", 4),
    ("course-v1:OpenedX+ProjectMgmt+2026_Q3", 2),
    ("course-v1:MITx+14.73x+2025_T3", 1),
)

# Result shapes attached to a statement, by verb.
_NO_RESULT, _SCORE, _VIDEO, _GRADE, _PROGRESS = range(5)

#: (verb id, display, activity type, block type, result shape, relative frequency), from the verbs
#: event-routing-backends emits and the Aspects models read.
VERBS = (
    ("https://w3id.org/xapi/dod-isd/verbs/navigated", "navigated",
     "http://adlnet.gov/expapi/activities/module", "sequential", _NO_RESULT, 30),
    ("https://w3id.org/xapi/video/verbs/played", "played",
     "https://w3id.org/xapi/video/activity-type/video", "video", _VIDEO, 15),
    ("https://w3id.org/xapi/video/verbs/paused", "paused",
     "https://w3id.org/xapi/video/activity-type/video", "video", _VIDEO, 12),
    ("https://w3id.org/xapi/video/verbs/seeked", "seeked",
     "https://w3id.org/xapi/video/activity-type/video", "video", _VIDEO, 5),
    ("http://adlnet.gov/expapi/verbs/completed", "completed",
     "https://w3id.org/xapi/video/activity-type/video", "video", _VIDEO, 4),
    ("https://w3id.org/xapi/acrossx/verbs/evaluated", "evaluated",
     "http://adlnet.gov/expapi/activities/cmi.interaction", "problem", _SCORE, 12),
    ("http://adlnet.gov/expapi/verbs/progressed", "progressed",
     "http://adlnet.gov/expapi/activities/course", "course", _PROGRESS, 8),
    ("http://id.tincanapi.com/verb/earned", "earned",
     "http://adlnet.gov/expapi/activities/course", "course", _GRADE, 6),
    ("http://adlnet.gov/expapi/verbs/asked", "asked",
     "http://adlnet.gov/expapi/activities/question", "problem", _NO_RESULT, 2),
    ("http://adlnet.gov/expapi/verbs/registered", "registered",
     "http://adlnet.gov/expapi/activities/course", "course", _NO_RESULT, 3),
    ("http://id.tincanapi.com/verb/unregistered", "unregistered",
     "http://adlnet.gov/expapi/activities/course", "course", _NO_RESULT, 1),
)


def xapi_table_ddl(
    database: str = XAPI_DATABASE,
    table: str = XAPI_TABLE,
    *,
    ttl_expression: str | None = DEFAULT_TTL_EXPRESSION,
) -> str:
    """
    ``CREATE TABLE`` for the Aspects raw xAPI table (see the module docstring).

    ``ttl_expression`` is SQL, as the operator writes ``ASPECTS_DATA_TTL_EXPRESSION`` in Tutor;
    ``None`` leaves the table without TTL. Names are validated and quoted.
    """
    ttl = f"\nTTL {ttl_expression}" if ttl_expression else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {quote_identifier(database)}.{quote_identifier(table)}\n"
        "(\n"
        "    event_id UUID NOT NULL,\n"
        "    emission_time DateTime64(6) NOT NULL,\n"
        "    event String NOT NULL\n"
        ")\n"
        "ENGINE ReplacingMergeTree\n"
        "ORDER BY (emission_time, event_id)\n"
        "PARTITION BY toYYYYMM(emission_time)\n"
        f"PRIMARY KEY (emission_time, event_id){ttl}"
    )


def create_xapi_table(
    client,
    database: str = XAPI_DATABASE,
    table: str = XAPI_TABLE,
    *,
    ttl_expression: str | None = DEFAULT_TTL_EXPRESSION,
) -> None:
    """Create the database and the xAPI table through a clickhouse-connect ``client`` (idempotent)."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}")
    client.command(xapi_table_ddl(database, table, ttl_expression=ttl_expression))


@dataclass(frozen=True)
class HourPlan:
    """How many events the seeder puts in one hour, ``[start, end]``."""

    start: datetime
    end: datetime  # start + 1h (exclusive), or the seed's end (inclusive) for the last hour
    rows: int


@dataclass(frozen=True)
class SeedResult:
    """What :func:`seed_xapi_events` inserted."""

    database: str
    table: str
    rows: int
    first_hour: datetime
    latest_event: datetime  # the newest emission_time, exactly
    rows_per_day: tuple[tuple[date, int], ...]  # UTC days, oldest first
    seconds: float


def _activity(hour: int, weekday: int) -> float:
    """Relative activity of an hour (UTC): low at night, peak mid-afternoon; weekends at 60 %."""
    daily = 0.15 + 0.85 * max(0.0, math.sin(math.pi * (hour - 5) / 19)) if 5 <= hour else 0.15
    return daily * (0.6 if weekday >= 5 else 1.0)


def plan_hours(
    *,
    days: int,
    events_per_day: int,
    end: datetime,
    seed: int = 0,
) -> tuple[HourPlan, ...]:
    """
    Split ``days × events_per_day`` events over the UTC hours of ``days`` calendar days ending at ``end``.

    The first day starts at midnight; the last day stops at ``end`` (its hour holds the event
    stamped exactly ``end``). Counts follow :func:`_activity` with ±10 % jitter drawn from
    ``random.Random(seed)``, rounded by largest remainder so they sum exactly to the total.
    """
    if days < 1 or events_per_day < 1:
        raise ValueError("days and events_per_day must be at least 1")
    end = end.astimezone(timezone.utc).replace(tzinfo=timezone.utc)
    last_hour = end.replace(minute=0, second=0, microsecond=0)
    first_hour = datetime.combine(end.date() - timedelta(days=days - 1), datetime.min.time(), timezone.utc)
    rng = random.Random(seed)
    starts, weights = [], []
    hour = first_hour
    while hour <= last_hour:
        starts.append(hour)
        weights.append(_activity(hour.hour, hour.weekday()) * rng.uniform(0.9, 1.1))
        hour += timedelta(hours=1)
    # The last hour is cut at ``end``: weight it by the part that exists.
    weights[-1] *= max((end - last_hour) / timedelta(hours=1), 1 / 3600)
    total = days * events_per_day
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    if counts[-1] == 0:  # the hour holding ``end`` must hold the newest event
        counts[counts.index(max(counts))] -= 1
        counts[-1] = 1
    return tuple(
        HourPlan(start, end if i == len(starts) - 1 else start + timedelta(hours=1), rows)
        for i, (start, rows) in enumerate(zip(starts, counts))
    )


def rows_per_day(plan: tuple[HourPlan, ...]) -> tuple[tuple[date, int], ...]:
    """Exact events per UTC day of a plan, oldest first."""
    days: dict[date, int] = {}
    for hour in plan:
        days[hour.start.date()] = days.get(hour.start.date(), 0) + hour.rows
    return tuple(days.items())


def _micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


# One row per (hour, k): k < rows of that hour. Every random choice is a hash of (seed, hour, k),
# so the same seed gives the same table. ``last`` marks the hour cut at ``end``: its k = 0 event
# is stamped exactly ``end``; other events of the hour fall in [start, end].
_SEED_SQL = """
INSERT INTO %(target)s (event_id, emission_time, event)
SELECT
    reinterpretAsUUID(concat(reinterpretAsFixedString(h1), reinterpretAsFixedString(h2))) AS event_id,
    fromUnixTimestamp64Micro(
        toInt64(starts[b] + if(last AND k = 0, spans[b], toInt64(h1 % toUInt64(spans[b] + last))))
    ) AS emission_time,
    concat(
        '{"id":"', toString(event_id), '",',
        '"actor":{"objectType":"Agent","account":{"homePage":"', {lms:String}, '","name":"', actor, '"}},',
        '"verb":{"id":"', verb_ids[v], '","display":{"en":"', verb_names[v], '"}},',
        '"object":{"id":"', object_id, '","objectType":"Activity","definition":{"type":"', activity_types[v],
        '","name":{"en":"', block_types[v], ' ', toString(block % 97), '"}}},',
        multiIf(
            result_kinds[v] = {score:UInt8},
            concat('"result":{"success":', if(h2 % 3 = 0, 'false', 'true'), ',"score":{"scaled":',
                   toString(round((h2 % 101) / 100, 2)), ',"raw":', toString(h2 % 11), ',"min":0,"max":10},',
                   '"response":"choice_', toString(h3 % 4), '"},'),
            result_kinds[v] = {video:UInt8},
            concat('"result":{"extensions":{"https://w3id.org/xapi/video/extensions/time":',
                   toString(round((h2 % 600000) / 1000, 3)), '}},'),
            result_kinds[v] = {grade:UInt8},
            concat('"result":{"score":{"scaled":', toString(round((h2 % 101) / 100, 2)), '}},'),
            result_kinds[v] = {progress:UInt8},
            concat('"result":{"completion":false,"extensions":{"https://w3id.org/xapi/cmi5/result/extensions/',
                   'progress":', toString(h2 % 101), '}},'),
            ''
        ),
        '"context":{"registration":"', toString(reinterpretAsUUID(concat(
            reinterpretAsFixedString(cityHash64({seed:UInt64}, learner, c)), reinterpretAsFixedString(toUInt64(c))))),
        '","contextActivities":{"parent":[{"id":"', course_url, '","objectType":"Activity",',
        '"definition":{"name":{"en-US":"', course_keys[c], '"},"type":"http://adlnet.gov/expapi/activities/course"}}]},',
        '"extensions":{"https://w3id.org/xapi/openedx/extension/transformer-version":"event-routing-backends@9.3.0",',
        '"https://w3id.org/xapi/openedx/extensions/session-id":"', lower(hex(h3)), lower(hex(h4)), '",',
        '"https://w3id.org/xapi/acrossx/extensions/type":"audit"}},',
        '"timestamp":"', formatDateTime(emission_time, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC'), '",',
        '"version":"1.0.3"}'
    ) AS event
FROM
(
    SELECT
        {starts:Array(Int64)} AS starts,
        {spans:Array(Int64)} AS spans,
        {course_keys:Array(String)} AS course_keys,
        {verb_ids:Array(String)} AS verb_ids,
        {verb_names:Array(String)} AS verb_names,
        {activity_types:Array(String)} AS activity_types,
        {block_types:Array(String)} AS block_types,
        {result_kinds:Array(UInt8)} AS result_kinds,
        toUInt64(number + 1) AS b,
        toUInt8(b = length(starts)) AS last,
        arrayJoin(range({counts:Array(UInt32)}[b])) AS k,
        cityHash64({seed:UInt64}, b, k) AS h1,
        cityHash64(h1, 1) AS h2,
        cityHash64(h1, 2) AS h3,
        cityHash64(h1, 3) AS h4,
        arrayFirstIndex(x -> x > h2 % {course_total:UInt64}, {course_cum:Array(UInt64)}) AS c,
        arrayFirstIndex(x -> x > h3 % {verb_total:UInt64}, {verb_cum:Array(UInt64)}) AS v,
        h4 % {learners:UInt64} AS learner,
        h1 % 200 AS block,
        toString(reinterpretAsUUID(concat(
            reinterpretAsFixedString(cityHash64({seed:UInt64}, learner)), reinterpretAsFixedString(learner)))) AS actor,
        concat({lms:String}, '/course/', course_keys[c]) AS course_url,
        if(block_types[v] = 'course', course_url,
           concat({lms:String}, '/xblock/block-v1:', substring(course_keys[c], 11), '+type@', block_types[v],
                  '+block@', lower(hex(cityHash64({seed:UInt64}, c, block))), lower(hex(cityHash64(c, block))))) AS object_id
    FROM numbers_mt({hours:UInt64})
)
SETTINGS max_block_size = 1
"""


def _cumulative(weights) -> list[int]:
    total, out = 0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def seed_xapi_events(  # pylint: disable=too-many-arguments
    client,
    *,
    days: int = 30,
    events_per_day: int = 20_000,
    end: datetime | None = None,
    seed: int = 0,
    learners: int = 5_000,
    database: str = XAPI_DATABASE,
    table: str = XAPI_TABLE,
    create: bool = True,
    ttl_expression: str | None = DEFAULT_TTL_EXPRESSION,
    lms_url: str = "https://lms.example.com",
) -> SeedResult:
    """
    Insert ``days × events_per_day`` synthetic xAPI events, the newest stamped exactly ``end``.

    ``client`` is a clickhouse-connect client (HTTP server or chDB). ``end`` defaults to now
    (UTC, whole seconds). With ``create`` the database and table are created first.
    Returns the exact rows per UTC day and the newest ``emission_time``.
    """
    end = (end or datetime.now(timezone.utc).replace(microsecond=0)).astimezone(timezone.utc)
    plan = plan_hours(days=days, events_per_day=events_per_day, end=end, seed=seed)
    if create:
        create_xapi_table(client, database, table, ttl_expression=ttl_expression)
    course_cum = _cumulative(weight for _key, weight in COURSES)
    verb_cum = _cumulative(verb[5] for verb in VERBS)
    started = time.perf_counter()
    client.command(
        _SEED_SQL.replace("%(target)s", f"{quote_identifier(database)}.{quote_identifier(table)}"),
        parameters={
            "hours": len(plan),
            "starts": [_micros(h.start) for h in plan],
            "spans": [_micros(h.end) - _micros(h.start) for h in plan],
            "counts": [h.rows for h in plan],
            "seed": seed,
            "learners": learners,
            "lms": lms_url,
            "course_keys": [key for key, _weight in COURSES],
            "course_cum": course_cum,
            "course_total": course_cum[-1],
            "verb_ids": [verb[0] for verb in VERBS],
            "verb_names": [verb[1] for verb in VERBS],
            "activity_types": [verb[2] for verb in VERBS],
            "block_types": [verb[3] for verb in VERBS],
            "result_kinds": [verb[4] for verb in VERBS],
            "verb_cum": verb_cum,
            "verb_total": verb_cum[-1],
            "score": _SCORE,
            "video": _VIDEO,
            "grade": _GRADE,
            "progress": _PROGRESS,
        },
    )
    return SeedResult(
        database=database,
        table=table,
        rows=sum(h.rows for h in plan),
        first_hour=plan[0].start,
        latest_event=end,
        rows_per_day=rows_per_day(plan),
        seconds=time.perf_counter() - started,
    )

"""
ClickHouse: is the xAPI data arriving, how fast is it growing, and is the server healthy.

Everything goes through clickhouse-connect, so the same queries serve a ClickHouse server (HTTP)
and the embedded chDB engine (``chdb://`` DSN). Each measurement is a :class:`Measured`: a value,
or ``unavailable: <reason>`` when its source failed (a system table chDB lacks, a missing grant,
the section's timeout) while the others still render.

Where the numbers come from
===========================
* **Lag**: ``now64() − max(emission_time)`` of the xAPI table, from the same query as rows/day
  (so only the last 30 days are read); the whole table only when the window is empty.
* **Rows per UTC day** (last 30 days): ``count() GROUP BY toDate(emission_time)`` restricted to the
  window. ``emission_time`` leads the primary key, so ClickHouse skips older granules and reads
  that one 8-byte column only, never the ~1 KB ``event`` strings. Part metadata cannot give rows
  per day (a part spans a month partition), and this is the cheapest exact count.
* **Bytes per day**: each day's rows × (``bytes_on_disk`` ÷ ``rows``) of the month partition that
  holds it, from ``system.parts``: compressed columns plus marks and index, i.e. the disk it takes.
* **Storage**: ``system.parts`` (active parts) of the xAPI table. With a cluster, per replica; the
  largest replica is the one sized.
* **Projection**: ``growth/day × retention_days × headroom`` where growth/day is the mean of the
  complete UTC days in the window from the first day with data (so a young install is not diluted
  by the empty days before it), and headroom (default 1.5) leaves room for merges, which
  temporarily need the size of the parts they merge, and for growth.
* **MaxPartCountForPartition** (``system.asynchronous_metrics``; where that table is missing, as
  in chDB, the same figure counted from ``system.parts``), **DelayedInserts** (``system.metrics``),
  pending distributed files (``sum(data_files)`` of ``system.distribution_queue``), stuck
  replication tasks (``system.replication_queue`` with ``num_tries > 100``), free space per disk
  (``system.disks``).
* **Superset query p95**: ``system.query_log`` finished SELECTs of the last hour run by Superset's
  ClickHouse user (Aspects' ``ASPECTS_CLICKHOUSE_REPORT_USER``, ``ch_report`` by default) or whose
  HTTP user agent names Superset (Superset's ClickHouse engine sets clickhouse-connect's product
  name to ``superset/<version>``).

With a cluster, system tables are read on every replica through
``clusterAllReplicas(<cluster>, system.<table>)``; the cluster name is an identifier, so it must
match :data:`CLUSTER_RE` and is quoted, never pasted raw. Values always go through ``parameters=``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Generic, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from aspects_routing.conf import CLUSTER_NAME_RE
from aspects_routing.scaling.sizing import STORAGE_HEADROOM

T = TypeVar("T")

DEFAULT_DATABASE = "xapi"
DEFAULT_TABLE = "xapi_events_all"
#: Aspects' ``ASPECTS_CLICKHOUSE_REPORT_USER`` default: the user Superset reads ClickHouse as.
DEFAULT_SUPERSET_USERS = ("ch_report",)
#: The sizing model's disk headroom, so the report's projection and the generated config agree.
DEFAULT_HEADROOM = STORAGE_HEADROOM
WINDOW_DAYS = 30
STUCK_REPLICATION_TRIES = 100

#: A database or table name: letters, digits, ``_`` and ``-`` (safe inside back-quotes).
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,190}$")
#: A cluster name as ``remote_servers`` declares it: letters, digits, ``_``, ``-`` and ``.``.
CLUSTER_RE = CLUSTER_NAME_RE

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def quote_identifier(name: str, pattern: re.Pattern = IDENTIFIER_RE) -> str:
    """``name`` back-quoted for SQL, after checking it against ``pattern`` (``ValueError`` if it fails)."""
    if not isinstance(name, str) or not pattern.match(name):
        raise ValueError(f"{name!r} is not a valid ClickHouse name (letters, digits, _ and - only)")
    return f"`{name}`"


# --- connection -----------------------------------------------------------------------------------


def redact_dsn(dsn: str | None) -> str | None:
    """
    ``dsn`` without user name, password or query string, for display.

    ``http://ch_lms:s3cret@clickhouse:8123/xapi`` -> ``http://clickhouse:8123/xapi``;
    ``chdb:///var/lib/demo`` stays as it is (chDB has no credentials).
    """
    if not dsn:
        return dsn
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        return "<not a URL>"
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    netloc, slash, path = rest.partition("/")
    netloc = netloc.rpartition("@")[2]
    return f"{scheme}://{netloc}{slash}{path}"


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where the xAPI data is and how to log in. Credentials never appear in ``repr``."""

    dsn: str = field(repr=False)
    database: str = DEFAULT_DATABASE
    table: str = DEFAULT_TABLE
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    source: str = "--clickhouse-dsn"

    @property
    def redacted(self) -> str:
        """The DSN as it may be shown."""
        return redact_dsn(self.dsn) or ""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings to scrub from any message: password and user name, in all their spellings."""
        found = set()
        parts = urlsplit(self.dsn)
        for value in (self.password, self.username, parts.password, parts.username):
            if value and len(value) >= 3:
                found.update({value, unquote(value)})
        for name, value in parse_qsl(parts.query):
            if any(word in name.lower() for word in ("pass", "token", "secret", "key")) and len(value) >= 3:
                found.add(value)
        return tuple(sorted(found, key=len, reverse=True))


def target_from_dsn(dsn: str) -> ClickHouseTarget:
    """
    A target from ``http(s)://user:pass@host:port/db``, ``clickhouse://...`` (HTTP, or HTTPS on
    port 443/8443 or with ``?secure=true``), ``clickhouses://...`` (HTTPS) or ``chdb://...`` (embedded chDB: ``chdb:///path`` or
    ``chdb://memory``). An HTTP DSN's path names the xAPI database (default ``xapi``).
    """
    parts = urlsplit(dsn)
    if parts.scheme not in ("http", "https", "clickhouse", "clickhouses", "chdb"):
        raise ValueError(
            f"unsupported ClickHouse DSN scheme {parts.scheme!r}; "
            "use http://, https://, clickhouse://, clickhouses:// or chdb://"
        )
    database = DEFAULT_DATABASE
    if parts.scheme != "chdb" and parts.path.strip("/"):
        database = unquote(parts.path.strip("/").split("/")[0])
    return ClickHouseTarget(
        dsn=dsn,
        database=database,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def target_from_settings(django_settings=None) -> ClickHouseTarget | None:
    """
    A target from Aspects' ``EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG`` (``url``, ``username``,
    ``password``, ``xapi_database``, ``xapi_table``), read now; ``None`` when it has no ``url``.
    """
    if django_settings is None:
        from django.conf import settings as django_settings  # pylint: disable=import-outside-toplevel
    config = getattr(django_settings, "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG", None) or {}
    url = config.get("url") if isinstance(config, dict) else None
    if not url:
        return None
    return ClickHouseTarget(
        dsn=url,
        database=config.get("xapi_database") or DEFAULT_DATABASE,
        table=config.get("xapi_table") or DEFAULT_TABLE,
        username=config.get("username") or None,
        password=config.get("password") or None,
        source="EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG",
    )


def connect(target: ClickHouseTarget, *, timeout: float = 10.0):
    """A clickhouse-connect client for ``target`` (raises clickhouse-connect's errors if it cannot)."""
    import clickhouse_connect  # pylint: disable=import-outside-toplevel

    parts = urlsplit(target.dsn)
    if parts.scheme == "chdb":
        return clickhouse_connect.get_client(dsn=target.dsn)
    query = dict(parse_qsl(parts.query))
    secure = (
        parts.scheme in ("https", "clickhouses")
        or str(query.pop("secure", "")).lower() == "true"
        or parts.port in (443, 8443)
    )
    host = parts.hostname or "localhost"
    return clickhouse_connect.get_client(
        interface="https" if secure else "http",
        host=host,
        port=parts.port or (8443 if secure else 8123),
        username=target.username or "default",
        password=target.password or "",
        connect_timeout=timeout,
        send_receive_timeout=timeout,
        query_retries=0,
        **({"settings": query} if query else {}),
    )


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured(Generic[T]):
    """One measurement: its ``value``, or why it is ``unavailable``; ``source`` says where it came from."""

    value: T | None = None
    unavailable: str | None = None
    source: str = ""

    @property
    def ok(self) -> bool:
        """True when the value was measured."""
        return self.unavailable is None

    def __str__(self) -> str:
        return f"unavailable: {self.unavailable}" if self.unavailable is not None else str(self.value)


@dataclass(frozen=True)
class XapiLag:
    """How far behind the newest xAPI event is. ``latest_event`` is None when the table is empty."""

    server_now: datetime
    latest_event: datetime | None
    lag_seconds: float | None


@dataclass(frozen=True)
class DayVolume:
    """xAPI rows emitted on one UTC day, and the disk they take (None without ``system.parts``)."""

    day: date
    rows: int
    compressed_bytes: int | None


@dataclass(frozen=True)
class PartitionStorage:
    """One partition (a month) of the xAPI table on one replica."""

    host: str
    partition: str
    rows: int
    bytes_on_disk: int
    uncompressed_bytes: int
    parts: int


@dataclass(frozen=True)
class Storage:
    """The xAPI table's size on its largest replica (``replicas`` > 1 only with a cluster)."""

    rows: int
    bytes_on_disk: int
    uncompressed_bytes: int
    active_parts: int
    partitions: int
    replicas: int
    total_bytes_all_replicas: int


@dataclass(frozen=True)
class StorageProjection:
    """Disk one replica needs at the retention Aspects keeps: ``growth × retention_days × headroom``."""

    growth_rows_per_day: float
    growth_bytes_per_day: float
    days_measured: int
    retention_days: int
    headroom: float
    projected_bytes: int
    formula: str = "growth_bytes_per_day × retention_days × headroom"


@dataclass(frozen=True)
class DiskSpace:
    """Free space of one ClickHouse disk."""

    host: str
    name: str
    free_bytes: int
    total_bytes: int

    @property
    def free_ratio(self) -> float | None:
        """Free share of the disk, None when its size is unknown."""
        return self.free_bytes / self.total_bytes if self.total_bytes else None


@dataclass(frozen=True)
class SupersetQueries:
    """Superset's finished queries in the window; ``p95_seconds`` None when there were none."""

    queries: int
    p95_seconds: float | None
    window_minutes: int
    users: tuple[str, ...]


@dataclass(frozen=True)
class ClickHouseReport:  # pylint: disable=too-many-instance-attributes
    """The ClickHouse section of the scaling report. ``unavailable`` set: nothing could be measured."""

    dsn: str  # redacted
    source: str
    database: str
    table: str
    cluster: str | None
    retention_days: int
    unavailable: str | None
    server_version: Measured[str]
    lag: Measured[XapiLag]
    daily: Measured[tuple[DayVolume, ...]]
    storage: Measured[Storage]
    projection: Measured[StorageProjection]
    max_parts_per_partition: Measured[int]
    delayed_inserts: Measured[int]
    pending_distributed_files: Measured[int]
    stuck_replication_tasks: Measured[int]
    disks: Measured[tuple[DiskSpace, ...]]
    superset_queries: Measured[SupersetQueries]
    seconds: float

    @property
    def rows_per_day(self) -> float | None:
        """Measured xAPI growth in rows/day (the sizing model's ``rows_per_day``), None if unmeasured."""
        return self.projection.value.growth_rows_per_day if self.projection.ok else None

    @property
    def bytes_per_row(self) -> float | None:
        """Bytes on disk per xAPI row (the sizing model's ``bytes_per_row``), None if unmeasured or empty."""
        if not self.storage.ok or not self.storage.value.rows:
            return None
        return self.storage.value.bytes_on_disk / self.storage.value.rows

    @property
    def storage_bytes(self) -> int | None:
        """Bytes on disk of the xAPI table on its largest replica, None if unmeasured."""
        return self.storage.value.bytes_on_disk if self.storage.ok else None

    @property
    def superset_query_p95_seconds(self) -> float | None:
        """p95 of Superset's queries, None if unreadable or there were none."""
        return self.superset_queries.value.p95_seconds if self.superset_queries.ok else None

    def measurements(self) -> tuple[tuple[str, Measured], ...]:
        """Every measurement with its field name, in report order (for renderers)."""
        names = (
            "server_version", "lag", "daily", "storage", "projection", "max_parts_per_partition",
            "delayed_inserts", "pending_distributed_files", "stuck_replication_tasks", "disks",
            "superset_queries",
        )
        return tuple((name, getattr(self, name)) for name in names)


# --- pure helpers (unit-tested) ---------------------------------------------------------------------


def system_table(name: str, cluster: str | None) -> str:
    """``system.<name>``, or ``clusterAllReplicas(`<cluster>`, system.<name>)`` with a cluster."""
    quote_identifier(name)
    if cluster is None:
        return f"system.{name}"
    return f"clusterAllReplicas({quote_identifier(cluster, CLUSTER_RE)}, system.{name})"


def window_days(today: date, days: int = WINDOW_DAYS) -> tuple[date, ...]:
    """The ``days`` UTC days ending with ``today``, oldest first."""
    return tuple(today - timedelta(days=days - 1 - i) for i in range(days))


def daily_volumes(
    today: date,
    counts: dict[date, int],
    bytes_per_row: dict[str, float] | None,
    days: int = WINDOW_DAYS,
) -> tuple[DayVolume, ...]:
    """One :class:`DayVolume` per day of the window (0 rows where none); bytes from the day's month partition."""
    volumes = []
    for day in window_days(today, days):
        rows = counts.get(day, 0)
        size = None
        if bytes_per_row is not None:
            size = round(rows * bytes_per_row.get(f"{day:%Y%m}", 0.0))
        volumes.append(DayVolume(day, rows, size))
    return tuple(volumes)


def project_storage(
    daily: tuple[DayVolume, ...],
    today: date,
    retention_days: int,
    headroom: float = DEFAULT_HEADROOM,
) -> StorageProjection | None:
    """
    Growth from the complete days (before ``today``) starting at the first day with data, projected
    to ``retention_days``; None without a complete day of data or without byte sizes.
    """
    complete = [d for d in daily if d.day < today]
    while complete and complete[0].rows == 0:
        complete.pop(0)
    if not complete or any(d.compressed_bytes is None for d in complete):
        return None
    growth_rows = sum(d.rows for d in complete) / len(complete)
    growth_bytes = sum(d.compressed_bytes for d in complete) / len(complete)
    return StorageProjection(
        growth_rows_per_day=growth_rows,
        growth_bytes_per_day=growth_bytes,
        days_measured=len(complete),
        retention_days=retention_days,
        headroom=headroom,
        projected_bytes=round(growth_bytes * retention_days * headroom),
    )


def summarise_storage(partitions: tuple[PartitionStorage, ...]) -> Storage:
    """Per-replica totals of the table's partitions; the largest replica is reported."""
    hosts: dict[str, list[PartitionStorage]] = {}
    for part in partitions:
        hosts.setdefault(part.host, []).append(part)
    if not hosts:
        return Storage(0, 0, 0, 0, 0, 0, 0)
    largest = max(hosts.values(), key=lambda ps: sum(p.bytes_on_disk for p in ps))
    return Storage(
        rows=sum(p.rows for p in largest),
        bytes_on_disk=sum(p.bytes_on_disk for p in largest),
        uncompressed_bytes=sum(p.uncompressed_bytes for p in largest),
        active_parts=sum(p.parts for p in largest),
        partitions=len(largest),
        replicas=len(hosts),
        total_bytes_all_replicas=sum(p.bytes_on_disk for p in partitions),
    )


def bytes_per_row(partitions: tuple[PartitionStorage, ...]) -> dict[str, float]:
    """``bytes_on_disk ÷ rows`` per partition id, on the replica holding most of it."""
    best: dict[str, PartitionStorage] = {}
    for part in partitions:
        if part.rows and (part.partition not in best or part.rows > best[part.partition].rows):
            best[part.partition] = part
    return {pid: p.bytes_on_disk / p.rows for pid, p in best.items()}


def _from_micros(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=int(value))


# --- collection ---------------------------------------------------------------------------------------


class _Run:
    """One collection: the client, the deadline, and how failures become reasons."""

    def __init__(self, client, timeout: float, secrets: tuple[str, ...]):
        self.client = client
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.secrets = secrets

    def reason(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        # ClickHouse appends the whole query ("In scope SELECT ...") and a stack trace.
        text = text.split(" Stack trace:")[0].split(". In scope ")[0]
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text[:300]

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"not measured: the ClickHouse section's {self.timeout:g} s timeout ran out")
        settings = {"max_execution_time": max(1, int(remaining))}
        return self.client.query(sql, parameters=parameters or {}, settings=settings).result_rows

    def measure(self, source: str, compute: Callable[[], T]) -> Measured[T]:
        try:
            return Measured(compute(), None, source)
        except Exception as exc:  # pylint: disable=broad-except
            return Measured(None, self.reason(exc), source)


def _unavailable_report(target_dsn: str, source: str, database: str, table: str, cluster, retention_days,
                        reason: str, seconds: float) -> ClickHouseReport:
    missing: Measured = Measured(None, reason)
    return ClickHouseReport(
        target_dsn, source, database, table, cluster, retention_days, reason,
        *([missing] * 11), seconds,
    )


def collect_clickhouse(  # pylint: disable=too-many-arguments,too-many-locals,too-many-statements
    client_or_dsn=None,
    *,
    database: str | None = None,
    table: str | None = None,
    cluster: str | None = None,
    retention_days: int = 365,
    timeout: float = 30.0,
    headroom: float = DEFAULT_HEADROOM,
    superset_users: tuple[str, ...] = DEFAULT_SUPERSET_USERS,
    query_window_minutes: int = 60,
) -> ClickHouseReport:
    """
    Measure ClickHouse for the scaling report. Never raises.

    ``client_or_dsn``: a clickhouse-connect client (used as is, not closed), a DSN string (see
    :func:`target_from_dsn`), a :class:`ClickHouseTarget`, or None for Aspects' own
    ``EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG``. ``database``/``table`` default to the target's
    (``xapi.xapi_events_all``). ``timeout`` bounds the whole section.
    """
    started = time.perf_counter()
    target: ClickHouseTarget | None = None
    client = None
    owned = False
    try:
        if client_or_dsn is None:
            target = target_from_settings()
            if target is None:
                raise LookupError(
                    "no ClickHouse configured: EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG has no 'url' "
                    "and no --clickhouse-dsn was given"
                )
        elif isinstance(client_or_dsn, str):
            target = target_from_dsn(client_or_dsn)
        elif isinstance(client_or_dsn, ClickHouseTarget):
            target = client_or_dsn
        else:
            client = client_or_dsn
    except Exception as exc:  # pylint: disable=broad-except
        secrets = (client_or_dsn,) if isinstance(client_or_dsn, str) else ()
        run = _Run(None, timeout, secrets)
        dsn = redact_dsn(client_or_dsn) if isinstance(client_or_dsn, str) else ""
        return _unavailable_report(dsn or "", "--clickhouse-dsn", database or DEFAULT_DATABASE,
                                   table or DEFAULT_TABLE, cluster, retention_days, run.reason(exc),
                                   time.perf_counter() - started)

    if target is not None:
        shown, source, secrets = target.redacted, target.source, target.secrets
        database, table = database or target.database, table or target.table
    else:
        shown, source, secrets = getattr(client, "uri", "") or "", "client", ()
        shown = redact_dsn(shown) or ""
        database, table = database or DEFAULT_DATABASE, table or DEFAULT_TABLE
    run = _Run(None, timeout, secrets)

    def unavailable(reason: str) -> ClickHouseReport:
        return _unavailable_report(shown, source, database, table, cluster, retention_days, reason,
                                   time.perf_counter() - started)

    try:
        xapi = f"{quote_identifier(database)}.{quote_identifier(table)}"
        if cluster is not None:
            quote_identifier(cluster, CLUSTER_RE)
    except ValueError as exc:
        return unavailable(str(exc))
    if target is not None:
        try:
            client = connect(target, timeout=timeout)
            owned = True
        except Exception as exc:  # pylint: disable=broad-except
            return unavailable(f"cannot connect to {shown}: {run.reason(exc)}")
    run.client = client
    try:
        return _collect(run, shown, source, database, table, xapi, cluster, retention_days, headroom,
                        superset_users, query_window_minutes, started)
    except Exception as exc:  # pylint: disable=broad-except
        return unavailable(run.reason(exc))
    finally:
        if owned:
            try:
                client.close()
            except Exception:  # pylint: disable=broad-except
                pass


def _collect(run: _Run, shown, source, database, table, xapi, cluster, retention_days, headroom,
             superset_users, query_window_minutes, started) -> ClickHouseReport:
    # pylint: disable=too-many-arguments,too-many-locals
    where = {"db": database, "tbl": table}

    head = run.rows("SELECT version(), toUnixTimestamp64Micro(now64(6))")
    version, server_now = head[0][0], _from_micros(head[0][1])
    today = server_now.date()
    since = datetime.combine(today - timedelta(days=WINDOW_DAYS - 1), datetime.min.time(), timezone.utc)

    def day_counts():
        rows = run.rows(
            f"SELECT toDate(emission_time, 'UTC') AS day, count(), toUnixTimestamp64Micro(max(emission_time)) "
            f"FROM {xapi} WHERE emission_time >= {{since:DateTime64(6, 'UTC')}} GROUP BY day",
            {"since": since},
        )
        return {row[0]: row[1] for row in rows}, max((row[2] for row in rows), default=None)

    counts = run.measure(f"{database}.{table}", day_counts)

    def lag() -> XapiLag:
        if not counts.ok:
            raise RuntimeError(counts.unavailable)
        latest = counts.value[1]
        if latest is None:  # nothing in the window: look at the whole table
            rows = run.rows(f"SELECT count(), toUnixTimestamp64Micro(max(emission_time)) FROM {xapi}")
            latest = rows[0][1] if rows[0][0] else None
        latest_dt = _from_micros(latest)
        lag_seconds = None if latest_dt is None else (server_now - latest_dt).total_seconds()
        return XapiLag(server_now, latest_dt, lag_seconds)

    def partitions() -> tuple[PartitionStorage, ...]:
        rows = run.rows(
            "SELECT hostName(), partition, sum(rows), sum(bytes_on_disk), sum(data_uncompressed_bytes), count() "
            f"FROM {system_table('parts', cluster)} "
            "WHERE database = {db:String} AND table = {tbl:String} AND active "
            "GROUP BY hostName(), partition ORDER BY partition",
            where,
        )
        return tuple(PartitionStorage(*row) for row in rows)

    parts = run.measure(system_table("parts", cluster), partitions)

    def daily() -> tuple[DayVolume, ...]:
        if not counts.ok:
            raise RuntimeError(counts.unavailable)
        return daily_volumes(today, counts.value[0], bytes_per_row(parts.value) if parts.ok else None)

    daily_m = run.measure(f"{counts.source} + {parts.source}", daily)

    def projection() -> StorageProjection:
        if not daily_m.ok:
            raise RuntimeError(daily_m.unavailable)
        if not parts.ok:
            raise RuntimeError(f"no byte sizes: {parts.unavailable}")
        result = project_storage(daily_m.value, today, retention_days, headroom)
        if result is None:
            raise LookupError("needs at least one complete UTC day of xAPI data")
        return result

    def storage() -> Storage:
        if not parts.ok:
            raise RuntimeError(parts.unavailable)
        if not parts.value and not counts.ok:  # no parts because the table is not there
            raise RuntimeError(counts.unavailable)
        return summarise_storage(parts.value)

    def scalar(sql: str, parameters=None) -> int:
        value = run.rows(sql, parameters)[0][0]
        return int(value or 0)

    def max_parts() -> Measured[int]:
        metric = run.measure(
            system_table("asynchronous_metrics", cluster),
            lambda: scalar(
                f"SELECT max(value) FROM {system_table('asynchronous_metrics', cluster)} "
                "WHERE metric = {metric:String}",
                {"metric": "MaxPartCountForPartition"},
            ),
        )
        if metric.ok:
            return metric
        counted = run.measure(
            f"{system_table('parts', cluster)} ({metric.source} unavailable: {metric.unavailable})",
            lambda: scalar(
                "SELECT max(n) FROM (SELECT count() AS n "
                f"FROM {system_table('parts', cluster)} WHERE active "
                "GROUP BY hostName(), database, table, partition_id)"
            ),
        )
        if counted.ok:
            return counted
        return Measured(None, f"{metric.unavailable}; {counted.unavailable}", metric.source)

    def disks() -> tuple[DiskSpace, ...]:
        rows = run.rows(f"SELECT hostName(), name, free_space, total_space FROM {system_table('disks', cluster)}")
        return tuple(DiskSpace(*row) for row in rows)

    def superset() -> SupersetQueries:
        rows = run.rows(
            "SELECT count(), quantileExact(0.95)(query_duration_ms) "
            f"FROM {system_table('query_log', cluster)} "
            "WHERE event_date >= toDate(now() - toIntervalMinute({minutes:UInt32})) "
            "AND event_time >= now() - toIntervalMinute({minutes:UInt32}) "
            "AND type = 'QueryFinish' AND query_kind = 'Select' "
            "AND (has({users:Array(String)}, user) OR positionCaseInsensitive(http_user_agent, 'superset') > 0)",
            {"minutes": query_window_minutes, "users": list(superset_users)},
        )
        queries, p95 = rows[0]
        return SupersetQueries(
            int(queries), float(p95) / 1000 if queries else None, query_window_minutes, tuple(superset_users)
        )

    return ClickHouseReport(
        dsn=shown,
        source=source,
        database=database,
        table=table,
        cluster=cluster,
        retention_days=retention_days,
        unavailable=None,
        server_version=Measured(version, None, "version()"),
        lag=run.measure(counts.source, lag),
        daily=daily_m,
        storage=run.measure(parts.source, storage),
        projection=run.measure(daily_m.source, projection),
        max_parts_per_partition=max_parts(),
        delayed_inserts=run.measure(
            system_table("metrics", cluster),
            lambda: scalar(
                f"SELECT sum(value) FROM {system_table('metrics', cluster)} WHERE metric = {{metric:String}}",
                {"metric": "DelayedInserts"},
            ),
        ),
        pending_distributed_files=run.measure(
            system_table("distribution_queue", cluster),
            lambda: scalar(f"SELECT sum(data_files) FROM {system_table('distribution_queue', cluster)}"),
        ),
        stuck_replication_tasks=run.measure(
            system_table("replication_queue", cluster),
            lambda: scalar(
                f"SELECT count() FROM {system_table('replication_queue', cluster)} WHERE num_tries > {{tries:UInt32}}",
                {"tries": STUCK_REPLICATION_TRIES},
            ),
        ),
        disks=run.measure(system_table("disks", cluster), disks),
        superset_queries=run.measure(system_table("query_log", cluster), superset),
        seconds=time.perf_counter() - started,
    )

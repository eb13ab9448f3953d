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

import math
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Generic, TypeVar
from urllib.parse import quote, unquote

from aspects_routing.conf import CLUSTER_NAME_RE
from aspects_routing.redaction import Address, UnusableURL, describe_error, parse_url, redact_url
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

#: Rows dated up to this far after the server's clock still count as "now" (clocks drift a little);
#: later ones are future-dated: reported as clock skew and left out of the lag.
SKEW_TOLERANCE_SECONDS = 60.0

#: Key of the whole table's bytes/row in :func:`bytes_per_row` (not a partition id ClickHouse makes).
AVERAGE = "*"
_MONTH_ID = re.compile(r"^\d{6}$")  # toYYYYMM(emission_time)
_DAY_ID = re.compile(r"^\d{8}$")  # toYYYYMMDD(emission_time)
#: How :func:`daily_volumes` turned rows into bytes.
BASIS_MONTH = "bytes/row of the day's month partition"
BASIS_DAY = "bytes/row of the day's partition"
BASIS_AVERAGE = "bytes/row of the whole table (its partitions are not by month or day)"

#: The range a value read from ClickHouse must fall in to be believed, per kind. Outside it the
#: measurement is ``unavailable: <reason>`` instead of a number that would drive advice.
LIMITS: dict[str, tuple[float, float]] = {
    "rows": (0, 10**13),  # rows of a table, a partition or a day
    "bytes": (0, 10**17),  # 100 PB
    "parts": (0, 10**6),  # parts in a partition or a table
    "count": (0, 10**9),  # delayed inserts, queued files, stuck tasks, queries
    "milliseconds": (0, 7 * 86_400_000),  # a query's duration: at most a week
}
#: Years a server clock or an xAPI timestamp may plausibly read.
PLAUSIBLE_YEARS = (2000, 2200)


class OutOfRange(ValueError):
    """A value read from ClickHouse that cannot be right; the message says which and why."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)"


def in_range(value: Any, what: str, kind: str) -> int | float:
    """``value`` as a number if it is one and within :data:`LIMITS` ``[kind]``; else :class:`OutOfRange`."""
    low, high = LIMITS[kind]
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise OutOfRange(f"ClickHouse returned {what} = {_short(value)}, not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise OutOfRange(f"ClickHouse returned {what} = {value!r}")
    if not low <= value <= high:
        raise OutOfRange(f"ClickHouse returned {what} = {_short(value)}, outside {low:,}..{high:,}")
    return float(value) if isinstance(value, (float, Decimal)) and kind == "milliseconds" else int(value)


def plausible_time(micros: Any, what: str) -> datetime:
    """A ``toUnixTimestamp64Micro`` value as a UTC datetime, if it is one of :data:`PLAUSIBLE_YEARS`."""
    if isinstance(micros, bool) or not isinstance(micros, int):
        raise OutOfRange(f"ClickHouse returned {what} = {_short(micros)}, not a timestamp")
    try:
        moment = _from_micros(micros)
    except (OverflowError, ValueError) as exc:
        raise OutOfRange(f"ClickHouse returned {what} = {_short(micros)} µs, not a date") from exc
    if not PLAUSIBLE_YEARS[0] <= moment.year <= PLAUSIBLE_YEARS[1]:
        raise OutOfRange(f"ClickHouse returned {what} = {moment:%Y-%m-%d}, outside {PLAUSIBLE_YEARS[0]}..{PLAUSIBLE_YEARS[1]}")
    return moment


def quote_identifier(name: str, pattern: re.Pattern = IDENTIFIER_RE) -> str:
    """``name`` back-quoted for SQL, after checking it against ``pattern`` (``ValueError`` if it fails)."""
    if not isinstance(name, str) or not pattern.match(name):
        raise ValueError(f"{name!r} is not a valid ClickHouse name (letters, digits, _ and - only)")
    return f"`{name}`"


# --- connection -----------------------------------------------------------------------------------


#: Where the DSN came from when it is a flag.
DSN_FLAG = "--clickhouse-dsn"
#: The setting name used when the DSN comes from Aspects' settings.
SINK_SETTING = "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG['url']"
SCHEMES = ("http", "https", "clickhouse", "clickhouses", "chdb")


def redact_dsn(dsn: str | None, setting: str = DSN_FLAG) -> str | None:
    """
    ``dsn`` without user name, password or query string, for display.

    ``http://ch_lms:s3cret@clickhouse:8123/xapi`` -> ``http://clickhouse:8123/xapi``;
    ``chdb:///var/lib/demo`` stays as it is (chDB has no credentials). Parsed by
    :func:`aspects_routing.redaction.parse_url`, so a password with ``#`` or ``/`` is never shown.
    """
    return redact_url(dsn, setting)


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where the xAPI data is and how to log in. Credentials never appear in ``repr``."""

    dsn: str = field(repr=False)
    database: str = DEFAULT_DATABASE
    table: str = DEFAULT_TABLE
    username: str | None = None  # not a secret: shown where it helps, never scrubbed
    password: str | None = field(default=None, repr=False)
    source: str = DSN_FLAG

    @property
    def address(self) -> Address:
        """The parsed DSN."""
        return parse_url(self.dsn, self.setting)

    @property
    def setting(self) -> str:
        """The flag or setting the DSN comes from, as reasons name it."""
        return DSN_FLAG if self.source == DSN_FLAG else SINK_SETTING

    @property
    def redacted(self) -> str:
        """The DSN as it may be shown."""
        return self.address.location

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings to scrub from exception text: the password in all its spellings (not the user name)."""
        found = set(self.address.secrets)
        if self.password:
            found.update({self.password, quote(self.password, safe="")})
        return tuple(sorted(found, key=len, reverse=True))


def target_from_dsn(dsn: str) -> ClickHouseTarget:
    """
    A target from ``http(s)://user:pass@host:port/db``, ``clickhouse://...`` (HTTP, or HTTPS on
    port 443/8443 or with ``?secure=true``), ``clickhouses://...`` (HTTPS) or ``chdb://...`` (embedded chDB: ``chdb:///path`` or
    ``chdb://memory``). An HTTP DSN's path names the xAPI database (default ``xapi``).
    Raises ``ValueError`` with a message that names the flag and holds no credential.
    """
    address = parse_url(dsn, DSN_FLAG)
    if not address.ok:
        raise UnusableURL(address.failure(""))
    if address.scheme not in SCHEMES:
        raise UnusableURL(
            f"unsupported ClickHouse DSN scheme {address.scheme!r}; "
            "use http://, https://, clickhouse://, clickhouses:// or chdb://"
        )
    database = DEFAULT_DATABASE
    if address.scheme != "chdb" and address.path.strip("/"):
        database = unquote(address.path.strip("/").split("/")[0])
    return ClickHouseTarget(dsn=dsn, database=database, username=address.username, password=address.password)


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
    address = parse_url(url, SINK_SETTING)
    return ClickHouseTarget(
        dsn=url,
        database=config.get("xapi_database") or DEFAULT_DATABASE,
        table=config.get("xapi_table") or DEFAULT_TABLE,
        username=config.get("username") or address.username or None,
        password=config.get("password") or address.password or None,
        source="EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG",
    )


def connect(target: ClickHouseTarget, *, timeout: float = 10.0):
    """A clickhouse-connect client for ``target`` (raises clickhouse-connect's errors if it cannot)."""
    import clickhouse_connect  # pylint: disable=import-outside-toplevel

    address = target.address
    if not address.ok:
        raise UnusableURL(address.failure(""))
    if address.scheme == "chdb":
        return clickhouse_connect.get_client(dsn=target.dsn)
    query = dict(address.query)
    secure = (
        address.scheme in ("https", "clickhouses")
        or str(query.pop("secure", "")).lower() == "true"
        or address.port in (443, 8443)
    )
    return clickhouse_connect.get_client(
        interface="https" if secure else "http",
        host=address.host or "localhost",
        port=address.port or (8443 if secure else 8123),
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
    """
    How far behind the newest xAPI event that is not in the future is (``latest_event`` None: no
    such row). Rows dated more than :data:`SKEW_TOLERANCE_SECONDS` after the server's clock are
    counted apart (``future_rows``): they say a clock is wrong, and would hide a stall if the lag
    were taken from them.
    """

    server_now: datetime
    latest_event: datetime | None
    lag_seconds: float | None
    future_rows: int = 0
    newest_future_event: datetime | None = None

    @property
    def skew_seconds(self) -> float | None:
        """How far ahead of the server's clock the newest future-dated row is (None: there is none)."""
        if self.newest_future_event is None:
            return None
        return (self.newest_future_event - self.server_now).total_seconds()


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
class StorageProjection:  # pylint: disable=too-many-instance-attributes
    """Disk one replica needs at the retention Aspects keeps: ``growth × retention_days × headroom``."""

    growth_rows_per_day: float
    growth_bytes_per_day: float
    days_measured: int
    retention_days: int
    headroom: float
    projected_bytes: int
    formula: str = "growth_bytes_per_day × retention_days × headroom"
    #: How a day's rows became bytes: "per month partition", "per day partition" or the table average.
    bytes_basis: str = BASIS_MONTH


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


def bytes_basis(per_partition: dict[str, float] | None) -> str | None:
    """How :func:`daily_volumes` will size days from these partition ids (None: no sizes)."""
    if not per_partition:
        return None
    ids = [pid for pid in per_partition if pid != AVERAGE]
    if ids and all(_MONTH_ID.match(pid) for pid in ids):
        return BASIS_MONTH
    if ids and all(_DAY_ID.match(pid) for pid in ids):
        return BASIS_DAY
    return BASIS_AVERAGE


def _day_bytes_per_row(day: date, per_partition: dict[str, float], basis: str) -> float:
    if basis == BASIS_MONTH:
        key = f"{day:%Y%m}"
    elif basis == BASIS_DAY:
        key = f"{day:%Y%m%d}"
    else:
        key = AVERAGE
    # A day whose partition is gone (merged away, dropped by the TTL) takes the table's average.
    return per_partition.get(key, per_partition.get(AVERAGE, 0.0))


def daily_volumes(
    today: date,
    counts: dict[date, int],
    bytes_per_row: dict[str, float] | None,
    days: int = WINDOW_DAYS,
) -> tuple[DayVolume, ...]:
    """
    One :class:`DayVolume` per day of the window (0 rows where none); bytes from the day's month
    (or day) partition, or from the whole table's bytes/row when the partitions are neither.
    """
    basis = bytes_basis(bytes_per_row)
    volumes = []
    for day in window_days(today, days):
        rows = counts.get(day, 0)
        size = None
        if bytes_per_row is not None:
            size = round(rows * _day_bytes_per_row(day, bytes_per_row, basis))
        volumes.append(DayVolume(day, rows, size))
    return tuple(volumes)


def project_storage(
    daily: tuple[DayVolume, ...],
    today: date,
    retention_days: int,
    headroom: float = DEFAULT_HEADROOM,
    basis: str = BASIS_MONTH,
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
        bytes_basis=basis,
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
    """
    ``bytes_on_disk ÷ rows`` per partition id, on the replica holding most of it, and the whole
    table's under :data:`AVERAGE` (for days whose partition is not a month or a day).
    """
    best: dict[str, PartitionStorage] = {}
    for part in partitions:
        if part.rows and (part.partition not in best or part.rows > best[part.partition].rows):
            best[part.partition] = part
    found = {pid: p.bytes_on_disk / p.rows for pid, p in best.items()}
    rows = sum(p.rows for p in best.values())
    if rows:
        found[AVERAGE] = sum(p.bytes_on_disk for p in best.values()) / rows
    return found


def _from_micros(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=int(value))


def partition_from_row(row: tuple) -> PartitionStorage:
    """A ``system.parts`` row (host, partition, rows, bytes, uncompressed, parts), range-checked."""
    host, partition, rows, on_disk, uncompressed, parts = row
    where = f"partition {_short(partition)} on {_short(host)}"
    return PartitionStorage(
        str(host), str(partition),
        in_range(rows, f"rows of {where}", "rows"),
        in_range(on_disk, f"bytes_on_disk of {where}", "bytes"),
        in_range(uncompressed, f"data_uncompressed_bytes of {where}", "bytes"),
        in_range(parts, f"active parts of {where}", "parts"),
    )


def disk_from_row(row: tuple) -> DiskSpace:
    """A ``system.disks`` row (host, name, free, total), range-checked: free space within the disk."""
    host, name, free, total = row
    where = f"disk {_short(name)} on {_short(host)}"
    free, total = in_range(free, f"free_space of {where}", "bytes"), in_range(total, f"total_space of {where}", "bytes")
    if total and free > total:
        raise OutOfRange(f"ClickHouse returned free_space {free:,} > total_space {total:,} for {where}")
    return DiskSpace(str(host), str(name), free, total)


def superset_from_row(row: tuple, window_minutes: int, users: tuple[str, ...]) -> SupersetQueries:
    """``(count, p95 ms)`` from ``system.query_log``, range-checked; p95 None when there were no queries."""
    queries = in_range(row[0], "Superset queries", "count")
    p95 = in_range(row[1], "Superset query p95 (ms)", "milliseconds") / 1000 if queries else None
    return SupersetQueries(queries, p95, window_minutes, users)


# --- collection ---------------------------------------------------------------------------------------


class _Reason(Exception):
    """A reason this module wrote itself (no library text in it): shown as it is."""


class _Run:
    """One collection: the client, the deadline, and how failures become reasons."""

    def __init__(self, client, timeout: float, secrets: tuple[str, ...]):
        self.client = client
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.secrets = secrets

    def reason(self, exc: BaseException) -> str:
        """Our own reasons as they are; a library's mapped by :func:`~aspects_routing.redaction.describe_error`."""
        if isinstance(exc, (_Reason, OutOfRange, UnusableURL)):
            return str(exc)[:300]
        # ClickHouse appends the whole query ("In scope SELECT ...") and a stack trace.
        text = " ".join(str(exc).split()).split(" Stack trace:")[0].split(". In scope ")[0]
        reason = describe_error(exc, self.secrets, text)
        # A server error's own text says what is wrong; the exception's class name adds nothing.
        return reason.removeprefix(f"{type(exc).__name__}: ")

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _Reason(f"not measured: the ClickHouse section's {self.timeout:g} s timeout ran out")
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
                raise _Reason(
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
        secrets = parse_url(client_or_dsn, DSN_FLAG).secrets if isinstance(client_or_dsn, str) else ()
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
            return unavailable(f"cannot connect to {shown} ({source}): {run.reason(exc)}")
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
    version = head[0][0]
    if not isinstance(version, str) or not 0 < len(version) <= 64 or not version.isprintable():
        raise OutOfRange(f"ClickHouse returned version() = {_short(version)}, not a version")
    server_now = plausible_time(head[0][1], "the server's clock now64()")
    today = server_now.date()
    since = datetime.combine(today - timedelta(days=WINDOW_DAYS - 1), datetime.min.time(), timezone.utc)
    cutoff = server_now + timedelta(seconds=SKEW_TOLERANCE_SECONDS)
    # Per day: all rows, then the rows not in the future and their newest, then the future ones.
    split = (
        "count(), countIf(emission_time <= {cutoff:DateTime64(6, 'UTC')}), "
        "toUnixTimestamp64Micro(maxIf(emission_time, emission_time <= {cutoff:DateTime64(6, 'UTC')})), "
        "countIf(emission_time > {cutoff:DateTime64(6, 'UTC')}), "
        "toUnixTimestamp64Micro(maxIf(emission_time, emission_time > {cutoff:DateTime64(6, 'UTC')}))"
    )

    def day_counts():
        rows = run.rows(
            f"SELECT toDate(emission_time, 'UTC') AS day, {split} "
            f"FROM {xapi} WHERE emission_time >= {{since:DateTime64(6, 'UTC')}} GROUP BY day",
            {"since": since, "cutoff": cutoff},
        )
        return {row[0]: in_range(row[1], f"rows on {row[0]}", "rows") for row in rows}, _newest(rows)

    def _newest(rows) -> tuple[int, int | None, int, int | None]:
        """(past rows, newest past µs, future rows, newest future µs) over ``rows`` of ``split`` columns."""
        past = future = 0
        newest_past = newest_future = None
        for row in rows:
            row = row[-5:]
            if in_range(row[1], "rows not in the future", "rows"):
                past += row[1]
                newest_past = max(row[2], newest_past or row[2])
            if in_range(row[3], "future-dated rows", "rows"):
                future += row[3]
                newest_future = max(row[4], newest_future or row[4])
        return past, newest_past, future, newest_future

    counts = run.measure(f"{database}.{table}", day_counts)

    def lag() -> XapiLag:
        if not counts.ok:
            raise _Reason(counts.unavailable)
        past, newest, future, newest_future = counts.value[1]
        if not past:  # nothing (but future rows) in the window: look at the whole table
            past, newest, future, newest_future = _newest(
                run.rows(f"SELECT {split} FROM {xapi}", {"cutoff": cutoff})
            )
        latest = plausible_time(newest, "the newest xAPI emission_time") if past else None
        ahead = plausible_time(newest_future, "a future-dated emission_time") if future else None
        # Rows within the tolerance may be a little ahead: the lag is then 0, never negative.
        lag_seconds = None if latest is None else max(0.0, (server_now - latest).total_seconds())
        return XapiLag(server_now, latest, lag_seconds, future, ahead)

    def partitions() -> tuple[PartitionStorage, ...]:
        rows = run.rows(
            "SELECT hostName(), partition, sum(rows), sum(bytes_on_disk), sum(data_uncompressed_bytes), count() "
            f"FROM {system_table('parts', cluster)} "
            "WHERE database = {db:String} AND table = {tbl:String} AND active "
            "GROUP BY hostName(), partition ORDER BY partition",
            where,
        )
        return tuple(partition_from_row(row) for row in rows)

    parts = run.measure(system_table("parts", cluster), partitions)

    def daily() -> tuple[DayVolume, ...]:
        if not counts.ok:
            raise _Reason(counts.unavailable)
        return daily_volumes(today, counts.value[0], bytes_per_row(parts.value) if parts.ok else None)

    daily_m = run.measure(f"{counts.source} + {parts.source}", daily)

    def projection() -> StorageProjection:
        if not daily_m.ok:
            raise _Reason(daily_m.unavailable)
        if not parts.ok:
            raise _Reason(f"no byte sizes: {parts.unavailable}")
        basis = bytes_basis(bytes_per_row(parts.value)) or BASIS_MONTH
        result = project_storage(daily_m.value, today, retention_days, headroom, basis)
        if result is None:
            raise _Reason("needs at least one complete UTC day of xAPI data")
        return result

    def storage() -> Storage:
        if not parts.ok:
            raise _Reason(parts.unavailable)
        if not parts.value and not counts.ok:  # no parts because the table is not there
            raise _Reason(counts.unavailable)
        return summarise_storage(parts.value)

    def scalar(sql: str, parameters=None, *, what: str, kind: str = "count") -> int:
        return in_range(run.rows(sql, parameters)[0][0], what, kind)

    def max_parts() -> Measured[int]:
        metric = run.measure(
            system_table("asynchronous_metrics", cluster),
            lambda: scalar(
                f"SELECT max(value) FROM {system_table('asynchronous_metrics', cluster)} "
                "WHERE metric = {metric:String}",
                {"metric": "MaxPartCountForPartition"},
                what="MaxPartCountForPartition",
                kind="parts",
            ),
        )
        if metric.ok:
            return metric
        counted = run.measure(
            f"{system_table('parts', cluster)} ({metric.source} unavailable: {metric.unavailable})",
            lambda: scalar(
                "SELECT max(n) FROM (SELECT count() AS n "
                f"FROM {system_table('parts', cluster)} WHERE active "
                "GROUP BY hostName(), database, table, partition_id)",
                what="the most active parts in one partition",
                kind="parts",
            ),
        )
        if counted.ok:
            return counted
        return Measured(None, f"{metric.unavailable}; {counted.unavailable}", metric.source)

    def disks() -> tuple[DiskSpace, ...]:
        rows = run.rows(f"SELECT hostName(), name, free_space, total_space FROM {system_table('disks', cluster)}")
        return tuple(disk_from_row(row) for row in rows)

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
        return superset_from_row(rows[0], query_window_minutes, tuple(superset_users))

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
                what="DelayedInserts",
            ),
        ),
        pending_distributed_files=run.measure(
            system_table("distribution_queue", cluster),
            lambda: scalar(
                f"SELECT sum(data_files) FROM {system_table('distribution_queue', cluster)}",
                what="sum(data_files) of system.distribution_queue",
            ),
        ),
        stuck_replication_tasks=run.measure(
            system_table("replication_queue", cluster),
            lambda: scalar(
                f"SELECT count() FROM {system_table('replication_queue', cluster)} WHERE num_tries > {{tries:UInt32}}",
                {"tries": STUCK_REPLICATION_TRIES},
                what="stuck replication tasks",
            ),
        ),
        disks=run.measure(system_table("disks", cluster), disks),
        superset_queries=run.measure(system_table("query_log", cluster), superset),
        seconds=time.perf_counter() - started,
    )

"""
Which ClickHouse the report measures, and with which settings: ``--clickhouse-dsn``
if given, else Aspects' ``EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG``. The measuring
itself is :func:`aspects_routing.scaling.collectors.clickhouse.collect_clickhouse`; its
credentials are among :func:`aspects_routing.redaction.configured_secrets`.
"""

from __future__ import annotations

from aspects_routing.scaling.collectors.base import Skipped, Unavailable
from aspects_routing.scaling.collectors.clickhouse import ClickHouseReport, collect_clickhouse, target_from_settings


def collect(options, config, *, timeout: float) -> ClickHouseReport:
    """The ClickHouse section, or :class:`Skipped` (``--no-clickhouse``) / :class:`Unavailable`."""
    if not options.clickhouse:
        raise Skipped("--no-clickhouse")
    if options.clickhouse_dsn is None and target_from_settings() is None:
        raise Skipped("not configured: EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG has no 'url' and no --clickhouse-dsn was given")
    report = collect_clickhouse(
        options.clickhouse_dsn,
        cluster=config.clickhouse_cluster,
        retention_days=config.retention_days,
        timeout=timeout,
        query_window_minutes=options.window_minutes,
    )
    if report.unavailable is not None:
        raise Unavailable(report.unavailable)
    return report

"""
Which ClickHouse the report measures, and with which settings: ``--clickhouse-dsn``
if given, else Aspects' ``EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG``. The measuring
itself is :func:`aspects_routing.scaling.collectors.clickhouse.collect_clickhouse`.
"""

from __future__ import annotations

from aspects_routing.scaling.collectors.base import Skipped, Unavailable
from aspects_routing.scaling.collectors.clickhouse import (
    ClickHouseReport,
    collect_clickhouse,
    target_from_dsn,
    target_from_settings,
)


def configured_secrets(dsn: str | None = None) -> tuple[str, ...]:
    """Credentials of the ClickHouse the report may connect to, to scrub from any message."""
    found: list[str] = []
    for make in (target_from_settings, lambda: target_from_dsn(dsn) if dsn else None):
        try:
            target = make()
        except Exception:  # pylint: disable=broad-except
            continue  # an unparseable DSN is reported by the collector; it has no secrets to pull out
        if target is not None:
            found.extend(target.secrets)
    return tuple(found)


def collect(options, config, *, timeout: float) -> ClickHouseReport:
    """The ClickHouse section, or :class:`Skipped` (``--no-clickhouse``) / :class:`Unavailable`."""
    if not options.clickhouse:
        raise Skipped("--no-clickhouse")
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

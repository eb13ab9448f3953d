"""
``./manage.py lms aspects_scaling_report``: measure the Aspects pipeline and say what to scale.

The command only validates its flags, calls
:func:`aspects_routing.scaling.report.build_report` and writes the rendering.
With ``--fail-on`` it exits 1 when the worst finding is a warning and 2 when
it is critical (through ``CommandError(returncode=...)``, after the report
has been written), so it can run from cron or CI.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from aspects_routing.redaction import parse_url
from aspects_routing.scaling.recommendations import exit_code
from aspects_routing.scaling.render import FORMATS, render
from aspects_routing.scaling.report import ReportOptions, build_report

FAIL_ON = ("warning", "critical")
DSN_SCHEMES = ("clickhouse://", "clickhouses://", "http://", "https://", "chdb://")
MAX_TIMEOUT = 600.0


def options_from_flags(window: int, timeout: float, clickhouse_dsn: str | None, no_clickhouse: bool) -> ReportOptions:
    """Validate the flags; raise :class:`CommandError` naming the flag and the fix."""
    from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel

    retention = get_config().metrics_retention_minutes
    if not 1 <= window <= retention:
        raise CommandError(
            f"--window must be between 1 and {retention} minutes (METRICS_RETENTION_MINUTES); got {window}. "
            "Pass e.g. --window 60."
        )
    if not 0 < timeout <= MAX_TIMEOUT:
        raise CommandError(f"--timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds; got {timeout:g}.")
    if clickhouse_dsn and no_clickhouse:
        raise CommandError("--clickhouse-dsn and --no-clickhouse contradict each other; pass only one of them.")
    if clickhouse_dsn is not None and not clickhouse_dsn.startswith(DSN_SCHEMES):
        raise CommandError(
            "--clickhouse-dsn must start with one of " + ", ".join(DSN_SCHEMES)
            + ", e.g. --clickhouse-dsn clickhouse://USER:PASSWORD@HOST:8123/xapi."
        )
    if clickhouse_dsn is not None and not parse_url(clickhouse_dsn, "--clickhouse-dsn").ok:
        # The message names the flag and what is wrong, never the value (it holds a password).
        raise CommandError(parse_url(clickhouse_dsn, "--clickhouse-dsn").failure("") + ".")
    return ReportOptions(
        window_minutes=window, timeout=timeout, clickhouse_dsn=clickhouse_dsn, clickhouse=not no_clickhouse
    )


class Command(BaseCommand):
    """Measure every stage of the Aspects pipeline and recommend what to scale."""

    help = __doc__
    # The report diagnoses configuration itself; a failing system check must not stop it.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=FORMATS, default="text", help="Output format (default: text).")
        parser.add_argument(
            "--window", type=int, default=60, help="Minutes of metrics to size from: peak rates, per-task rates."
        )
        parser.add_argument(
            "--clickhouse-dsn",
            default=None,
            help="ClickHouse to measure (clickhouse://, http(s):// or chdb://); default: "
            "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG.",
        )
        parser.add_argument("--no-clickhouse", action="store_true", help="Do not measure ClickHouse.")
        parser.add_argument(
            "--timeout", type=float, default=30.0, help="Overall deadline in seconds for all sources (default 30)."
        )
        parser.add_argument(
            "--fail-on",
            choices=FAIL_ON,
            default=None,
            help="Exit 1 when the worst finding is a warning and 2 when it is critical, at or above this level.",
        )

    def handle(self, *args, **options):
        report_options = options_from_flags(
            options["window"], options["timeout"], options["clickhouse_dsn"], options["no_clickhouse"]
        )
        report = build_report(report_options)
        self.stdout.write(render(report, options["format"]), ending="")
        fail_on = options["fail_on"]
        if fail_on and exit_code(report.status) >= exit_code(fail_on):
            raise CommandError(
                f"scaling report status is {report.status} (--fail-on {fail_on})",
                returncode=exit_code(report.status),
            )

"""
``./manage.py lms aspects_scaling_config``: write sized Ralph, ClickHouse, Superset and worker configs.

The command parses its flags, calls :func:`aspects_routing.scaling.configgen.plan`
(which validates them, sizes the pipeline and generates every file in memory)
and writes the files: to ``--output DIR`` atomically, never overwriting without
``--force``, or to stdout with ``--output -`` (the default; the summary then goes
to stderr). Any bad flag is a ``CommandError`` naming it and the fix, and nothing
is written.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from aspects_routing.scaling.configgen import ConfigError, ConfigOptions, plan, summary, write_files
from aspects_routing.scaling.configgen.clickhouse import DEFAULT_NETWORKS
from aspects_routing.scaling.configgen.common import FORMATS, OPENEDX_IMAGE, SERVICES
from aspects_routing.scaling.configgen.service import DEFAULT_NAMESPACE, STDOUT, stream_text
from aspects_routing.scaling.sizing import PROFILES


class Command(BaseCommand):
    """Generate sized, valid configs for the Aspects services."""

    help = __doc__
    # Generating configs must work while the platform's own checks still fail.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        add = parser.add_argument
        # ``--services``, not ``--service``: edx-platform's manage.py parses its own options with
        # parse_known_args, whose prefix matching would take ``--service`` as the LMS's ``--service-variant``.
        add(
            "--services", required=True, metavar="NAME[,NAME...]",
            help=f"Which services to configure: a comma-separated list of {', '.join(SERVICES)}, or all.",
        )
        add(
            "--profile", choices=PROFILES, default="auto",
            help="auto (default): size from the scaling report's measurements; small or large: fixed layouts.",
        )
        add("--format", choices=FORMATS, default="both", help="k8s manifests, Tutor values/patches, or both.")
        add("--output", default=STDOUT, help="Directory to write into, or - for stdout (default).")
        add("--events-per-second", type=float, help="Peak tracking events/s (overrides the measurement).")
        add("--retention-days", type=int, help="Days of xAPI data kept (default: RETENTION_DAYS).")
        add("--replicas", type=int, help="Minimum replicas of each autoscaled service; ClickHouse replicas.")
        add(
            "--storage-class",
            help="StorageClass for ClickHouse volumes; NAME=PROVISIONER also writes the StorageClass.",
        )
        add("--namespace", default=DEFAULT_NAMESPACE, help=f"Kubernetes namespace (default {DEFAULT_NAMESPACE}).")
        add("--force", action="store_true", help="Overwrite files that already exist under --output.")
        add(
            "--timeout", type=float, default=30.0,
            help="--profile auto: overall deadline in seconds for every measured source, as the report's (default 30).",
        )
        add(
            "--image", default=OPENEDX_IMAGE,
            help="--format k8s: the worker's image, your DOCKER_IMAGE_OPENEDX with aspects-routing installed, "
            f"tagged (default {OPENEDX_IMAGE}). The Tutor plugin uses DOCKER_IMAGE_OPENEDX itself.",
        )
        add(
            "--clickhouse-networks", default=DEFAULT_NETWORKS, metavar="CIDR[,CIDR...]",
            help="Networks the ClickHouse admin user accepts connections from: your pod CIDR "
            f"(default {DEFAULT_NETWORKS}); never ::/0.",
        )
        add("--queue-wait-slo", type=float, metavar="SECONDS",
            help="monitoring: alert when the Aspects queue wait p95 exceeds this (default: the sizing model's target).")
        add("--xapi-lag-threshold", type=float, metavar="SECONDS",
            help="monitoring: alert when the newest xAPI event in ClickHouse is older than this (default 3600).")

    def handle(self, *args, **opts):
        options = ConfigOptions(
            service=opts["services"],
            profile=opts["profile"],
            format=opts["format"],
            output=opts["output"],
            events_per_second=opts["events_per_second"],
            retention_days=opts["retention_days"],
            replicas=opts["replicas"],
            storage_class=opts["storage_class"],
            namespace=opts["namespace"],
            force=opts["force"],
            timeout=opts["timeout"],
            image=opts["image"],
            clickhouse_networks=opts["clickhouse_networks"],
            queue_wait_slo=opts["queue_wait_slo"],
            xapi_lag_threshold=opts["xapi_lag_threshold"],
        )
        try:
            result = plan(options)
            if options.output == STDOUT:
                self.stdout.write(stream_text(result.files), ending="")
                self.stderr.write(summary(result, "written to stdout"), ending="")
                return
            write_files(result.files, options.output, options.force)
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(summary(result, f"written under {options.output}"), ending="")

"""
The service behind ``aspects_scaling_config``: size, generate, write, summarise.

:func:`plan` sizes the pipeline (from the scaling report's measurements with
``--profile auto``, flags overriding them) and generates every file in memory;
:func:`write_files` writes them atomically (temp file + ``os.replace``), never
overwriting without ``force``; :func:`summary` states each sizing input and
what each file holds. A bad option raises :class:`ConfigError` naming the flag
and the fix, before anything is written.
"""

from __future__ import annotations

import errno
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

from aspects_routing.conf import RoutingSettings, get_config
from aspects_routing.redaction import parse_url
from aspects_routing.scaling import sizing as model
from aspects_routing.scaling.configgen import bundles, clickhouse, monitoring, ralph, superset, workers
from aspects_routing.scaling.configgen.common import (
    CLUSTER_NAME,
    DEDICATED_QUEUE,
    FORMATS,
    INT32_MAX,
    K8S,
    OPENEDX_IMAGE,
    SANITY_CAP,
    SERVICES,
    TUTOR,
    GeneratedFile,
    RedisAddress,
    Target,
    deployment_patch,
    dump,
    dump_all,
    is_dns_label,
    is_dns_subdomain,
    resources,
    without_namespace,
)

STDOUT = "-"
#: Longest --timeout accepted (the report's limit).
MAX_TIMEOUT = 600.0
#: Tutor's default K8S_NAMESPACE.
DEFAULT_NAMESPACE = "openedx"

Measure = Union[model.Measured, Callable[[], model.Measured], None]


class ConfigError(ValueError):
    """Bad input; the message names the flag (or setting) and the fix."""


@dataclass(frozen=True)
class ConfigOptions:  # pylint: disable=too-many-instance-attributes
    """The command's flags, validated by :func:`validate`."""

    service: str = "all"
    profile: str = "auto"
    format: str = "both"
    output: str = STDOUT
    events_per_second: float | None = None
    retention_days: int | None = None
    replicas: int | None = None
    storage_class: str | None = None  # NAME or NAME=PROVISIONER
    namespace: str = DEFAULT_NAMESPACE
    force: bool = False
    timeout: float = 30.0  # shared deadline of the measurement (--profile auto), as the report's
    image: str = OPENEDX_IMAGE  # --format k8s: the worker image (Tutor: DOCKER_IMAGE_OPENEDX)
    clickhouse_networks: str = clickhouse.DEFAULT_NETWORKS  # comma-separated CIDRs
    queue_wait_slo: float | None = None  # --services monitoring: p95 queue wait alert (s)
    xapi_lag_threshold: float | None = None  # --services monitoring: xAPI lag alert (s)

    @property
    def services(self) -> tuple[str, ...]:
        """The ``--services`` value as names, in :data:`SERVICES` order (``all``: every one)."""
        names = {name.strip() for name in self.service.split(",")} if isinstance(self.service, str) else set()
        if "all" in names:
            return SERVICES
        return tuple(name for name in SERVICES if name in names)

    @property
    def forms(self) -> tuple[str, ...]:
        return (K8S, TUTOR) if self.format == "both" else (self.format,)

    @property
    def overrides(self) -> dict[str, Any]:
        """Flags that override measured sizing inputs."""
        return {
            "events_per_second": self.events_per_second,
            "retention_days": self.retention_days,
            "replicas": self.replicas,
        }


@dataclass(frozen=True)
class Plan:
    """What will be written, and why."""

    options: ConfigOptions
    sizing: model.Sizing
    target: Target
    files: tuple[GeneratedFile, ...]
    notes: tuple[str, ...] = field(default=())


def validate(options: ConfigOptions) -> None:
    """Raise :class:`ConfigError` for any bad flag value."""
    names = [name.strip() for name in options.service.split(",")] if isinstance(options.service, str) else [None]
    unknown = [name for name in names if name not in (*SERVICES, "all")]
    if unknown:
        raise ConfigError(
            f"--services {options.service!r}: {', '.join(repr(n) for n in unknown)} is not a service; "
            f"give a comma-separated list of {', '.join(SERVICES)}, or all (e.g. --services ralph,superset)."
        )
    if options.profile not in model.PROFILES:
        raise ConfigError(f"--profile {options.profile!r} is unknown; use one of {', '.join(model.PROFILES)}.")
    if options.format not in FORMATS:
        raise ConfigError(f"--format {options.format!r} is unknown; use one of {', '.join(FORMATS)}.")
    eps = options.events_per_second
    if eps is not None and (not math.isfinite(eps) or eps < 0):
        raise ConfigError(
            f"--events-per-second {eps} is not a rate; give the peak tracking events per second as a number "
            ">= 0, e.g. --events-per-second 25."
        )
    for flag, value in (("--queue-wait-slo", options.queue_wait_slo), ("--xapi-lag-threshold", options.xapi_lag_threshold)):
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise ConfigError(f"{flag} {value} must be a positive number of seconds, e.g. {flag} 60.")
    if options.retention_days is not None and options.retention_days < 1:
        raise ConfigError(
            f"--retention-days {options.retention_days} must be at least 1; give the days of xAPI data Aspects "
            "keeps (ASPECTS_DATA_TTL_EXPRESSION), e.g. --retention-days 365."
        )
    if not (isinstance(options.timeout, (int, float)) and math.isfinite(options.timeout)
            and 0 < options.timeout <= MAX_TIMEOUT):
        raise ConfigError(
            f"--timeout {options.timeout} must be more than 0 and at most {MAX_TIMEOUT:g} seconds, e.g. --timeout 30."
        )
    if options.replicas is not None and options.replicas < 1:
        raise ConfigError(f"--replicas {options.replicas} must be at least 1, e.g. --replicas 2.")
    _check_count("--replicas", options.replicas, "replicas")
    if options.retention_days is not None and options.retention_days > INT32_MAX:
        raise ConfigError(f"--retention-days {options.retention_days} is above {INT32_MAX}; give days, e.g. 365.")
    if not _IMAGE.match(options.image or ""):
        raise ConfigError(
            f"--image {options.image!r} is not a tagged image reference; give your DOCKER_IMAGE_OPENEDX with "
            "aspects-routing installed, with a tag or digest, e.g. --image registry.example.com/openedx:21.0.9."
        )
    try:
        clickhouse.parse_networks(options.clickhouse_networks)
    except ValueError as exc:
        raise ConfigError(f"--clickhouse-networks {options.clickhouse_networks!r}: {exc}") from exc
    if (
        options.replicas is not None and options.replicas > 1 and options.profile == "small"
        and "clickhouse" in options.services
    ):
        raise ConfigError(
            f"--replicas {options.replicas} conflicts with --profile small (one ClickHouse node); "
            "use --profile large (or auto) for replicas."
        )
    if not is_dns_label(options.namespace):
        raise ConfigError(
            f"--namespace {options.namespace!r} is not a Kubernetes namespace name; use lower-case letters, "
            "digits and '-', at most 63 characters, e.g. --namespace openedx."
        )
    name, provisioner = _storage_class(options)
    if name is not None and not is_dns_subdomain(name):
        raise ConfigError(
            f"--storage-class {name!r} is not a StorageClass name; use lower-case letters, digits, '-' and '.', "
            "e.g. --storage-class aspects-ssd."
        )
    if provisioner is not None and not is_dns_subdomain(provisioner.lower()):
        raise ConfigError(
            f"--storage-class provisioner {provisioner!r} is not a CSI driver name; "
            "e.g. --storage-class aspects-ssd=ebs.csi.aws.com."
        )
    if options.output != STDOUT:
        path = Path(options.output)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--output {options.output!r} exists and is not a directory; give a directory or '-'.")


#: ``[registry/]repository:tag`` or ``...@sha256:<digest>``: an untagged image means "latest", which
#: is neither reproducible nor the image aspects-routing was installed into.
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$")


def _check_count(flag: str, value: int | None, what: str) -> None:
    """A count the Kubernetes API takes as int32, and no absurd number (the input is wrong)."""
    if value is None:
        return
    if value > INT32_MAX:
        raise ConfigError(
            f"{flag} gives {value:,} {what}, above what the Kubernetes API accepts ({INT32_MAX:,}, int32); "
            "check the value."
        )
    if value > SANITY_CAP:
        raise ConfigError(
            f"{flag} gives {value:,} {what}, above the sanity cap of {SANITY_CAP:,}; no Aspects deployment needs "
            "that many: check the input (a rate per day given as per second?)."
        )


def check_counts(sizing: model.Sizing, options: ConfigOptions) -> None:
    """Every replica, shard and node count the sizing produced is an int32 under the sanity cap."""
    flag = "--replicas" if options.replicas is not None else (
        "--events-per-second" if options.events_per_second is not None else "the measured rates"
    )
    w, r, ch, s = sizing.workers, sizing.ralph, sizing.clickhouse, sizing.superset
    counts = {
        "Aspects worker replicas": w.max_replicas,
        "event-bus consumer replicas": w.consumers,
        "Ralph replicas": r.max_replicas,
        "ClickHouse replicas per shard": ch.replicas,
        "ClickHouse shards": ch.shards,
        "Keeper nodes": ch.keeper_nodes,
        "Superset web replicas": s.web_max_replicas,
        "Superset worker replicas": s.worker_max_replicas,
    }
    for what, value in counts.items():
        _check_count(flag, value, what)
    for what, value in {"KEDA listLength": w.list_length, "KEDA lagCount": w.lag_count,
                        "GiB per ClickHouse volume": ch.volume_gi}.items():
        if value > INT32_MAX:
            raise ConfigError(f"{flag} gives {value:,} {what}, above int32 ({INT32_MAX:,}); check the input.")


def _storage_class(options: ConfigOptions) -> tuple[str | None, str | None]:
    if not options.storage_class:
        return None, None
    name, sep, provisioner = options.storage_class.partition("=")
    return name, (provisioner if sep else None)


def _redis_address(url: Any, source: str) -> RedisAddress | None:
    """The Redis at ``url`` (None: not a redis:// URL); parsed by :mod:`aspects_routing.redaction`,
    so a password with ``#`` or ``/`` in it neither crashes nor shows."""
    address = parse_url(url, source)
    if not address.ok or address.scheme not in ("redis", "rediss"):
        return None
    path = address.path.strip("/")
    return RedisAddress(
        host=address.host or "localhost",
        port=address.port or 6379,
        db=int(path) if path.isdigit() else 0,
        needs_password=bool(address.password),
        source=source,
    )


#: Tutor's Redis Service, assumed when the LMS's broker is not a redis:// URL.
TUTOR_REDIS = RedisAddress("redis", 6379, 0, False, "assumed: Tutor's redis Service (the broker URL is not Redis)")


def build_target(options: ConfigOptions, config: RoutingSettings, transport: str) -> Target:
    """Names and addresses the generated files use; settings are read here, at call time."""
    from django.conf import settings  # pylint: disable=import-outside-toplevel

    broker_url = getattr(settings, "CELERY_BROKER_URL", None) or getattr(settings, "BROKER_URL", None)
    broker = _redis_address(broker_url, "the LMS's Celery broker URL") or TUTOR_REDIS
    bus = _redis_address(getattr(settings, "EVENT_BUS_REDIS_CONNECTION_URL", None), "EVENT_BUS_REDIS_CONNECTION_URL")
    prefix = getattr(settings, "EVENT_BUS_TOPIC_PREFIX", None)
    stream = f"{prefix}-{config.event_bus_topic}" if prefix else config.event_bus_topic
    dedicated = config.queue_source == "ASPECTS_ROUTING.QUEUE" and config.queue
    cluster = config.clickhouse_cluster or "aspects"
    if "clickhouse" in options.services and not CLUSTER_NAME.match(cluster):
        raise ConfigError(
            f"ASPECTS_ROUTING['CLICKHOUSE_CLUSTER'] = {cluster!r} is not a name clickhouse-operator accepts "
            "(at most 15 characters of letters, digits and '-'); set a shorter name such as 'aspects'."
        )
    name, provisioner = _storage_class(options)
    return Target(
        namespace=options.namespace,
        queue=config.queue if dedicated else DEDICATED_QUEUE,
        queue_is_new=not dedicated,
        transport=transport,
        stream=stream,
        consumer_group=config.event_bus_consumer_group,
        broker=broker,
        event_bus_redis=bus or broker,
        cluster_name=cluster,
        storage_class=name,
        storage_provisioner=provisioner,
        image=options.image,
        clickhouse_networks=clickhouse.parse_networks(options.clickhouse_networks),
    )


def report_measurements(timeout: float = 30.0) -> tuple[model.Measured, tuple[str, ...]]:
    """The scaling report's measurements and the sources that failed (``aspects_scaling_report`` runs the same collectors)."""
    # pylint: disable=import-outside-toplevel
    from aspects_routing.scaling.report import ReportOptions, collect_measured_and_failures

    return collect_measured_and_failures(ReportOptions(timeout=timeout))


def measure(options: ConfigOptions, config: RoutingSettings, source: Measure) -> tuple[model.Measured, str]:
    """The measurements to size from, and a note saying where they came from."""
    nothing = model.Measured.nothing(transport=config.transport, retention_days=config.retention_days)
    if set(options.services) <= {"monitoring"}:
        return nothing, "--services monitoring: nothing measured (the rules' thresholds come from the sizing model)."
    if options.profile != "auto":
        return nothing, f"--profile {options.profile}: nothing measured (measurements size --profile auto)."
    if isinstance(source, model.Measured):
        return source, "Measured inputs were given to the generator."
    failures: tuple[str, ...] = ()
    try:
        if source is not None:
            measured = source()
        else:
            measured, failures = report_measurements(options.timeout)
    except ImportError as exc:
        return nothing, f"Nothing measured: the scaling report is not available ({exc})."
    except Exception as exc:  # pylint: disable=broad-except
        # The type only: a message could hold a DSN with credentials.
        return nothing, f"Nothing measured: the measurement failed ({type(exc).__name__}); run aspects_scaling_report."
    if failures:
        return measured, (
            f"FELL BACK TO ASSUMED INPUTS: {len(failures)} source(s) failed within --timeout {options.timeout:g} s, so "
            f"what they measure is assumed below: {'; '.join(failures)}. Fix them (aspects_scaling_report shows "
            "each) or pass the inputs as flags."
        )
    return measured, "Measured with the scaling report's collectors."


def monitoring_options(options: ConfigOptions) -> monitoring.MonitoringOptions:
    """The monitoring pack's thresholds: the flags, else the sizing model's and the report's."""
    defaults = monitoring.MonitoringOptions()
    return monitoring.MonitoringOptions(
        queue_wait_slo_seconds=options.queue_wait_slo or defaults.queue_wait_slo_seconds,
        xapi_lag_seconds=options.xapi_lag_threshold or defaults.xapi_lag_seconds,
    )


#: Services whose every object the Tutor plugin carries; with --format both, k8s/ leaves them out.
TUTOR_CARRIED = ("workers", "ralph", "superset")
#: A tutor-contrib-pod-autoscaling entry that makes no HPA, no resources patch and no VPA.
#: It replaces tutor-contrib-aspects 6.1's own entry for the Deployment (its hook adds
#: ``ralph`` whenever config.yml lacks RUN_RALPH, whatever the default, and the build then
#: fails on a Deployment that does not exist); the plugin's own HPA replaces the HPA.
NO_POD_AUTOSCALING = {"enable_hpa": False, "enable_vpa": False}


def tutor_autoscaling(sizing: model.Sizing, target: Target, services: tuple[str, ...]) -> list[GeneratedFile]:
    """
    The Tutor plugin's HPAs (and Ralph's PDB and requests) for Ralph and Superset.

    They are patches, which Tutor renders at every ``config save`` under ``RUN_RALPH`` /
    ``RUN_SUPERSET`` (see :mod:`.bundles`), so no HPA targets a missing Deployment. Config
    values cannot do that: Tutor writes a plugin's ``config.set`` values into config.yml at
    the first save, rendered once. The pod-autoscaling entries only switch off the ones
    tutor-contrib-aspects adds for the same Deployments, so each has one HPA.
    """
    pieces: list[GeneratedFile] = []
    entries: dict[str, Any] = {}
    if "ralph" in services:
        r = sizing.ralph
        entries[ralph.DEPLOYMENT] = dict(NO_POD_AUTOSCALING)
        docs = [without_namespace(ralph.ralph_hpa(sizing, target)), without_namespace(ralph.ralph_pdb(sizing, target))]
        pieces.append(GeneratedFile(
            "tutor/patches/k8s-deployments/ralph.yaml", dump_all(docs), TUTOR, "ralph",
            f"Tutor patch k8s-deployments: HPA ralph {r.min_replicas}-{r.max_replicas} replicas at "
            f"{r.cpu_target_percent} % CPU, PodDisruptionBudget (while RUN_RALPH)", r.explanation,
        ))
        pieces.append(GeneratedFile(
            "tutor/patches/k8s-override/ralph.yaml",
            dump(deployment_patch(ralph.DEPLOYMENT, target, "ralph", resources=resources(r.requests, r.limits))),
            TUTOR, "ralph", "Tutor patch k8s-override: ralph requests/limits (the HPA's CPU target needs requests)",
            r.explanation,
        ))
    if "superset" in services:
        s = sizing.superset
        entries.update({name: dict(NO_POD_AUTOSCALING) for name in superset.AUTOSCALED})
        pieces.append(GeneratedFile(
            "tutor/patches/k8s-deployments/superset.yaml",
            dump_all([without_namespace(doc) for doc in superset.hpas(sizing, target)]), TUTOR, "superset",
            f"Tutor patch k8s-deployments: HPAs superset {s.web_min_replicas}-{s.web_max_replicas} and "
            f"superset-worker {s.worker_min_replicas}-{s.worker_max_replicas} on CPU {s.cpu_target_percent} % / "
            f"memory {s.memory_target_percent} %, none for superset-worker-beat (while RUN_SUPERSET)",
            s.explanation,
        ))
    if entries:
        pieces.append(GeneratedFile(
            "tutor/pod-autoscaling-config.yml", dump({bundles.AUTOSCALING: entries}), TUTOR, "+".join(
                name for name in ("ralph", "superset") if name in services),
            f"tutor-contrib-pod-autoscaling: no HPA of its own for {', '.join(entries)} (the plugin's replace them)",
            "tutor-contrib-aspects' autoscaling entries for these Deployments would add a second HPA, and "
            "Ralph's breaks the build while Ralph is off.",
        ))
    return pieces


def plan(options: ConfigOptions, source: Measure = None, config: RoutingSettings | None = None) -> Plan:
    """Validate, measure, size and generate (nothing is written)."""
    validate(options)
    config = config or get_config()
    measured, note = measure(options, config, source)
    try:
        sizing = model.size(measured, profile=options.profile, overrides=options.overrides)
    except ValueError as exc:
        raise ConfigError(f"cannot size from these inputs: {exc}") from exc
    check_counts(sizing, options)
    target = build_target(options, config, sizing.workers.transport)
    forms, services = options.forms, options.services
    pieces: list[GeneratedFile] = []
    for name in services:
        # --format both: the Tutor plugin carries everything Tutor runs; k8s/ only what it does not
        # (the ClickHouse operator's objects, monitoring), so no Deployment gets two autoscalers or workers.
        service_forms = (TUTOR,) if options.format == "both" and name in TUTOR_CARRIED else forms
        pieces += _generate(name, sizing, target, service_forms, config, options)
    if TUTOR in forms:
        pieces += tutor_autoscaling(sizing, target, services)
    files: list[GeneratedFile] = []
    k8s_pieces = [p for p in pieces if p.form == K8S and p.path.startswith("k8s/")]
    if k8s_pieces:
        files += bundles.kustomize_tree(k8s_pieces)
    files += [p for p in pieces if p.form == K8S and not p.path.startswith("k8s/")]
    tutor_pieces = [p for p in pieces if p.form == TUTOR]
    if tutor_pieces:
        files.append(bundles.tutor_plugin(tutor_pieces))
    notes = _notes(note, options, sizing, target)
    sensitive = [f.path for f in files if f.sensitive]
    if sensitive and options.output == STDOUT:
        notes += (f"{', '.join(sensitive)} holds a generated secret and was printed to stdout; "
                  "prefer --output DIR (written with mode 0600).",)
    return Plan(options, sizing, target, tuple(files), notes)


def _generate(  # pylint: disable=too-many-arguments
    name: str, sizing: model.Sizing, target: Target, forms: tuple[str, ...], config: RoutingSettings,
    options: ConfigOptions,
) -> list[GeneratedFile]:
    if name == "workers":
        return workers.generate(sizing, target, forms, config.event_bus_topic)
    if name == "monitoring":
        return monitoring.generate(target, monitoring_options(options), forms)
    generator = {"ralph": ralph.generate, "clickhouse": clickhouse.generate, "superset": superset.generate}[name]
    return generator(sizing, target, forms)


def _notes(note: str, options: ConfigOptions, sizing: model.Sizing, target: Target) -> tuple[str, ...]:
    services = options.services
    notes = [note]
    assumed = [i.name for i in sizing.inputs if i.source.startswith("assumed: ") and i.value is not None]
    if assumed:
        notes.append(f"Assumed (not measured, no flag): {', '.join(assumed)}.")
    if "workers" in services:
        if target.queue_is_new:
            notes.append(
                f"Aspects tasks get the new queue {target.queue}: deploy the settings snippet and the worker together."
            )
        redis = target.event_bus_redis if target.transport == "event_bus" else target.broker
        notes.append(
            f"KEDA reads Redis at {redis.cluster_address(target.namespace)} ({redis.source}); "
            "KEDA must be installed in the cluster."
        )
        if redis.needs_password:
            scaled = workers.CONSUMER if target.transport == "event_bus" else workers.WORKER
            notes.append(
                f"Redis needs a password: create Secret {workers.redis_secret(scaled)} (key 'password') in "
                f"{target.namespace}; the generated TriggerAuthentication reads it."
            )
    if "clickhouse" in services:
        notes.append(
            f"Create Secret {clickhouse.admin_secret(target)} (key 'password') with CLICKHOUSE_ADMIN_PASSWORD "
            "before applying the ClickHouseInstallation."
        )
        if target.storage_class and not target.storage_provisioner:
            notes.append(
                f"Volumes use StorageClass {target.storage_class}; it must allow volume expansion "
                "(give --storage-class NAME=PROVISIONER to generate one)."
            )
    if "monitoring" in services:
        notes.extend(monitoring.NOTES)
    if "superset" in services:
        notes.append(superset.DB_NOTE)
        notes.append(f"Create Secret {superset.REDIS_SECRET} (key 'password') for Superset's standalone Redis.")
        if sizing.superset.async_queries and TUTOR not in options.forms:
            notes.append("Async queries are configured by the Tutor patches: run with --format tutor or both.")
        notes.append(f"Superset async queries {'on' if sizing.superset.async_queries else 'off'}: "
                     f"{sizing.superset.async_reason}.")
    return tuple(notes)


def write_files(files: tuple[GeneratedFile, ...], output: str, force: bool) -> list[Path]:
    """
    Write every file under ``output``, all or nothing; refuse to overwrite without ``force``.

    The files are written into a temporary directory beside ``output`` (inside it when ``output``
    exists but its parent is not writable), then moved into place: a new ``output`` by one
    ``rename``; an existing one file by file, with every replaced file kept aside until all are in
    place. Any filesystem error (read-only or immutable directory, ``/proc``, a path component that
    is a file) undoes what was moved and raises :class:`ConfigError` naming the path and the cause:
    ``output`` is left as it was.
    """
    root = Path(output).absolute()
    targets = [(root / f.path, f) for f in files]
    created: list[Path] = []  # directories this call made, deepest last
    staging = None
    try:
        existing = [str(path) for path, _ in targets if path.exists() or path.is_symlink()]
        if existing and not force:
            raise ConfigError(
                f"--output {output!r} already holds {len(existing)} of these file(s) ({existing[0]}, ...); "
                "nothing was written. Pass --force to overwrite them, or choose another --output directory."
            )
        _make_dirs(root.parent, created)
        staging = _staging_dir(root)
        for path, generated in targets:
            staged = staging / path.relative_to(root)
            staged.parent.mkdir(parents=True, exist_ok=True)
            _write(staged, generated.content, 0o600 if generated.sensitive else 0o644)
        if not root.exists():
            os.chmod(staging, 0o755 & ~_umask())
            os.rename(staging, root)
            staging = None
        else:
            _move_into(root, staging, targets, created)
    except OSError as exc:
        _remove_dirs(created)
        where = exc.filename if isinstance(exc.filename, str) else str(root)
        raise ConfigError(
            f"--output {output!r}: cannot write {where}: {exc.strerror or type(exc).__name__}; nothing was "
            "written and --output is as it was. Choose a writable directory (or '-' for stdout)."
        ) from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return [path for path, _ in targets]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _make_dirs(path: Path, created: list[Path]) -> None:
    """``mkdir -p path``, recording each directory made so that a failure can remove them."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir()
        created.append(directory)


def _remove_dirs(created: list[Path]) -> None:
    for directory in reversed(created):
        try:
            directory.rmdir()
        except OSError:
            pass


def _staging_dir(root: Path) -> Path:
    """A new private directory on ``root``'s filesystem (beside it, else inside it), so moves are renames."""
    try:
        return Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.", suffix=".tmp"))
    except OSError:
        if not root.is_dir():
            raise
        return Path(tempfile.mkdtemp(dir=root, prefix=".aspects-scaling-config.", suffix=".tmp"))


def _move_into(root: Path, staging: Path, targets, created: list[Path]) -> None:
    """Move the staged files over ``root``'s; on any error put every replaced file back, then re-raise."""
    backups = staging / ".replaced"
    moved: list[tuple[Path, Path | None]] = []  # (target, its backup or None when it was new)
    try:
        for path, _generated in targets:
            _make_dirs(path.parent, created)
            if path.is_dir() and not path.is_symlink():
                raise IsADirectoryError(errno.EISDIR, "a directory is where a file goes", str(path))
        for path, _generated in targets:
            backup = None
            if path.exists() or path.is_symlink():
                backup = backups / path.relative_to(root)
                backup.parent.mkdir(parents=True, exist_ok=True)
                os.rename(path, backup)
            moved.append((path, backup))
            os.rename(staging / path.relative_to(root), path)
    except OSError:
        for path, backup in reversed(moved):
            try:
                if backup is not None:
                    os.replace(backup, path)
                elif path.exists():
                    path.unlink()
            except OSError:
                pass
        raise


def _write(path: Path, content: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, mode)


def stream_text(files: tuple[GeneratedFile, ...]) -> str:
    """Every file for ``--output -``, each under a ``# ==> path <==`` header."""
    return "".join(f"# ==> {f.path} <==\n{f.content}" for f in files)


def _value(item: model.Input) -> str:
    if item.value is None:
        return "-"
    if isinstance(item.value, float):
        text = f"{item.value:.4g}" if abs(item.value) < 1000 else f"{item.value:,.0f}"
    else:
        text = f"{item.value:,}" if isinstance(item.value, int) and not isinstance(item.value, bool) else str(item.value)
    return f"{text} {item.unit}".strip()


def summary(result: Plan, written_to: str) -> str:
    """What was written and the sizing inputs behind each number; holds no file content."""
    s = result.sizing
    lines = [f"aspects_scaling_config: {len(result.files)} file(s) {written_to}", "",
             f"Profile: {s.profile} ({s.profile_reason})", "", "Sizing inputs:"]
    width = max(len(i.name) for i in s.inputs)
    vwidth = max(len(_value(i)) for i in s.inputs)
    for item in s.inputs:
        lines.append(f"  {item.name.ljust(width)}  {_value(item).ljust(vwidth)}  {item.source}")
    lines += ["", "Files:"]
    for f in result.files:
        lines.append(f"  {f.path}")
        lines.append(f"      {f.what}")
        lines.append(f"      why: {f.basis}")
        for part in f.parts:
            lines.append(f"      - {part.what} [{part.path}]")
            lines.append(f"          why: {part.basis}")
    lines += ["", "Notes:"]
    lines += [f"  - {note}" for note in result.notes]
    return "\n".join(lines) + "\n"

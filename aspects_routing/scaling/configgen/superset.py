"""
Superset: a standalone metadata database and Redis, autoscaling, async queries, cache warm-up.

Kubernetes: HPAs for ``superset`` and ``superset-worker`` on CPU and memory
(never for ``superset-worker-beat``: a second beat would run every schedule
twice), and patches pointing all three Deployments at Superset's own Redis
and giving the autoscaled ones requests.

Tutor: the ``SUPERSET_DB_*`` values, the same Redis overrides as a
``k8s-override`` patch, the HPAs as patches (:func:`.service.tutor_autoscaling`), the
``superset-config`` patch (cache warm-up beat entry and its executor) and, when
queries run asynchronously, a ``superset-extra-assets`` patch.

Asynchronous execution is what the Aspects guide asks for: the Aspects ClickHouse
database asset with ``allow_run_async: true``, so SQL Lab queries run on the
Superset workers and land in ``RESULTS_BACKEND`` (Aspects' config already puts it
on Superset's Redis, ``REDIS_RESULTS_DB``). tutor-contrib-aspects' create_assets.py
writes the shipped assets first and then each ``superset-extra-assets`` document
to ``databases/<_file_name>``, so a document named like the shipped
``OpenedX_Clickhouse.yaml`` replaces it before the import.
``GLOBAL_ASYNC_QUERIES`` stays off in every profile: see
:data:`aspects_routing.scaling.sizing.GLOBAL_ASYNC_REASON`.

Cache warm-up: Superset 6.1 warms each chart as the user its
``CACHE_WARMUP_EXECUTORS`` name (by default the chart's owner); Aspects imports
its charts without owners, so the warm-up runs as Aspects' Superset admin
(``SUPERSET_ADMIN_USERNAME``, created by Aspects' init job). Aspects' ``CeleryConfig``
uses Celery's old upper-case names (Celery refuses a mix), so the entry goes into
``CeleryConfig.CELERYBEAT_SCHEDULE``.

Deployments: ``superset`` and ``superset-worker`` roll (``maxUnavailable: 0``)
instead of Aspects' ``Recreate``, so a rollout never stops them (the beat stays
``Recreate``: two beats would run every schedule twice); the worker's
``--concurrency`` and ``--max-memory-per-child`` come through
``CELERY_WORKER_EXTRA_ARGS``, which Aspects' docker-bootstrap.sh appends to
``celery worker``.
"""

from __future__ import annotations

from typing import Any

from aspects_routing.scaling.configgen.common import (
    HPA_BEHAVIOR,
    K8S,
    TUTOR,
    GeneratedFile,
    Target,
    deployment_patch,
    dump,
    dump_all,
    hpa,
    python_assignments,
    resources,
    workload_patch,
)
from aspects_routing.scaling.sizing import Sizing

SERVICE = "superset"
WEB, WORKER, BEAT = "superset", "superset-worker", "superset-worker-beat"
AUTOSCALED = (WEB, WORKER)
#: Standalone services Superset is pointed at; edit to your servers.
DB_HOST, DB_PORT, DB_NAME, DB_USERNAME = "superset-mysql", 3306, "superset", "superset"
REDIS_HOST, REDIS_PORT = "superset-redis", 6379
#: Secret (key ``password``) with the standalone Redis password; never written here.
REDIS_SECRET = "superset-redis"
#: Secret (key ``password``) with the standalone MySQL password (``--format k8s``; Tutor: SUPERSET_DB_PASSWORD).
DB_SECRET = "superset-mysql"
#: tutor-contrib-aspects' Superset init jobs (``tutor k8s do init``) and their containers: they
#: load the same superset_config.py, so they talk to the same Redis and database.
INIT_JOBS = {"superset-job": "superset", "superset-worker-job": "superset-worker-job"}
#: Deployments that roll instead of Aspects' ``Recreate`` (never the beat: one at a time).
ROLLING = (WEB, WORKER)
#: A new pod is ready before an old one goes: with a PDB, a rollout never stops the service.
ROLLING_UPDATE = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
#: Aspects' docker-bootstrap.sh runs ``celery ... worker -Ofair -l INFO ${CELERY_WORKER_EXTRA_ARGS}``.
WORKER_ARGS_ENV = "CELERY_WORKER_EXTRA_ARGS"
#: The user the warm-up runs as: Aspects' Superset admin (Tutor renders the patch with its config).
WARMUP_USER = "{{ SUPERSET_ADMIN_USERNAME }}"
#: tutor-contrib-aspects 6.1.0's OpenedX_Clickhouse.yaml, every field but ``sqlalchemy_uri``
#: (create_assets.py sets it from SUPERSET_DATABASES), with ``allow_run_async`` on.
#: tests/test_superset_tier.py compares it with the shipped asset.
ASPECTS_DATABASE_ASSET = {
    "_file_name": "OpenedX_Clickhouse.yaml",
    "allow_ctas": False,
    "allow_cvas": False,
    "allow_dml": False,
    "allow_file_upload": False,
    "allow_run_async": True,
    "cache_timeout": None,
    "configuration_method": "sqlalchemy_form",
    "database_name": "OpenedX Clickhouse",
    "expose_in_sqllab": True,
    "extra": {
        "allows_virtual_table_explore": True,
        "engine_params": {},
        "metadata_params": {},
        "schemas_allowed_for_file_upload": [],
    },
    "impersonate_user": False,
    "uuid": "21174b6c-4d40-4958-8161-d6c3cf5e77b6",
    "version": "1.0.0",
}
#: Charts of tutor-contrib-aspects 6.1.0 shipped without a saved query_context (14 of 82;
#: tests/test_superset_tier.py counts them in the installed package).
ASPECTS_CHARTS_WITHOUT_QUERY_CONTEXT = (
    "Active Users Per Organization", "ClickHouse metrics", "Courses", "Courses Per Organization",
    "Current Active Enrollments By Mode", "Last Received Event", "Last course syncronized", "Most-used Charts",
    "Most-used Dashboards", "Slowest ClickHouse Queries", "Superset Active Users Over Time",
    "Superset Active Users", "Superset Registered Users Over Time", "Total Organizations",
)
ASPECTS_CHART_COUNT = 82
WARMUP_NOTE = (
    f"The warm-up runs as Aspects' Superset admin ({WARMUP_USER}, created by Aspects' init job): "
    "Superset 6.1 warms a chart as its owner by default, and Aspects imports its charts without owners "
    "(unless SUPERSET_OWNERS), so the task found no executor and requested nothing. It warms the admin's "
    "view: viewers whose queries differ (row-level security, can_view_courses) still miss the cache. "
    "Superset warms a non-legacy chart only from its saved query_context; "
    f"{len(ASPECTS_CHARTS_WITHOUT_QUERY_CONTEXT)} of the {ASPECTS_CHART_COUNT} shipped Aspects charts have none "
    f"({', '.join(ASPECTS_CHARTS_WITHOUT_QUERY_CONTEXT)}), and Aspects' create_assets.py clears query_context "
    "on every chart after each import, so every Aspects chart (all non-legacy) stays cold until it is saved "
    "again in Explore; the warm-up answers 'Chart's query context does not exist' for them. Charts saved "
    "in Explore after the last `tutor k8s do init` are warmed."
)
#: Dashboards warmed are those viewed in this period.
WARMUP_SINCE = "7 days ago"

DB_NOTE = (
    "Aspects' init job creates the Superset database on the platform's MySQL; with a standalone "
    f"server, create database {DB_NAME!r} and user {DB_USERNAME!r} there first, and set SUPERSET_DB_PASSWORD."
)


class Code(str):
    """A Python expression written as is into a patch (a name or call fixed by this module)."""

    def __repr__(self) -> str:
        return str(self)


def call(function: str, **kwargs: Any) -> Code:
    """``function(k=v, ...)`` with ``repr``-rendered arguments."""
    return Code(f"{function}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})")


def redis_env() -> list[dict[str, Any]]:
    """REDIS_* env for the Superset containers; the password comes from a Secret."""
    return [
        {"name": "REDIS_HOST", "value": REDIS_HOST},
        {"name": "REDIS_PORT", "value": str(REDIS_PORT)},
        # value: null removes Tutor's literal value when the patch is merged.
        {"name": "REDIS_PASSWORD", "value": None,
         "valueFrom": {"secretKeyRef": {"name": REDIS_SECRET, "key": "password"}}},
    ]


def db_env() -> list[dict[str, Any]]:
    """DATABASE_* env for a standalone MySQL (``--format k8s``: Tutor's SUPERSET_DB_* do it in the plugin)."""
    return [
        {"name": "DATABASE_HOST", "value": DB_HOST},
        {"name": "DATABASE_PORT", "value": str(DB_PORT)},
        {"name": "DATABASE_DB", "value": DB_NAME},
        {"name": "DATABASE_USER", "value": DB_USERNAME},
        {"name": "DATABASE_PASSWORD", "value": None,
         "valueFrom": {"secretKeyRef": {"name": DB_SECRET, "key": "password"}}},
    ]


def deployment_patches(sizing: Sizing, target: Target, standalone_db: bool = False) -> list[dict[str, Any]]:
    """Redis (and with ``standalone_db`` MySQL) overrides for the three Deployments and the init jobs."""
    env = redis_env() + (db_env() if standalone_db else [])
    patches = []
    for name in (WEB, WORKER, BEAT):
        fields: dict[str, Any] = {"env": env}
        if name in sizing.superset.resources:
            res = sizing.superset.resources[name]
            fields["resources"] = resources(res["requests"], res["limits"])
        if name == WORKER:
            fields["env"] = [*fields["env"], {"name": WORKER_ARGS_ENV, "value": worker_args(sizing)}]
        patch = deployment_patch(name, target, name, **fields)
        if name in ROLLING:
            patch["spec"]["strategy"] = dict(ROLLING_UPDATE)
        patches.append(patch)
    for job, container in INIT_JOBS.items():
        patches.append(workload_patch("Job", job, container, env=env))
    return patches


def worker_args(sizing: Sizing) -> str:
    """``celery worker`` arguments bounding the worker's memory (see ``sizing.superset_worker_memory``)."""
    s = sizing.superset
    return f"--concurrency={s.worker_concurrency} --max-memory-per-child={s.worker_max_memory_per_child_kib}"


def extra_assets() -> str:
    """The ``superset-extra-assets`` patch: the Aspects ClickHouse database with ``allow_run_async``."""
    # A document of its own whatever another plugin's patch before it ends with.
    return "---\n" + dump(ASPECTS_DATABASE_ASSET)


def hpas(sizing: Sizing, target: Target) -> list[dict[str, Any]]:
    """HPAs for superset and superset-worker on CPU and memory utilisation."""
    s = sizing.superset
    ranges = {WEB: (s.web_min_replicas, s.web_max_replicas), WORKER: (s.worker_min_replicas, s.worker_max_replicas)}
    return [
        hpa(name, target, name, low, high, s.cpu_target_percent, s.memory_target_percent, behavior=HPA_BEHAVIOR)
        for name, (low, high) in ranges.items()
    ]


def db_values() -> dict[str, Any]:
    """tutor-contrib-aspects' SUPERSET_DB_* values for a standalone MySQL (password left to the operator)."""
    return {
        "SUPERSET_DB_HOST": DB_HOST,
        "SUPERSET_DB_PORT": DB_PORT,
        "SUPERSET_DB_NAME": DB_NAME,
        "SUPERSET_DB_USERNAME": DB_USERNAME,
    }


def superset_config_statements(sizing: Sizing) -> list[tuple[str, Any]]:
    """Statements of the ``superset-config`` patch (runs after Aspects' CeleryConfig is defined)."""
    s = sizing.superset
    return [
        ("CACHE_WARMUP_EXECUTORS", [call("FixedExecutor", username=WARMUP_USER)]),
        (
            'CeleryConfig.CELERYBEAT_SCHEDULE["cache-warmup"]',
            {
                "task": "cache-warmup",
                "schedule": call("crontab", minute=s.cache_warmup_minute, hour="*"),
                "kwargs": {"strategy_name": "top_n_dashboards", "top_n": s.cache_warmup_top_n, "since": WARMUP_SINCE},
            },
        ),
    ]


def superset_config_patch(sizing: Sizing) -> str:
    """The ``superset-config`` patch's Python (a Jinja template: Tutor fills in the admin's name)."""
    text = python_assignments(superset_config_statements(sizing), "aspects_scaling_config: cache warm-up")
    header, _, body = text.partition("\n")
    return f"{header}\nfrom superset.tasks.types import FixedExecutor\n{body}"


def generate(sizing: Sizing, target: Target, forms: tuple[str, ...]) -> list[GeneratedFile]:
    """Every Superset file for ``forms`` (Tutor's autoscaling entries are merged by the service)."""
    s = sizing.superset
    files: list[GeneratedFile] = []
    if K8S in forms:
        for doc in hpas(sizing, target):
            name = doc["metadata"]["name"]
            spec = doc["spec"]
            files.append(
                GeneratedFile(
                    f"k8s/superset/{name}-hpa.yaml", dump(doc), K8S, SERVICE,
                    f"HPA {name}: {spec['minReplicas']}-{spec['maxReplicas']} replicas on CPU "
                    f"{s.cpu_target_percent} % / memory {s.memory_target_percent} %",
                    s.explanation, complete_k8s_object=True,
                )
            )
        for doc in deployment_patches(sizing, target, standalone_db=True):
            name = doc["metadata"]["name"]
            files.append(
                GeneratedFile(
                    f"k8s/superset/{name}-patch.yaml", dump(doc), K8S, SERVICE,
                    f"Patch of {doc['kind']} {name}: standalone Redis {REDIS_HOST}:{REDIS_PORT} and MySQL "
                    f"{DB_HOST}:{DB_PORT}" + (" and requests/limits" if name in s.resources else ""),
                    DB_NOTE,
                )
            )
    if TUTOR in forms:
        files.append(
            GeneratedFile(
                "tutor/superset-config.yml", dump(db_values()), TUTOR, SERVICE,
                f"SUPERSET_DB_* for a standalone MySQL at {DB_HOST}:{DB_PORT}", DB_NOTE,
            )
        )
        files.append(
            GeneratedFile(
                "tutor/patches/k8s-override.yml", dump_all(deployment_patches(sizing, target)), TUTOR, SERVICE,
                f"Tutor patch k8s-override: REDIS_* of {WEB}, {WORKER}, {BEAT} and the init jobs -> "
                f"{REDIS_HOST} (password from Secret {REDIS_SECRET})", s.explanation,
            )
        )
        files.append(
            GeneratedFile(
                "tutor/patches/superset-config.py", superset_config_patch(sizing), TUTOR, SERVICE,
                f"Tutor patch superset-config: cache-warmup of the top {s.cache_warmup_top_n} dashboards every "
                f"30 min, as Aspects' admin ({WARMUP_USER})",
                WARMUP_NOTE, jinja=True,
            )
        )
        if s.async_queries:
            files.append(
                GeneratedFile(
                    "tutor/patches/superset-extra-assets.yml", extra_assets(), TUTOR, SERVICE,
                    "Tutor patch superset-extra-assets: database 'OpenedX Clickhouse' with allow_run_async "
                    "(SQL Lab queries on the workers, results in RESULTS_BACKEND on Superset's Redis); "
                    "GLOBAL_ASYNC_QUERIES stays off",
                    f"{s.async_reason}. GLOBAL_ASYNC_QUERIES off: {s.global_async_reason}.",
                )
            )
    return files

"""
Superset: a standalone metadata database and Redis, autoscaling, async queries, cache warm-up.

Kubernetes: HPAs for ``superset`` and ``superset-worker`` on CPU and memory
(never for ``superset-worker-beat``: a second beat would run every schedule
twice), and patches pointing all three Deployments at Superset's own Redis
and giving the autoscaled ones requests.

Tutor: the ``SUPERSET_DB_*`` values, the same Redis overrides as a
``k8s-override`` patch, ``POD_AUTOSCALING_EXTRA_SERVICES`` entries, and the
``superset-config`` / ``superset-config-docker`` patches for asynchronous
queries and the cache warm-up beat entry. Aspects' ``CeleryConfig`` uses
Celery's old upper-case names (Celery refuses a mix), so the entry goes into
``CeleryConfig.CELERYBEAT_SCHEDULE``.
"""

from __future__ import annotations

import secrets
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
    memory_mi,
    pod_autoscaling_entry,
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
#: Superset requires a JWT secret of at least 32 bytes; 48 random bytes give 64 URL-safe characters.
JWT_SECRET_BYTES = 48
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
        patches.append(deployment_patch(name, target, name, **fields))
    for job, container in INIT_JOBS.items():
        patches.append(workload_patch("Job", job, container, env=env))
    return patches


def hpas(sizing: Sizing, target: Target) -> list[dict[str, Any]]:
    """HPAs for superset and superset-worker on CPU and memory utilisation."""
    s = sizing.superset
    ranges = {WEB: (s.web_min_replicas, s.web_max_replicas), WORKER: (s.worker_min_replicas, s.worker_max_replicas)}
    return [
        hpa(name, target, name, low, high, s.cpu_target_percent, s.memory_target_percent, behavior=HPA_BEHAVIOR)
        for name, (low, high) in ranges.items()
    ]


def pod_autoscaling_entries(sizing: Sizing) -> dict[str, dict[str, Any]]:
    """tutor-contrib-pod-autoscaling entries (memory as an average value: the target % of the request)."""
    s = sizing.superset
    ranges = {WEB: (s.web_min_replicas, s.web_max_replicas), WORKER: (s.worker_min_replicas, s.worker_max_replicas)}
    entries = {}
    for name, (low, high) in ranges.items():
        res = s.resources[name]
        avg_memory = f"{int(memory_mi(res['requests']['memory']) * s.memory_target_percent / 100)}Mi"
        entries[name] = pod_autoscaling_entry(
            requests=res["requests"], limits=res["limits"], min_replicas=low, max_replicas=high,
            avg_cpu=s.cpu_target_percent, avg_memory=avg_memory, behavior=HPA_BEHAVIOR,
        )
    return entries


def db_values() -> dict[str, Any]:
    """tutor-contrib-aspects' SUPERSET_DB_* values for a standalone MySQL (password left to the operator)."""
    return {
        "SUPERSET_DB_HOST": DB_HOST,
        "SUPERSET_DB_PORT": DB_PORT,
        "SUPERSET_DB_NAME": DB_NAME,
        "SUPERSET_DB_USERNAME": DB_USERNAME,
    }


def superset_config_statements(sizing: Sizing, jwt_secret: str | None) -> list[tuple[str, Any]]:
    """Statements of the ``superset-config`` patch (runs after Aspects' CeleryConfig is defined)."""
    s = sizing.superset
    statements: list[tuple[str, Any]] = [
        (
            'CeleryConfig.CELERYBEAT_SCHEDULE["cache-warmup"]',
            {
                "task": "cache-warmup",
                "schedule": call("crontab", minute=s.cache_warmup_minute, hour="*"),
                "kwargs": {"strategy_name": "top_n_dashboards", "top_n": s.cache_warmup_top_n, "since": WARMUP_SINCE},
            },
        )
    ]
    if s.async_queries and jwt_secret:
        statements += [
            ("GLOBAL_ASYNC_QUERIES_JWT_SECRET", jwt_secret),
            (
                "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND",
                {
                    "CACHE_TYPE": "RedisCache",
                    "CACHE_REDIS_HOST": Code("REDIS_HOST"),
                    "CACHE_REDIS_PORT": Code("REDIS_PORT"),
                    "CACHE_REDIS_PASSWORD": Code("REDIS_PASSWORD"),
                    "CACHE_REDIS_DB": Code("REDIS_RESULTS_DB"),
                },
            ),
        ]
    return statements


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
        jwt_secret = secrets.token_urlsafe(JWT_SECRET_BYTES) if s.async_queries else None
        files.append(
            GeneratedFile(
                "tutor/patches/superset-config.py",
                python_assignments(
                    superset_config_statements(sizing, jwt_secret),
                    "aspects_scaling_config: cache warm-up"
                    + (" and asynchronous queries (random JWT secret, generated for this run)" if jwt_secret else ""),
                ),
                TUTOR, SERVICE,
                f"Tutor patch superset-config: cache-warmup of the top {s.cache_warmup_top_n} dashboards"
                + (" and async queries (new random JWT secret)" if jwt_secret else ""),
                s.explanation,
                sensitive=jwt_secret is not None,
            )
        )
        if s.async_queries:
            files.append(
                GeneratedFile(
                    "tutor/patches/superset-config-docker.py",
                    python_assignments([('FEATURE_FLAGS["GLOBAL_ASYNC_QUERIES"]', True)],
                                       "aspects_scaling_config: asynchronous queries"),
                    TUTOR, SERVICE, "Tutor patch superset-config-docker: FEATURE_FLAGS GLOBAL_ASYNC_QUERIES",
                    s.async_reason,
                )
            )
    return files

"""
Workers for the Aspects queue (Celery) or the event-bus consumer, and their autoscalers.

Kubernetes: a worker Deployment consuming only the Aspects queue, a KEDA
``ScaledObject`` on the queue's Redis list length (with a ``TriggerAuthentication``
naming a Secret when Redis needs a password); with the event bus, a
``consume_events`` Deployment (always with ``check_backlog``) and a ``ScaledObject``
on the consumer group's lag. The ``ASPECTS_ROUTING`` snippet for ``lms.yml`` is
settings, not an object: it is written under ``settings/``.

Tutor: the same Deployment and ScaledObject as a ``k8s-deployments`` patch (image
``{{ DOCKER_IMAGE_OPENEDX }}``), the ``openedx-common-settings`` patch (transport,
batching) and an ``openedx-lms-common-settings`` patch (the LMS's queue). Not a
tutor-contrib-celery variant: its 21 and 22 releases take variants from a Python
hook (``CELERY_WORKERS_CONFIG``), which a YAML plugin cannot extend.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aspects_routing.scaling.configgen.common import (
    DEDICATED_QUEUE,
    K8S,
    TUTOR,
    TUTOR_OPENEDX_IMAGE,
    GeneratedFile,
    RedisAddress,
    Target,
    dump,
    labels,
    metadata,
    python_assignments,
    resources,
    without_namespace,
)
from aspects_routing.scaling.sizing import Sizing
from aspects_routing.transport import consumer_command
from aspects_routing.transport.consumer import ClaimThreshold, claim_threshold

WORKER = "aspects-worker"
CONSUMER = "aspects-event-consumer"
SERVICE = "workers"
#: Recycle worker processes like Tutor's lms-worker does, to bound memory growth.
MAX_TASKS_PER_CHILD = 100
#: How the consumer container runs manage.py (the image's working directory is edx-platform).
CONSUMER_MANAGE = ("python", "manage.py", "lms")


def routing_settings(sizing: Sizing, target: Target) -> dict[str, Any]:
    """The ``ASPECTS_ROUTING`` keys (and batching settings) the generated workers expect."""
    values: dict[str, Any] = {"ASPECTS_ROUTING": {"QUEUE": target.queue, "TRANSPORT": target.transport}}
    if target.transport == "event_bus":
        values["ASPECTS_ROUTING"]["EVENT_BUS_CONSUMER_GROUP"] = target.consumer_group
    values.update(sizing.batching.settings)
    return values


def _openedx_pod(name: str, args: list[str], req, lim, env_extra=()) -> dict[str, Any]:
    """Pod template shaped like Tutor's lms-worker: same image, settings and config maps."""
    env = [
        {"name": "SERVICE_VARIANT", "value": "lms"},
        {"name": "DJANGO_SETTINGS_MODULE", "value": "lms.envs.tutor.production"},
        *env_extra,
    ]
    return {
        "metadata": {"labels": labels(name)},
        "spec": {
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
            "containers": [
                {
                    "name": name,
                    "image": None,  # set by _deployment from the target
                    "args": args,
                    "env": env,
                    "resources": resources(req, lim),
                    "volumeMounts": [
                        {"mountPath": "/openedx/edx-platform/lms/envs/tutor/", "name": "settings-lms"},
                        {"mountPath": "/openedx/edx-platform/cms/envs/tutor/", "name": "settings-cms"},
                        {"mountPath": "/openedx/config", "name": "config"},
                    ],
                    "securityContext": {"allowPrivilegeEscalation": False},
                }
            ],
            "volumes": [
                # Tutor generates these ConfigMaps with a hash suffix: kustomize rewrites the
                # names when the Deployment is built with Tutor's env (plugin or overlay).
                {"name": "settings-lms", "configMap": {"name": "openedx-settings-lms"}},
                {"name": "settings-cms", "configMap": {"name": "openedx-settings-cms"}},
                {"name": "config", "configMap": {"name": "openedx-config"}},
            ],
        },
    }


def _deployment(name: str, target: Target, replicas: int, pod: dict[str, Any]) -> dict[str, Any]:
    pod["spec"]["containers"][0]["image"] = target.image
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, target),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": pod,
        },
    }


def worker_deployment(sizing: Sizing, target: Target) -> dict[str, Any]:
    """A Celery worker consuming only the Aspects queue."""
    w = sizing.workers
    args = [
        "celery",
        "--app=lms.celery",
        "worker",
        "--loglevel=info",
        f"--queues={target.queue}",
        f"--concurrency={w.concurrency}",
        f"--max-tasks-per-child={MAX_TASKS_PER_CHILD}",
        "--hostname=aspects.%h",
    ]
    return _deployment(WORKER, target, w.min_replicas, _openedx_pod(WORKER, args, w.requests, w.limits))


def consumer_claim(sizing: Sizing) -> ClaimThreshold:
    """The consumers' ``claim_msgs_older_than``, from the sizing's mean processing time per event."""
    runtime = sizing.input("mean_task_runtime_seconds")
    return claim_threshold(runtime.value, runtime.source)


def consumer_deployment(sizing: Sizing, target: Target, topic: str) -> dict[str, Any]:
    """``consume_events`` replicas; each pod's name is its unique consumer name."""
    w = sizing.workers
    pod_name = {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    # Kubernetes expands $(POD_NAME) in args from the env var declared above (it expands
    # only variables declared in the container's env), so each replica has its own
    # consumer name; the transport's command always passes check_backlog, and
    # claim_msgs_older_than from the measured processing time (consumer_claim).
    args = consumer_command(
        topic, target.consumer_group, "$(POD_NAME)", manage=CONSUMER_MANAGE, claim_idle_ms=consumer_claim(sizing).idle_ms
    )
    pod = _openedx_pod(CONSUMER, args, w.consumer_requests, w.consumer_limits, env_extra=(pod_name,))
    return _deployment(CONSUMER, target, w.min_replicas, pod)


def _trigger_metadata(redis: RedisAddress, target: Target, **fields: Any) -> dict[str, str]:
    # KEDA trigger metadata is a map of strings; KEDA's operator runs in its own
    # namespace, so the address is the Service's cluster FQDN.
    return {"address": redis.cluster_address(target.namespace), **{k: str(v) for k, v in fields.items()}}


def redis_secret(name: str) -> str:
    """The Secret (key ``password``) the operator creates with the Redis password for ``name``'s scaler."""
    return f"{name}-redis"


def trigger_authentication(name: str, target: Target) -> dict[str, Any]:
    """KEDA ``TriggerAuthentication`` mapping the scaler's ``password`` from a Secret (never the password)."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": metadata(redis_secret(name), target),
        "spec": {"secretTargetRef": [{"parameter": "password", "name": redis_secret(name), "key": "password"}]},
    }


def _scaled_object(name: str, target: Target, sizing: Sizing, trigger: dict[str, Any], redis: RedisAddress):
    if redis.needs_password:
        # The password stays in a Secret; the TriggerAuthentication maps it.
        trigger["authenticationRef"] = {"name": redis_secret(name)}
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(name, target),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicaCount": sizing.workers.min_replicas,
            "maxReplicaCount": sizing.workers.max_replicas,
            "triggers": [trigger],
        },
    }


def queue_scaled_object(sizing: Sizing, target: Target) -> dict[str, Any]:
    """KEDA ``redis`` scaler on the Aspects queue (Celery keeps a Redis list per queue)."""
    redis = target.broker
    trigger = {
        "type": "redis",
        "metadata": _trigger_metadata(
            redis, target, listName=target.queue, listLength=sizing.workers.list_length, databaseIndex=redis.db
        ),
    }
    return _scaled_object(WORKER, target, sizing, trigger, redis)


def stream_scaled_object(sizing: Sizing, target: Target) -> dict[str, Any]:
    """KEDA ``redis-streams`` scaler on the consumer group's lag."""
    redis = target.event_bus_redis
    trigger = {
        "type": "redis-streams",
        "metadata": _trigger_metadata(
            redis,
            target,
            stream=target.stream,
            consumerGroup=target.consumer_group,
            lagCount=sizing.workers.lag_count,
            databaseIndex=redis.db,
        ),
    }
    return _scaled_object(CONSUMER, target, sizing, trigger, redis)


def _objects(sizing: Sizing, target: Target, topic: str) -> list[tuple[str, dict[str, Any], str, str, bool]]:
    """(file name, object, what, basis, complete) of every worker object, for either form."""
    w = sizing.workers
    basis = w.explanation
    objects = [
        (
            "deployment.yaml", worker_deployment(sizing, target),
            f"Deployment {WORKER}: Celery worker on {target.queue} only, "
            f"concurrency {w.concurrency}, {w.min_replicas} replica(s)", basis, True,
        )
    ]
    if target.transport == "event_bus":
        objects.append(
            (
                "event-consumer-deployment.yaml", consumer_deployment(sizing, target, topic),
                f"Deployment {CONSUMER}: consume_events with check_backlog and "
                f"claim_msgs_older_than {consumer_claim(sizing).idle_ms} ms",
                f"{basis} {consumer_claim(sizing).explanation}: a consumer that starts takes over the "
                "entries a stopped one held longer than that (sent again at worst; Ralph and ClickHouse "
                "deduplicate by statement id).",
                True,
            )
        )
        scaled, name, redis = stream_scaled_object(sizing, target), CONSUMER, target.event_bus_redis
        objects.append(
            (
                "event-consumer-scaledobject.yaml", scaled,
                f"KEDA ScaledObject {CONSUMER}: redis-streams lagCount {w.lag_count}, "
                f"{w.min_replicas}-{w.max_replicas} replicas, Redis {_trigger_address(scaled)}", basis, False,
            )
        )
    else:
        scaled, name, redis = queue_scaled_object(sizing, target), WORKER, target.broker
        objects.append(
            (
                "scaledobject.yaml", scaled,
                f"KEDA ScaledObject {WORKER}: redis listLength {w.list_length}, "
                f"{w.min_replicas}-{w.max_replicas} replicas, Redis {_trigger_address(scaled)}", basis, False,
            )
        )
    if redis.needs_password:
        objects.append(
            (
                "trigger-authentication.yaml", trigger_authentication(name, target),
                f"KEDA TriggerAuthentication {redis_secret(name)}: the scaler's password from Secret "
                f"{redis_secret(name)} (key password), which you create", f"Redis at {redis.source} needs a password.",
                False,
            )
        )
    return objects


def _trigger_address(scaled: dict[str, Any]) -> str:
    return scaled["spec"]["triggers"][0]["metadata"]["address"]


def generate(sizing: Sizing, target: Target, forms: tuple[str, ...], topic: str) -> list[GeneratedFile]:
    """Every worker file for ``forms``."""
    settings_values = routing_settings(sizing, target)
    batching = f" Batching: {sizing.batching.reason}."
    files: list[GeneratedFile] = []
    if K8S in forms:
        files.append(
            GeneratedFile(
                "settings/lms-aspects-routing.yml", dump(settings_values), K8S, SERVICE,
                "ASPECTS_ROUTING (and batching) for lms.yml; in cms.yml leave QUEUE out (CMS tasks need a CMS worker)",
                f"Queue {target.queue}.{batching}",
            )
        )
        for name, doc, what, basis, complete in _objects(sizing, target, topic):
            files.append(
                GeneratedFile(f"k8s/workers/{name}", dump(doc), K8S, SERVICE, what, basis, complete_k8s_object=complete)
            )
    if TUTOR in forms:
        # Built by Tutor's kustomization with its env: the image is DOCKER_IMAGE_OPENEDX and the
        # ConfigMap names get Tutor's hash suffixes; Tutor sets the namespace.
        tutor_target = replace(target, image=TUTOR_OPENEDX_IMAGE)
        for name, doc, what, basis, _complete in _objects(sizing, tutor_target, topic):
            files.append(
                GeneratedFile(
                    f"tutor/patches/k8s-deployments/{name}", dump(without_namespace(doc)), TUTOR, SERVICE,
                    f"Tutor patch k8s-deployments: {what}", basis, jinja=True,
                )
            )
        # QUEUE for the LMS only: CMS tasks (the course sink) need a CMS worker, and the
        # CMS keeps its own HIGH_PRIORITY_QUEUE. Transport and batching apply to both.
        routing = settings_values["ASPECTS_ROUTING"]
        shared = [(f"ASPECTS_ROUTING[{k!r}]", v) for k, v in routing.items() if k != "QUEUE"]
        shared += [(k, v) for k, v in settings_values.items() if k != "ASPECTS_ROUTING"]
        files.append(
            GeneratedFile(
                "tutor/patches/openedx-common-settings.py",
                python_assignments(shared, "aspects_scaling_config: Aspects transport and batching (LMS and CMS)"),
                TUTOR, SERVICE, "Tutor patch openedx-common-settings: transport and batching",
                f"Transport {target.transport}.{batching}",
            )
        )
        files.append(
            GeneratedFile(
                "tutor/patches/openedx-lms-common-settings.py",
                python_assignments(
                    [("ASPECTS_ROUTING['QUEUE']", routing["QUEUE"])],
                    "aspects_scaling_config: the LMS's Aspects queue (the CMS keeps its high-priority queue)",
                ),
                TUTOR, SERVICE, "Tutor patch openedx-lms-common-settings: ASPECTS_ROUTING['QUEUE']",
                f"Queue {target.queue}, consumed by the generated worker.",
            )
        )
    return files


__all__ = ["DEDICATED_QUEUE", "generate", "routing_settings"]

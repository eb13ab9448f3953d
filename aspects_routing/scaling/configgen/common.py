"""
What every generator shares: the deployment target, the generated-file record,
YAML dumping and Kubernetes metadata.

Generators build plain dicts and lists and dump them with PyYAML; nothing is
assembled from string templates. Python patches for Tutor (Superset config,
LMS settings) are rendered statement by statement from data with ``repr``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import yaml

K8S = "k8s"
TUTOR = "tutor"
FORMATS = (K8S, TUTOR, "both")
SERVICES = ("workers", "ralph", "clickhouse", "superset", "monitoring")

#: The Open edX image the Aspects worker runs with ``--format k8s`` (``--image``); it must be
#: your DOCKER_IMAGE_OPENEDX, built with aspects-routing installed. The Tutor plugin uses
#: ``{{ DOCKER_IMAGE_OPENEDX }}`` itself.
OPENEDX_IMAGE = "docker.io/overhangio/openedx:21.0.9"
TUTOR_OPENEDX_IMAGE = "{{ DOCKER_IMAGE_OPENEDX }}"
#: The Tutor plugin ``--format tutor`` writes (a YAML plugin: name, version, config, patches).
PLUGIN_NAME = "aspects-scaling"
PLUGIN_PATH = f"tutor/{PLUGIN_NAME}.yml"
#: Kubernetes' cluster domain, for addresses resolved from other namespaces (KEDA's operator).
CLUSTER_DOMAIN = "svc.cluster.local"
#: Replica, shard and volume counts are int32 in the Kubernetes API and in the operators' CRDs.
INT32_MAX = 2**31 - 1
#: No generated count may exceed this: a larger number means a wrong input (events per day given
#: as per second, a typo), not a deployment anyone runs; the message says which input to check.
SANITY_CAP = 10_000
#: Queue generated for Aspects tasks when ASPECTS_ROUTING["QUEUE"] is not set:
#: named like edx-platform's queues so tutor-contrib-celery's variant "aspects" maps to it.
DEDICATED_QUEUE = "edx.lms.core.aspects"
PART_OF = "aspects"

# Kubernetes names: DNS-1123 labels (namespaces, Services) and subdomains (most objects).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: clickhouse-operator's rule for cluster names (CRD pattern and maxLength).
CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9-]{1,15}$")


def is_dns_label(value: str) -> bool:
    """True for a valid namespace / Service name."""
    return bool(_DNS_LABEL.match(value))


def is_dns_subdomain(value: str) -> bool:
    """True for a valid object name such as a StorageClass or a provisioner."""
    return bool(_DNS_SUBDOMAIN.match(value))


@dataclass(frozen=True)
class RedisAddress:
    """Where a KEDA scaler reads a Redis list or stream; never holds the password."""

    host: str
    port: int
    db: int
    needs_password: bool
    source: str  # where the address came from, for the summary

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def cluster_address(self, namespace: str) -> str:
        """``host:port`` resolvable from any namespace (KEDA's operator runs in its own)."""
        return f"{fqdn(self.host, namespace)}:{self.port}"


def fqdn(host: str, namespace: str) -> str:
    """A short Service name as ``<service>.<namespace>.svc.cluster.local``; FQDNs and IPs as they are."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if "." in host:
        return host
    return f"{host}.{namespace}.{CLUSTER_DOMAIN}"


@dataclass(frozen=True)
class Target:  # pylint: disable=too-many-instance-attributes
    """Where and under which names the configs will run."""

    namespace: str
    queue: str  # the Aspects Celery queue
    queue_is_new: bool  # True when the generator chose DEDICATED_QUEUE
    transport: str
    stream: str  # event bus stream (topic with EVENT_BUS_TOPIC_PREFIX)
    consumer_group: str
    broker: RedisAddress | None
    event_bus_redis: RedisAddress | None
    chi_name: str = "aspects"
    chk_name: str = "aspects"
    cluster_name: str = "aspects"
    storage_class: str | None = None
    storage_provisioner: str | None = None
    image: str = OPENEDX_IMAGE  # the worker image with --format k8s (Tutor: DOCKER_IMAGE_OPENEDX)
    clickhouse_networks: tuple[str, ...] = ()  # networks the ClickHouse users accept connections from


@dataclass(frozen=True)
class GeneratedFile:
    """One generated object or patch."""

    path: str  # relative to --output, e.g. "k8s/ralph/hpa.yaml"
    content: str
    form: str  # K8S or TUTOR
    service: str
    what: str  # one line for the summary
    basis: str  # the sizing explanation behind its numbers
    complete_k8s_object: bool = False  # validated with kubernetes-validate in the tests
    sensitive: bool = False  # holds a generated secret: written 0600, never echoed in the summary
    jinja: bool = False  # a Tutor patch using Tutor's template variables on purpose ({{ DOCKER_IMAGE_OPENEDX }})
    parts: tuple["GeneratedFile", ...] = ()  # what a bundle (the Tutor plugin, a kustomization) was made of


def dump(document: Any) -> str:
    """One YAML document from plain data."""
    return yaml.safe_dump(_plain(document), sort_keys=False, default_flow_style=False, width=120)


def dump_all(documents: Iterable[Any]) -> str:
    """A multi-document YAML stream (a Tutor ``k8s-override`` patch holds several)."""
    return yaml.safe_dump_all(
        [_plain(d) for d in documents], sort_keys=False, default_flow_style=False, width=120
    )


def _plain(value: Any) -> Any:
    """Mappings to dicts and tuples to lists, so ``safe_dump`` accepts them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def python_assignments(statements: Iterable[tuple[str, Any]], header: str) -> str:
    """
    Python source of ``target = value`` statements, values rendered with ``repr``.

    ``target`` is a fixed Python expression chosen by the generator (a setting
    name or a subscript), never operator input.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for target, value in statements:
        lines.append(f"{target} = {value!r}")
    return "\n".join(lines) + "\n"


def labels(name: str) -> dict[str, str]:
    """Standard labels for an object named ``name``; Tutor selects on app.kubernetes.io/name."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}


def metadata(name: str, target: Target, **extra: Any) -> dict[str, Any]:
    """``metadata`` of a namespaced object."""
    return {"name": name, "namespace": target.namespace, "labels": labels(name), **extra}


def without_namespace(document: Mapping[str, Any]) -> dict[str, Any]:
    """An object for Tutor's env, whose kustomization sets every namespace (K8S_NAMESPACE)."""
    return {**document, "metadata": {k: v for k, v in document["metadata"].items() if k != "namespace"}}


_MEMORY_UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}


def memory_mi(quantity: str) -> float:
    """A Kubernetes memory quantity ("512Mi", "1Gi") in MiB."""
    for suffix, factor in _MEMORY_UNITS.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    raise ValueError(f"unsupported memory quantity {quantity!r}")


def resources(requests: Mapping[str, str], limits: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """A container's ``resources``."""
    return {"requests": dict(requests), "limits": dict(limits)}


def hpa(
    name: str,
    target: Target,
    deployment: str,
    min_replicas: int,
    max_replicas: int,
    cpu_percent: int,
    memory_percent: int | None = None,
    behavior: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An ``autoscaling/v2`` HorizontalPodAutoscaler on CPU (and memory) utilisation."""
    metrics = [_utilisation("cpu", cpu_percent)]
    if memory_percent is not None:
        metrics.append(_utilisation("memory", memory_percent))
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "metrics": metrics,
    }
    if behavior:
        spec["behavior"] = dict(behavior)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(name, target),
        "spec": spec,
    }


def _utilisation(resource: str, percent: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": percent}},
    }


#: Scale down slowly (one pod a minute after 5 minutes of low load) so bursty
#: tracking traffic does not make the HPA flap; scale up without delay.
HPA_BEHAVIOR = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 30}]},
    "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
}


def deployment_patch(name: str, target: Target, container: str, **container_fields: Any) -> dict[str, Any]:
    """
    A strategic-merge patch of Deployment ``name``'s container ``container``.

    Partial by design (Tutor's ``k8s-override`` / kustomize patches); only complete
    objects are validated with kubernetes-validate.
    """
    del target  # no namespace: Tutor's kustomization (and the Component's overlay) set it after patching
    return workload_patch("Deployment", name, container, **container_fields)


def workload_patch(kind: str, name: str, container: str, **container_fields: Any) -> dict[str, Any]:
    """
    A strategic-merge patch of a Deployment's or Job's container, without ``metadata.namespace``.

    Kustomize matches a patch by kind, name and namespace; Tutor adds the namespace
    after patching, so a patch naming it would match nothing.
    """
    api = "batch/v1" if kind == "Job" else "apps/v1"
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"containers": [{"name": container, **container_fields}]}}},
    }

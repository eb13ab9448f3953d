"""
Ralph (the LRS) autoscaling: it scales mainly on CPU.

Its Deployment also gets probes and a rolling update: liveness on
``/__lbheartbeat__`` (the process answers), readiness on ``/__heartbeat__``
(its ClickHouse backend answers too: a Ralph that cannot store statements
takes no traffic), and ``RollingUpdate`` with ``maxUnavailable: 0`` instead of
Aspects' ``Recreate``, so the PodDisruptionBudget holds through rollouts.

Kubernetes: an ``autoscaling/v2`` HPA for Deployment ``ralph`` (min >= 2), a
PodDisruptionBudget, and a patch giving the container requests/limits (an HPA
on utilisation needs requests). Tutor: the same HPA, PDB and requests as patches
of the plugin, rendered only while ``RUN_RALPH`` (:func:`.service.tutor_autoscaling`).
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
    hpa,
    metadata,
    resources,
)
from aspects_routing.scaling.sizing import Sizing

DEPLOYMENT = "ralph"
SERVICE = "ralph"
#: The port Aspects runs Ralph on (RALPH_PORT's default; its Deployment declares containerPort 8100).
PORT = 8100
LIVENESS_PATH = "/__lbheartbeat__"
READINESS_PATH = "/__heartbeat__"
#: Ralph's heartbeat asks ClickHouse (clickhouse-connect, 10 s connect timeout): give it that long.
PROBES = {
    "livenessProbe": {"httpGet": {"path": LIVENESS_PATH, "port": PORT}, "initialDelaySeconds": 10,
                      "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
    "readinessProbe": {"httpGet": {"path": READINESS_PATH, "port": PORT}, "periodSeconds": 10,
                       "timeoutSeconds": 10, "failureThreshold": 3},
}
ROLLING_UPDATE = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def ralph_hpa(sizing: Sizing, target: Target) -> dict[str, Any]:
    """HPA on CPU utilisation for Deployment ``ralph``."""
    r = sizing.ralph
    return hpa(DEPLOYMENT, target, DEPLOYMENT, r.min_replicas, r.max_replicas, r.cpu_target_percent,
               behavior=HPA_BEHAVIOR)


def ralph_pdb(sizing: Sizing, target: Target) -> dict[str, Any]:
    """Keep all but one Ralph pod through voluntary disruptions (node drains, upgrades)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(DEPLOYMENT, target),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": DEPLOYMENT}},
        },
    }


def deployment_override(target: Target, **container_fields: Any) -> dict[str, Any]:
    """Patch of Deployment ``ralph``: probes, a rolling update, and ``container_fields``."""
    patch = deployment_patch(DEPLOYMENT, target, "ralph", **PROBES, **container_fields)
    patch["spec"]["strategy"] = dict(ROLLING_UPDATE)
    return patch


def generate(sizing: Sizing, target: Target, forms: tuple[str, ...]) -> list[GeneratedFile]:
    """Ralph's files (its Tutor HPA, PDB and requests come from :func:`.service.tutor_autoscaling`)."""
    r = sizing.ralph
    files = []
    probes = f"liveness {LIVENESS_PATH}, readiness {READINESS_PATH}, RollingUpdate maxUnavailable 0"
    why = (
        "Liveness restarts a Ralph that stops answering; readiness keeps a Ralph whose ClickHouse is away out "
        "of the Service; a rolling update with maxUnavailable 0 replaces Aspects' Recreate, which stops every "
        "pod on each rollout whatever the PodDisruptionBudget says."
    )
    if TUTOR in forms:
        override = deployment_override(target)
        override["metadata"].pop("namespace", None)  # Tutor's kustomization sets it
        files.append(
            GeneratedFile(
                "tutor/patches/k8s-override/ralph-probes.yaml", dump(override), TUTOR, SERVICE,
                f"Tutor patch k8s-override: Deployment ralph {probes}", why,
            )
        )
    if K8S not in forms:
        return files
    return files + [
        GeneratedFile(
            "k8s/ralph/hpa.yaml", dump(ralph_hpa(sizing, target)), K8S, SERVICE,
            f"HPA ralph: {r.min_replicas}-{r.max_replicas} replicas at {r.cpu_target_percent} % CPU",
            r.explanation, complete_k8s_object=True,
        ),
        GeneratedFile(
            "k8s/ralph/pdb.yaml", dump(ralph_pdb(sizing, target)), K8S, SERVICE,
            "PodDisruptionBudget ralph: at most 1 pod unavailable",
            f"With at least {r.min_replicas} replicas one can always be drained.", complete_k8s_object=True,
        ),
        GeneratedFile(
            "k8s/ralph/resources-patch.yaml",
            dump(deployment_override(target, resources=resources(r.requests, r.limits))),
            K8S, SERVICE, f"Patch of Deployment ralph: requests/limits (the HPA's CPU target needs requests), {probes}",
            f"{r.explanation} {why}",
        ),
    ]

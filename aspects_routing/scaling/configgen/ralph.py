"""
Ralph (the LRS) autoscaling: it scales mainly on CPU.

Kubernetes: an ``autoscaling/v2`` HPA for Deployment ``ralph`` (min >= 2), a
PodDisruptionBudget, and a patch giving the container requests/limits (an HPA
on utilisation needs requests). Tutor: a ``POD_AUTOSCALING_EXTRA_SERVICES``
entry for tutor-contrib-pod-autoscaling (see :mod:`.superset`, which adds its
own entries to the same setting; :mod:`.service` merges them into one file).
"""

from __future__ import annotations

from typing import Any

from aspects_routing.scaling.configgen.common import (
    HPA_BEHAVIOR,
    K8S,
    GeneratedFile,
    Target,
    deployment_patch,
    dump,
    hpa,
    metadata,
    pod_autoscaling_entry,
    resources,
)
from aspects_routing.scaling.sizing import Sizing

DEPLOYMENT = "ralph"
SERVICE = "ralph"


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


def pod_autoscaling_entries(sizing: Sizing) -> dict[str, dict[str, Any]]:
    """``POD_AUTOSCALING_EXTRA_SERVICES`` entry for Ralph (CPU only: ``avg_memory`` empty)."""
    r = sizing.ralph
    return {
        DEPLOYMENT: pod_autoscaling_entry(
            requests=r.requests, limits=r.limits, min_replicas=r.min_replicas, max_replicas=r.max_replicas,
            avg_cpu=r.cpu_target_percent, behavior=HPA_BEHAVIOR,
        )
    }


def generate(sizing: Sizing, target: Target, forms: tuple[str, ...]) -> list[GeneratedFile]:
    """Ralph's Kubernetes files (its Tutor entry is merged by the service)."""
    r = sizing.ralph
    if K8S not in forms:
        return []
    return [
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
            dump(deployment_patch(DEPLOYMENT, target, "ralph", resources=resources(r.requests, r.limits))),
            K8S, SERVICE, "Patch of Deployment ralph: requests/limits (the HPA's CPU target needs requests)",
            r.explanation,
        ),
    ]

"""
ClickHouse on the Altinity clickhouse-operator, sized by the model.

A ``ClickHouseKeeperInstallation`` (1 node small, 3 large, one per Kubernetes
node), a ``ClickHouseInstallation`` whose layout, Keeper address and data
volume come from the sizing (volumes provisioned by the operator and retained
when the installation is deleted), optionally a StorageClass that allows
volume expansion, and the Aspects (Tutor) values that point at it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aspects_routing.scaling.configgen.common import (
    K8S,
    TUTOR,
    GeneratedFile,
    Target,
    dump,
    labels,
    metadata,
    resources,
)
from aspects_routing.scaling.sizing import Sizing

SERVICE = "clickhouse"
#: Images matching the ClickHouse release line Aspects is tested with; replace
#: with your DOCKER_IMAGE_CLICKHOUSE.
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:24.8"
KEEPER_IMAGE = "clickhouse/clickhouse-keeper:24.8"
#: The port Keeper serves ZooKeeper clients on, behind the operator's keeper-<chk> Service.
KEEPER_CLIENT_PORT = 2181
#: Tutor's default CLICKHOUSE_ADMIN_USER; its password is read from a Secret, never written here.
ADMIN_USER = "ch_admin"
STORAGE_MANAGEMENT = {"provisioner": "Operator", "reclaimPolicy": "Retain"}
#: Networks the ClickHouse admin user accepts connections from (--clickhouse-networks): the
#: private ranges pod networks are allocated from, and loopback. Narrow them to your cluster's
#: pod CIDR (kubectl cluster-info dump | grep -m1 cluster-cidr); never ::/0.
DEFAULT_NETWORKS = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7,127.0.0.1/32,::1/128"
#: The widest network accepted: anything wider than a /8 (IPv4) or /7 (IPv6) lets in the internet.
MIN_PREFIX = {4: 8, 6: 7}


def parse_networks(value: str) -> tuple[str, ...]:
    """``--clickhouse-networks``: comma-separated CIDRs, none wider than a /8 (IPv4) or /7 (IPv6)."""
    networks = []
    for item in (part.strip() for part in (value or "").split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a CIDR (e.g. 10.42.0.0/16)") from exc
        if network.prefixlen < MIN_PREFIX[network.version]:
            raise ValueError(
                f"{item} admits nearly any address; give your pod network, e.g. 10.42.0.0/16 "
                f"(at least /{MIN_PREFIX[network.version]})"
            )
        networks.append(str(network))
    if not networks:
        raise ValueError("no network given; e.g. --clickhouse-networks 10.42.0.0/16")
    return tuple(networks)


def keeper_service(target: Target) -> str:
    """The Service clickhouse-operator creates in front of the Keeper nodes."""
    return f"keeper-{target.chk_name}"


def admin_secret(target: Target) -> str:
    """Secret (key ``password``) holding the ClickHouse admin password."""
    return f"clickhouse-{target.chi_name}-admin"


def _claim(name: str, gi: int, target: Target) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{gi}Gi"}}}
    if target.storage_class:
        spec["storageClassName"] = target.storage_class
    return {"name": name, **STORAGE_MANAGEMENT, "spec": spec}


def keeper_installation(sizing: Sizing, target: Target) -> dict[str, Any]:
    """ClickHouseKeeperInstallation with hard anti-affinity: one Keeper per node."""
    ch = sizing.clickhouse
    pod_labels = labels(keeper_service(target))
    return {
        "apiVersion": "clickhouse-keeper.altinity.com/v1",
        "kind": "ClickHouseKeeperInstallation",
        "metadata": metadata(target.chk_name, target),
        "spec": {
            "defaults": {
                "storageManagement": dict(STORAGE_MANAGEMENT),
                "templates": {"podTemplate": "keeper", "dataVolumeClaimTemplate": "keeper-data"},
            },
            "configuration": {"clusters": [{"name": "keeper", "layout": {"replicasCount": ch.keeper_nodes}}]},
            "templates": {
                "podTemplates": [
                    {
                        "name": "keeper",
                        "metadata": {"labels": pod_labels},
                        "spec": {
                            "affinity": {
                                "podAntiAffinity": {
                                    "requiredDuringSchedulingIgnoredDuringExecution": [
                                        {
                                            "labelSelector": {"matchLabels": pod_labels},
                                            "topologyKey": "kubernetes.io/hostname",
                                        }
                                    ]
                                }
                            },
                            "containers": [
                                {
                                    "name": "clickhouse-keeper",
                                    "image": KEEPER_IMAGE,
                                    "resources": resources(ch.keeper_requests, ch.keeper_limits),
                                }
                            ],
                        },
                    }
                ],
                "volumeClaimTemplates": [_claim("keeper-data", ch.keeper_volume_gi, target)],
            },
        },
    }


def clickhouse_installation(sizing: Sizing, target: Target) -> dict[str, Any]:
    """ClickHouseInstallation: layout, Keeper address and data volume from the sizing."""
    ch = sizing.clickhouse
    user = ADMIN_USER
    return {
        "apiVersion": "clickhouse.altinity.com/v1",
        "kind": "ClickHouseInstallation",
        "metadata": metadata(target.chi_name, target),
        "spec": {
            "defaults": {
                "storageManagement": dict(STORAGE_MANAGEMENT),
                "templates": {"podTemplate": "clickhouse", "dataVolumeClaimTemplate": "data"},
            },
            "configuration": {
                "zookeeper": {"nodes": [{"host": keeper_service(target), "port": KEEPER_CLIENT_PORT}]},
                "users": {
                    f"{user}/k8s_secret_password": f"{admin_secret(target)}/password",
                    # Only the pod networks reach the admin user (never ::/0).
                    f"{user}/networks/ip": list(target.clickhouse_networks or parse_networks(DEFAULT_NETWORKS)),
                    f"{user}/profile": "default",
                    f"{user}/access_management": 1,
                },
                "clusters": [
                    {
                        "name": target.cluster_name,
                        "layout": {"shardsCount": ch.shards, "replicasCount": ch.replicas},
                    }
                ],
            },
            "templates": {
                "podTemplates": [
                    {
                        "name": "clickhouse",
                        # One ClickHouse server per Kubernetes node: replicas never share a node.
                        "podDistribution": [{"type": "ClickHouseAntiAffinity"}],
                        "spec": {
                            "containers": [
                                {
                                    "name": "clickhouse",
                                    "image": CLICKHOUSE_IMAGE,
                                    "resources": resources(ch.requests, ch.limits),
                                }
                            ]
                        },
                    }
                ],
                "volumeClaimTemplates": [_claim("data", ch.volume_gi, target)],
            },
        },
    }


def storage_class(target: Target) -> dict[str, Any]:
    """A StorageClass that lets the operator grow volumes in place."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": target.storage_class, "labels": labels(target.storage_class)},
        "provisioner": target.storage_provisioner,
        "allowVolumeExpansion": True,
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def aspects_values(target: Target) -> dict[str, Any]:
    """tutor-contrib-aspects values pointing Aspects at the operator's cluster."""
    return {
        "RUN_CLICKHOUSE": False,
        "CLICKHOUSE_HOST": f"clickhouse-{target.chi_name}",
        "CLICKHOUSE_CLUSTER_NAME": target.cluster_name,
        "CLICKHOUSE_CLUSTER_DDL_NODE_HOST": f"chi-{target.chi_name}-{target.cluster_name}-0-0",
        # CLICKHOUSE_ADMIN_USER stays Aspects' own (ch_admin, a generated "unique" value): ADMIN_USER matches it.
    }


def generate(sizing: Sizing, target: Target, forms: tuple[str, ...]) -> list[GeneratedFile]:
    """Every ClickHouse file for ``forms``."""
    ch = sizing.clickhouse
    files: list[GeneratedFile] = []
    if K8S in forms:
        files.append(
            GeneratedFile(
                "k8s/clickhouse/keeper.yaml", dump(keeper_installation(sizing, target)), K8S, SERVICE,
                f"ClickHouseKeeperInstallation {target.chk_name}: {ch.keeper_nodes} Keeper node(s), one per host, "
                f"{ch.keeper_volume_gi} Gi each", f"{sizing.profile} profile ({sizing.profile_reason}).",
            )
        )
        files.append(
            GeneratedFile(
                "k8s/clickhouse/installation.yaml", dump(clickhouse_installation(sizing, target)), K8S, SERVICE,
                f"ClickHouseInstallation {target.chi_name}: cluster {target.cluster_name}, {ch.shards} shard(s) x "
                f"{ch.replicas} replica(s), {ch.volume_gi} Gi data volume each (Operator-provisioned, Retain)",
                ch.explanation,
            )
        )
        if target.storage_class and target.storage_provisioner:
            files.append(
                GeneratedFile(
                    "k8s/clickhouse/storageclass.yaml", dump(storage_class(target)), K8S, SERVICE,
                    f"StorageClass {target.storage_class} ({target.storage_provisioner}) with allowVolumeExpansion",
                    "Volumes grow in place when the projection grows.", complete_k8s_object=True,
                )
            )
    if TUTOR in forms:
        files.append(
            GeneratedFile(
                "tutor/clickhouse-config.yml", dump(aspects_values(target)), TUTOR, SERVICE,
                f"Aspects values: RUN_CLICKHOUSE false, CLICKHOUSE_HOST clickhouse-{target.chi_name}, "
                f"cluster {target.cluster_name}",
                f"Create Secret {admin_secret(target)} (key password) with CLICKHOUSE_ADMIN_PASSWORD first.",
            )
        )
    return files

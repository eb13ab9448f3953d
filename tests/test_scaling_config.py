"""
``aspects_scaling_config``: the generated files are valid for the systems that consume them.

* complete Kubernetes objects: kubernetes-validate, strict, newest Kubernetes it ships;
* ClickHouseInstallation, ClickHouseKeeperInstallation, ScaledObject: jsonschema against
  the operators' CRDs from ``ASPECTS_SCHEMAS_DIR`` (the test fails, never skips, without it),
  made strict the way the API server prunes: an unknown field is an error here;
* Tutor values: the keys and types the consuming plugins read; Python patches are
  executed against the names they run beside (real Celery for the beat schedule).
"""

from __future__ import annotations

import collections
import copy
import io
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from unittest import mock

import jsonschema
import kubernetes_validate
import pytest
import yaml
from celery import Celery
from celery.schedules import crontab
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from aspects_routing.conf import parse
from aspects_routing.scaling import sizing as model
from aspects_routing.scaling.configgen import ConfigOptions, plan
from aspects_routing.scaling.configgen.common import memory_mi
from aspects_routing.scaling.configgen.service import summary
from aspects_routing.scaling.sizing import Measured, size

MEASURED = Measured(
    events_per_second=120.0,
    task_arrival_per_second=120.0,
    mean_task_runtime_seconds=0.2,
    worker_concurrency=4,
    aspects_workers=2,
    rows_per_day=3_000_000.0,
    bytes_per_row=180.0,
    storage_bytes=40 * 1024**3,
    superset_query_p95_seconds=75.0,
    batching_enabled=False,
)

CRDS = {
    "ClickHouseInstallation": "altinity/clickhouseinstallations.clickhouse.altinity.com.crd.yaml",
    "ClickHouseKeeperInstallation": "altinity/clickhousekeeperinstallations.clickhouse-keeper.altinity.com.crd.yaml",
    "ScaledObject": "keda/keda.sh_scaledobjects.crd.yaml",
}


def _files(**options):
    """The plan and its files by path; a bundle's parts (the Tutor plugin's pieces) by their own path.

    Without ``format``, both forms whole: ``--format k8s`` and ``--format tutor`` (``both``
    leaves out of k8s/ what the plugin carries).
    """
    source = options.pop("source", MEASURED)
    forms = [options.pop("format")] if "format" in options else ["k8s", "tutor"]
    files = {}
    for form in forms:
        result = plan(ConfigOptions(format=form, **options), source=source)
        for f in result.files:
            files[f.path] = f
            files.update({part.path: part for part in f.parts})
    return result, files


def _docs(files, suffixes=(".yaml", ".yml")):
    for path, f in files.items():
        if path.startswith("k8s/") and path.endswith(suffixes):
            for doc in yaml.safe_load_all(f.content):
                if "kind" in doc:  # the ASPECTS_ROUTING snippet is settings, not an object
                    yield path, f, doc


# ---------------------------------------------------------------- Kubernetes objects

def _kubernetes_version():
    return kubernetes_validate.latest_version()


@pytest.mark.parametrize("transport", ["celery", "event_bus"])
@pytest.mark.parametrize("profile", ["small", "large"])
def test_complete_kubernetes_objects_validate_strictly(profile, transport):
    _result, files = _files(
        profile=profile, source=replace(MEASURED, transport=transport), storage_class="aspects-ssd=ebs.csi.aws.com"
    )
    version = _kubernetes_version()
    validated = set()
    for path, generated, doc in _docs(files):
        if not generated.complete_k8s_object:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        validated.add(doc["kind"])
    expected = {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "StorageClass"}
    assert expected <= validated, validated


def test_patches_fit_the_deployment_schema():
    """Partial Deployments (patches) merged into a minimal Deployment still validate strictly."""
    _result, files = _files(profile="large")
    version = _kubernetes_version()
    patches = [doc for _path, generated, doc in _docs(files) if doc["kind"] == "Deployment"
               and not generated.complete_k8s_object]
    assert {p["metadata"]["name"] for p in patches} == {"ralph", "superset", "superset-worker", "superset-worker-beat"}
    for patch in patches:
        container = copy.deepcopy(patch["spec"]["template"]["spec"]["containers"][0])
        container["image"] = "example/image:1"
        for var in container.get("env", []):
            if var.get("value") is None:
                var.pop("value", None)  # null deletes Tutor's literal value when merged
        merged = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": patch["metadata"],
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": patch["metadata"]["name"]}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": patch["metadata"]["name"]}},
                    "spec": {"containers": [container]},
                },
            },
        }
        kubernetes_validate.validate(merged, version, strict=True)


# ---------------------------------------------------------------- CRDs

def _schemas_dir() -> Path:
    value = os.environ.get("ASPECTS_SCHEMAS_DIR")
    if not value:
        pytest.fail(
            "ASPECTS_SCHEMAS_DIR is not set: set it to the directory holding the operators' CRDs "
            "(e.g. ASPECTS_SCHEMAS_DIR=../shared/schemas; CI points it at the shared schemas)."
        )
    if not Path(value, "altinity").is_dir() or not Path(value, "keda").is_dir():
        pytest.fail(
            f"ASPECTS_SCHEMAS_DIR={value!r} has no altinity/ and keda/ folders of CRDs: point it at the "
            "folder that holds the Altinity operator's and KEDA's CRD YAML files."
        )
    return Path(value)


def _strict(schema):
    """Reject unknown fields where the API server would prune them (structural schemas)."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _crd_validator(kind: str):
    path = _schemas_dir() / CRDS[kind]
    assert path.is_file(), f"{path} is missing from ASPECTS_SCHEMAS_DIR"
    crd = next(d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "CustomResourceDefinition")
    assert crd["spec"]["names"]["kind"] == kind
    versions = {v["name"]: v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"]}
    return crd["spec"]["group"], versions


def _validate_custom(doc):
    group, versions = _crd_validator(doc["kind"])
    api_group, version = doc["apiVersion"].split("/")
    assert api_group == group
    assert version in versions, f"{doc['kind']} {version} is not served by the CRD ({list(versions)})"
    jsonschema.validate(doc, _strict(versions[version]))


@pytest.mark.parametrize("transport", ["celery", "event_bus"])
@pytest.mark.parametrize("profile", ["small", "large"])
def test_custom_resources_validate_against_the_operators_crds(profile, transport):
    _result, files = _files(profile=profile, source=replace(MEASURED, transport=transport), storage_class="fast")
    kinds = []
    for _path, _generated, doc in _docs(files):
        if doc["kind"] in CRDS:
            _validate_custom(doc)
            kinds.append(doc["kind"])
    assert sorted(kinds) == sorted(["ClickHouseInstallation", "ClickHouseKeeperInstallation", "ScaledObject"])


def test_strict_crd_validation_catches_a_typo():
    """The strict check can fail: a misspelt field is rejected, as the API server would drop it."""
    _result, files = _files(profile="large")
    chi = yaml.safe_load(files["k8s/clickhouse/installation.yaml"].content)
    chi["spec"]["configuration"]["clusters"][0]["layout"]["replicaCount"] = 2
    with pytest.raises(jsonschema.ValidationError):
        _validate_custom(chi)
    bad_name = yaml.safe_load(files["k8s/clickhouse/installation.yaml"].content)
    bad_name["spec"]["configuration"]["clusters"][0]["name"] = "a-cluster-name-too-long"
    with pytest.raises(jsonschema.ValidationError):
        _validate_custom(bad_name)


def test_clickhouse_layout_follows_the_profile():
    _small, files = _files(profile="small")
    large_plan, large = _files(profile="large")
    keeper = yaml.safe_load(files["k8s/clickhouse/keeper.yaml"].content)
    keeper_large = yaml.safe_load(large["k8s/clickhouse/keeper.yaml"].content)
    assert keeper["spec"]["configuration"]["clusters"][0]["layout"]["replicasCount"] == 1
    assert keeper_large["spec"]["configuration"]["clusters"][0]["layout"]["replicasCount"] == 3
    anti = keeper_large["spec"]["templates"]["podTemplates"][0]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == "kubernetes.io/hostname"
    chi = yaml.safe_load(large["k8s/clickhouse/installation.yaml"].content)
    assert chi["spec"]["configuration"]["zookeeper"]["nodes"] == [{"host": "keeper-aspects", "port": 2181}]
    assert chi["spec"]["configuration"]["clusters"][0]["layout"]["replicasCount"] == 2
    claim = chi["spec"]["templates"]["volumeClaimTemplates"][0]
    assert (claim["provisioner"], claim["reclaimPolicy"]) == ("Operator", "Retain")
    assert claim["spec"]["resources"]["requests"]["storage"] == f"{large_plan.sizing.clickhouse.volume_gi}Gi"
    values = yaml.safe_load(large["tutor/clickhouse-config.yml"].content)
    assert values["RUN_CLICKHOUSE"] is False
    assert values["CLICKHOUSE_HOST"] == "clickhouse-aspects"
    assert values["CLICKHOUSE_CLUSTER_DDL_NODE_HOST"] == "chi-aspects-aspects-0-0"


# ---------------------------------------------------------------- workers

def test_worker_consumes_only_the_aspects_queue_and_keda_scales_it():
    result, files = _files(service="workers")
    deployment = yaml.safe_load(files["k8s/workers/deployment.yaml"].content)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    queues = [a for a in args if a.startswith("--queues=")]
    assert queues == ["--queues=edx.lms.core.aspects"]
    scaled = yaml.safe_load(files["k8s/workers/scaledobject.yaml"].content)
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == "edx.lms.core.aspects"
    assert trigger["metadata"]["listLength"] == str(result.sizing.workers.list_length)
    assert scaled["spec"]["minReplicaCount"] == result.sizing.workers.min_replicas
    assert scaled["spec"]["maxReplicaCount"] == result.sizing.workers.max_replicas
    # The snippet is valid ASPECTS_ROUTING for this plugin's own parser.
    snippet = yaml.safe_load(files["settings/lms-aspects-routing.yml"].content)
    parsed = parse(snippet["ASPECTS_ROUTING"])
    assert parsed.problems == () and parsed.queue == "edx.lms.core.aspects"
    assert snippet["EVENT_ROUTING_BACKEND_BATCHING_ENABLED"] is True


@override_settings(ASPECTS_ROUTING={"TRANSPORT": "event_bus"})
def test_event_bus_consumer_scales_on_lag_and_checks_backlog():
    result, files = _files(service="workers", source=replace(MEASURED, transport="event_bus"))
    consumer = yaml.safe_load(files["k8s/workers/event-consumer-deployment.yaml"].content)
    args = consumer["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:4] == ["python", "manage.py", "lms", "consume_events"]
    extra = json.loads(args[args.index("--extra") + 1])
    # The claim threshold follows the measured mean runtime, and the output says so.
    runtime = result.sizing.input("mean_task_runtime_seconds").value
    claim = max(2000, math.ceil(20 * runtime * 1000))
    assert extra == {"consumer_name": "$(POD_NAME)", "check_backlog": True, "claim_msgs_older_than": claim}
    assert f"claim_msgs_older_than {claim} ms" in files["k8s/workers/event-consumer-deployment.yaml"].what
    scaled = yaml.safe_load(files["k8s/workers/event-consumer-scaledobject.yaml"].content)
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "redis-streams"
    # tests/settings sets EVENT_BUS_TOPIC_PREFIX = "test": the stream carries the prefix.
    assert trigger["metadata"]["stream"] == "test-analytics"
    assert trigger["metadata"]["consumerGroup"] == "event_routing_backends"
    assert trigger["metadata"]["lagCount"] == str(result.sizing.workers.lag_count)


def test_tutor_worker_is_a_k8s_deployments_patch_and_settings_patches():
    """The plugin runs the worker itself (tutor-contrib-celery 21/22 take variants from a Python hook only)."""
    result, files = _files(service="workers", format="tutor")
    assert all(path.startswith("tutor/") for path in files)
    plugin = yaml.safe_load(files["tutor/aspects-scaling.yml"].content)
    assert "config" not in plugin  # no CELERY_* values: they would do nothing
    docs = [d for d in yaml.safe_load_all(plugin["patches"]["k8s-deployments"]) if d]
    worker = next(d for d in docs if d["kind"] == "Deployment")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "{{ DOCKER_IMAGE_OPENEDX }}"  # rendered by Tutor
    assert "--queues=edx.lms.core.aspects" in container["args"]
    assert all("namespace" not in d["metadata"] for d in docs)  # Tutor's kustomization sets it
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert scaled["spec"]["triggers"][0]["metadata"]["listLength"] == str(result.sizing.workers.list_length)
    # Tutor renders openedx-common-settings into the LMS and CMS settings, then
    # openedx-lms-common-settings into the LMS's only.
    cms = {"ASPECTS_ROUTING": {}}
    exec(compile(files["tutor/patches/openedx-common-settings.py"].content, "patch", "exec"), cms)  # noqa: S102
    lms = {"ASPECTS_ROUTING": dict(cms["ASPECTS_ROUTING"])}
    exec(compile(files["tutor/patches/openedx-lms-common-settings.py"].content, "patch", "exec"), lms)  # noqa: S102
    assert "QUEUE" not in cms["ASPECTS_ROUTING"]  # the CMS keeps its own high-priority queue
    assert lms["ASPECTS_ROUTING"]["QUEUE"] == "edx.lms.core.aspects"
    assert parse(lms["ASPECTS_ROUTING"]).problems == () and parse(cms["ASPECTS_ROUTING"]).problems == ()
    assert cms["EVENT_ROUTING_BACKEND_BATCH_SIZE"] == result.sizing.batching.batch_size


# ---------------------------------------------------------------- Ralph and pod-autoscaling

POD_AUTOSCALING_TYPES = {
    # tutor-contrib-pod-autoscaling's AUTOSCALING_ATTRS_TYPE (tutorpod_autoscaling/hooks.py)
    "enable_hpa": (bool,),
    "memory_request": (str,),
    "cpu_request": (float, int),
    "memory_limit": (str,),
    "cpu_limit": (float, int),
    "min_replicas": (int,),
    "max_replicas": (int,),
    "avg_cpu": (int,),
    "avg_memory": (str,),
    "enable_vpa": (bool,),
}


def test_pod_autoscaling_entries_switch_off_aspects_own_and_the_plugin_gates_its_hpas():
    """One HPA per Deployment, and only while Aspects runs it (tests/test_tutor_build.py builds it)."""
    result, files = _files(format="tutor", profile="large")
    entries = yaml.safe_load(files["tutor/pod-autoscaling-config.yml"].content)["POD_AUTOSCALING_EXTRA_SERVICES"]
    assert entries == {name: {"enable_hpa": False, "enable_vpa": False}
                       for name in ("ralph", "superset", "superset-worker")}
    for name in entries:
        assert set(entries[name]) <= set(POD_AUTOSCALING_TYPES)
    plugin = yaml.safe_load(files["tutor/aspects-scaling.yml"].content)
    deployments = plugin["patches"]["k8s-deployments"]
    assert "{% if RUN_RALPH %}" in deployments and "{% if RUN_SUPERSET %}" in deployments
    ralph_hpa = next(yaml.safe_load_all(files["tutor/patches/k8s-deployments/ralph.yaml"].content))
    assert ralph_hpa["spec"]["minReplicas"] == result.sizing.ralph.min_replicas >= 2


def test_ralph_hpa_min_two_and_pdb():
    result, files = _files(service="ralph", format="k8s", replicas=1)
    hpa = yaml.safe_load(files["k8s/ralph/hpa.yaml"].content)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "ralph"
    assert hpa["spec"]["minReplicas"] == 2  # --replicas 1 cannot drop Ralph below fault tolerance
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == result.sizing.ralph.cpu_target_percent
    pdb = yaml.safe_load(files["k8s/ralph/pdb.yaml"].content)
    assert pdb["spec"]["maxUnavailable"] == 1


# ---------------------------------------------------------------- Superset

def _superset_config_namespace():
    """The names Aspects' superset_config.py defines before the superset-config patch runs."""

    class CeleryConfig:  # pylint: disable=too-few-public-methods
        BROKER_URL = "redis://superset-redis:6379/3"
        CELERY_RESULT_BACKEND = "redis://superset-redis:6379/4"
        CELERYD_PREFETCH_MULTIPLIER = 1
        CELERYBEAT_SCHEDULE = {"reports.scheduler": {"task": "reports.scheduler", "schedule": crontab(minute="*")}}

    return {
        "CeleryConfig": CeleryConfig,
        "crontab": crontab,
        "REDIS_HOST": "superset-redis",
        "REDIS_PORT": "6379",
        "REDIS_PASSWORD": "",
        "REDIS_RESULTS_DB": "4",
    }


def test_superset_patches_configure_async_queries_and_warmup():
    result, files = _files(service="superset", format="tutor")
    s = result.sizing.superset
    assert s.async_queries and not s.global_async_queries  # p95 75 s > 60 s web timeout; guest tokens
    assert "InvalidSubjectError" in s.global_async_reason
    patch = files["tutor/patches/superset-config.py"]
    assert patch.jinja and "{{ SUPERSET_ADMIN_USERNAME }}" in patch.content
    namespace = _superset_config_namespace()
    # Tutor renders the patch with its config: the admin's name stands in for the template.
    source = patch.content.replace("{{ SUPERSET_ADMIN_USERNAME }}", "aspects-admin")
    # Superset is not installed here (it runs in the superset tier, tests/test_superset_tier.py): the
    # patch's import is given Superset 6.1's FixedExecutor shape.
    namespace["__builtins__"] = __builtins__
    stub = type(sys)("superset.tasks.types")
    stub.FixedExecutor = collections.namedtuple("FixedExecutor", "username")  # Superset 6.1's NamedTuple
    with mock.patch.dict(sys.modules, {"superset": type(sys)("superset"), "superset.tasks": type(sys)("superset.tasks"),
                                       "superset.tasks.types": stub}):
        exec(compile(source, "superset-config", "exec"), namespace)  # noqa: S102
    assert namespace["CACHE_WARMUP_EXECUTORS"] == [stub.FixedExecutor("aspects-admin")]
    schedule = namespace["CeleryConfig"].CELERYBEAT_SCHEDULE
    warmup = schedule["cache-warmup"]
    assert warmup["task"] == "cache-warmup"
    assert warmup["kwargs"]["strategy_name"] == "top_n_dashboards"
    assert isinstance(warmup["schedule"], crontab)
    assert "reports.scheduler" in schedule
    assert "GLOBAL_ASYNC_QUERIES" not in patch.content and "tutor/patches/superset-config-docker.py" not in files
    # Real Celery loads the old upper-case names without refusing a mix, and sees the entry.
    app = Celery("superset", set_as_current=False)
    app.config_from_object(namespace["CeleryConfig"])
    assert "cache-warmup" in app.conf.beat_schedule
    [asset] = [d for d in yaml.safe_load_all(files["tutor/patches/superset-extra-assets.yml"].content) if d]
    assert (asset["_file_name"], asset["database_name"], asset["allow_run_async"]) == (
        "OpenedX_Clickhouse.yaml", "OpenedX Clickhouse", True)
    assert "sqlalchemy_uri" not in asset  # Aspects' create_assets.py sets it from SUPERSET_DATABASES
    assert "14 of the 82" in patch.basis and "create_assets.py clears query_context" in patch.basis
    db = yaml.safe_load(files["tutor/superset-config.yml"].content)
    assert {"SUPERSET_DB_HOST", "SUPERSET_DB_PORT", "SUPERSET_DB_NAME", "SUPERSET_DB_USERNAME"} == set(db)
    assert isinstance(db["SUPERSET_DB_PORT"], int)
    override = list(yaml.safe_load_all(files["tutor/patches/k8s-override.yml"].content))
    assert [d["metadata"]["name"] for d in override] == [
        "superset", "superset-worker", "superset-worker-beat", "superset-job", "superset-worker-job"]
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    for doc in override:
        env = {e["name"]: e for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]}
        extra = {"CELERY_WORKER_EXTRA_ARGS"} if doc["metadata"]["name"] == "superset-worker" else set()
        assert set(env) == {"REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"} | extra
        assert "secretKeyRef" in env["REDIS_PASSWORD"]["valueFrom"]
        assert doc["spec"].get("strategy") == (rolling if doc["metadata"]["name"] in ("superset", "superset-worker") else None)
    [worker] = [d for d in override if d["metadata"]["name"] == "superset-worker"]
    [container] = worker["spec"]["template"]["spec"]["containers"]
    args = {e["name"]: e["value"] for e in container["env"] if "value" in e}["CELERY_WORKER_EXTRA_ARGS"]
    assert args == f"--concurrency={s.worker_concurrency} --max-memory-per-child={s.worker_max_memory_per_child_kib}"


def test_superset_worker_concurrency_fits_the_hpa_memory_target():
    s = size(Measured.nothing(), profile="small").superset
    request = memory_mi(s.resources["superset-worker"]["requests"]["memory"])
    limit = memory_mi(s.resources["superset-worker"]["limits"]["memory"])
    loaded = model.SUPERSET_WORKER_BASE_MI + s.worker_concurrency * model.SUPERSET_WORKER_CHILD_MI
    assert loaded <= request * s.memory_target_percent / 100  # a loaded pod can reach the target...
    assert loaded + model.SUPERSET_WORKER_CHILD_MI > request * s.memory_target_percent / 100  # ...no child to spare
    assert model.SUPERSET_WORKER_BASE_MI + s.worker_concurrency * s.worker_max_memory_per_child_kib / 1024 <= limit
    assert f"--concurrency={s.worker_concurrency}" in s.explanation


def test_superset_hpas_never_for_beat():
    _result, files = _files(service="superset", format="k8s")
    targets = [doc["spec"]["scaleTargetRef"]["name"] for _p, _g, doc in _docs(files)
               if doc["kind"] == "HorizontalPodAutoscaler"]
    assert sorted(targets) == ["superset", "superset-worker"]
    for _p, _g, doc in _docs(files):
        if doc["kind"] == "HorizontalPodAutoscaler":
            assert [m["resource"]["name"] for m in doc["spec"]["metrics"]] == ["cpu", "memory"]


def test_no_async_queries_when_superset_is_fast():
    result, files = _files(service="superset", format="tutor", source=replace(MEASURED, superset_query_p95_seconds=2.0))
    assert not result.sizing.superset.async_queries
    assert "tutor/patches/superset-config-docker.py" not in files
    assert "tutor/patches/superset-extra-assets.yml" not in files
    assert "GLOBAL_ASYNC_QUERIES" not in files["tutor/patches/superset-config.py"].content
    assert "cache-warmup" in files["tutor/patches/superset-config.py"].content


def test_ralph_probes_and_rolling_update():
    _result, files = _files(service="ralph")
    for path in ("tutor/patches/k8s-override/ralph-probes.yaml", "k8s/tutor-patches/ralph-resources-patch.yaml"):
        doc = yaml.safe_load(files[path].content)
        assert doc["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
        [container] = doc["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/__lbheartbeat__", "port": 8100}
        assert container["readinessProbe"]["httpGet"] == {"path": "/__heartbeat__", "port": 8100}
    assert "namespace" not in yaml.safe_load(files["tutor/patches/k8s-override/ralph-probes.yaml"].content)["metadata"]


# ---------------------------------------------------------------- sizing flows into the files

def test_more_events_never_shrink_the_generated_configs():
    previous = None
    for rate in (1, 10, 100, 1000, 5000):
        _result, files = _files(profile="auto", source=Measured.nothing(), events_per_second=rate)
        chi = yaml.safe_load(files["k8s/clickhouse/installation.yaml"].content)
        layout = chi["spec"]["configuration"]["clusters"][0]["layout"]
        volume = int(chi["spec"]["templates"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"][:-2])
        ralph = yaml.safe_load(files["k8s/ralph/hpa.yaml"].content)["spec"]
        scaled = yaml.safe_load(files["k8s/workers/scaledobject.yaml"].content)["spec"]
        current = (
            layout["shardsCount"] * volume, layout["replicasCount"], ralph["minReplicas"], ralph["maxReplicas"],
            scaled["minReplicaCount"], scaled["maxReplicaCount"],
        )
        if previous is not None:
            assert all(c >= p for c, p in zip(current, previous)), (rate, previous, current)
        previous = current
    assert previous[0] > 45 and previous[2] > 2  # the sweep reaches sizes above the floors


def test_summary_states_every_input_and_file_without_secrets():
    text = ""
    for form in ("k8s", "tutor"):
        result, form_files = _files(profile="large", source=Measured.nothing(), format=form)
        text += summary(result, "written under X")
    _result, files = _files(profile="large", source=Measured.nothing())
    for item in result.sizing.inputs:
        assert item.name in text and item.source in text
    for path in files:
        assert path in text
    assert "assumed: nothing measured" in text
    assert "Assumed (not measured, no flag): " in text
    for piece in files.values():  # a generated secret (if any piece holds one) never reaches the summary
        for line in piece.content.splitlines():
            if line.startswith("GLOBAL_ASYNC_QUERIES_JWT_SECRET"):
                assert line.split("=", 1)[1].strip().strip("'") not in text


def test_flags_override_measurements_in_the_summary():
    result, _files_ = _files(events_per_second=500, retention_days=90)
    text = summary(result, "x")
    assert result.sizing.input("events_per_second").value == 500
    assert "flag --events-per-second" in text and "flag --retention-days" in text
    assert result.sizing.input("mean_task_runtime_seconds").source == "measured"


# ---------------------------------------------------------------- the command

def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("aspects_scaling_config", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--services", "all", "--events-per-second", "-5"], "--events-per-second"),
        (["--services", "all", "--events-per-second", "nan"], "--events-per-second"),
        (["--services", "all", "--retention-days", "0"], "--retention-days"),
        (["--services", "all", "--replicas", "0"], "--replicas"),
        (["--services", "clickhouse", "--profile", "small", "--replicas", "3"], "--replicas"),
        (["--services", "all", "--namespace", "Not_A_Namespace"], "--namespace"),
        (["--services", "all", "--storage-class", "Bad Class"], "--storage-class"),
        (["--services", "everything"], "--services"),
        (["--services", "all", "--profile", "medium"], "--profile"),
        (["--services", "all", "--format", "helm"], "--format"),
        (["--services", "all", "--replicas", "3000000000"], "int32"),
        (["--services", "all", "--replicas", "20000"], "sanity cap"),
        (["--services", "all", "--events-per-second", "1e12"], "--events-per-second"),
        (["--services", "all", "--image", "docker.io/overhangio/openedx"], "--image"),
        (["--services", "all", "--image", "Not An Image:1"], "--image"),
        (["--services", "all", "--clickhouse-networks", "::/0"], "--clickhouse-networks"),
        (["--services", "all", "--clickhouse-networks", "0.0.0.0/0"], "--clickhouse-networks"),
        (["--services", "all", "--clickhouse-networks", "10.0.0.0/4"], "--clickhouse-networks"),
        (["--services", "all", "--clickhouse-networks", "pods"], "--clickhouse-networks"),
    ],
)
def test_bad_flags_raise_command_error_and_write_nothing(tmp_path, args, flag):
    out_dir = tmp_path / "out"
    with pytest.raises(CommandError) as caught:
        _run(*args, "--output", str(out_dir))
    assert flag in str(caught.value)
    assert not out_dir.exists()


def test_absurd_rates_name_the_input_and_the_cap():
    with pytest.raises(CommandError) as caught:
        _run("--services", "all", "--events-per-second", "1e12", "--profile", "large")
    message = str(caught.value)
    assert "--events-per-second" in message and ("int32" in message or "sanity cap" in message)


@pytest.mark.parametrize(
    "broker, address, auth",
    [
        ("redis://default:secret@redis:6379/0", "redis.ns1.svc.cluster.local:6379", True),
        ("redis://redis.shared.svc.cluster.local:6380/1", "redis.shared.svc.cluster.local:6380", False),
        ("redis://10.1.2.3:6379/0", "10.1.2.3:6379", False),
    ],
)
def test_keda_reaches_redis_from_its_own_namespace_and_never_holds_the_password(broker, address, auth):
    with override_settings(CELERY_BROKER_URL=broker):
        _result, files = _files(service="workers", format="k8s", namespace="ns1")
    scaled = yaml.safe_load(files["k8s/workers/scaledobject.yaml"].content)
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["metadata"]["address"] == address
    assert ("authenticationRef" in trigger) is auth
    assert ("k8s/workers/trigger-authentication.yaml" in files) is auth
    if auth:
        ta = yaml.safe_load(files["k8s/workers/trigger-authentication.yaml"].content)
        assert ta["metadata"]["name"] == trigger["authenticationRef"]["name"]
        assert ta["spec"]["secretTargetRef"][0]["parameter"] == "password"
    assert all("secret@" not in f.content and ":secret" not in f.content for f in files.values())


def test_worker_image_flag_and_clickhouse_networks():
    _result, files = _files(service="workers,clickhouse", format="k8s", image="registry.example.com/edx@sha256:"
                            + "a" * 64, clickhouse_networks="10.42.0.0/16, fd00:42::/56")
    deployment = yaml.safe_load(files["k8s/workers/deployment.yaml"].content)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].startswith("registry.example.com/edx@")
    chi = yaml.safe_load(files["k8s/clickhouse/installation.yaml"].content)
    assert chi["spec"]["configuration"]["users"]["ch_admin/networks/ip"] == ["10.42.0.0/16", "fd00:42::/56"]
    _result, files = _files(service="clickhouse", format="k8s")
    default = yaml.safe_load(files["k8s/clickhouse/installation.yaml"].content)
    assert "::/0" not in default["spec"]["configuration"]["users"]["ch_admin/networks/ip"]


def test_k8s_tree_is_a_kustomization_of_objects_and_a_component_of_patches():
    _result, files = _files(format="k8s", profile="large")
    kustomization = yaml.safe_load(files["k8s/kustomization.yaml"].content)
    listed = {f"k8s/{path}" for path in kustomization["resources"]}
    assert listed == {p for p in files if p.startswith("k8s/") and not p.startswith("k8s/tutor-patches/")
                      and not p.endswith("kustomization.yaml")}
    component = yaml.safe_load(files["k8s/tutor-patches/kustomization.yaml"].content)
    assert component["kind"] == "Component"
    patched = {yaml.safe_load(files[f"k8s/tutor-patches/{p['path']}"].content)["metadata"]["name"]
               for p in component["patches"]}
    assert patched == {"ralph", "superset", "superset-worker", "superset-worker-beat", "superset-job",
                       "superset-worker-job"}
    for path in listed:
        for doc in yaml.safe_load_all(files[path].content):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path
    assert not any(p.startswith("k8s/") and p.endswith((".yml", ".py", ".json")) for p in files)


@override_settings(ASPECTS_ROUTING={"CLICKHOUSE_CLUSTER": "aspects_cluster_name"})
def test_cluster_name_the_operator_would_reject_is_a_command_error(tmp_path):
    from aspects_routing.conf import clear_config_cache  # pylint: disable=import-outside-toplevel

    clear_config_cache()
    try:
        with pytest.raises(CommandError, match="CLICKHOUSE_CLUSTER"):
            _run("--services", "clickhouse", "--profile", "small", "--output", str(tmp_path / "out"))
        assert not (tmp_path / "out").exists()
    finally:
        clear_config_cache()


def test_output_dir_atomic_no_overwrite_without_force(tmp_path, caplog):
    caplog.set_level("DEBUG")
    out_dir = tmp_path / "out"
    stdout, _err = _run("--services", "all", "--profile", "large", "--output", str(out_dir))
    first = _tree(out_dir)
    assert "k8s/clickhouse/installation.yaml" in first and "tutor/aspects-scaling.yml" in first
    assert not [name for name in first if name.endswith(".tmp")]
    assert "written under" in stdout and "Sizing inputs:" in stdout
    # No generated secret any more (GLOBAL_ASYNC_QUERIES and its JWT secret are gone): a plain file.
    assert "JWT_SECRET" not in (out_dir / "tutor/aspects-scaling.yml").read_text()

    with pytest.raises(CommandError, match="--force"):
        _run("--services", "all", "--profile", "large", "--output", str(out_dir))
    assert _tree(out_dir) == first  # nothing was written

    stdout2, _err = _run("--services", "all", "--profile", "large", "--output", str(out_dir), "--force")
    second = _tree(out_dir)
    assert set(second) == set(first)
    assert second == first and "written under" in stdout2  # same inputs, same files (nothing random)


def test_stdout_output_has_files_and_summary_on_stderr():
    stdout, stderr = _run("--services", "ralph", "--profile", "small", "--format", "k8s")
    assert "# ==> k8s/ralph/hpa.yaml <==" in stdout
    assert "# ==> k8s/kustomization.yaml <==" in stdout
    assert "Sizing inputs:" in stderr and "Sizing inputs:" not in stdout
    hpa_text = stdout.split("# ==> k8s/ralph/hpa.yaml <==\n", 1)[1].split("# ==>", 1)[0]
    assert yaml.safe_load(hpa_text)["kind"] == "HorizontalPodAutoscaler"


# ---------------------------------------------------------------- measurements

# The test LMS's ClickHouse (http://clickhouse:8123) does not resolve here: without it, every source
# answers or is skipped, so nothing falls back (tests/test_scaling_config_inputs.py covers the fallback line).
@override_settings(EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG={})
def test_auto_profile_sizes_from_the_scaling_reports_measurements():
    """No injected measurement: the report's collect_measured runs against the test LMS."""
    result = plan(ConfigOptions(service="workers", format="k8s"))
    assert result.notes[0] == "Measured with the scaling report's collectors."
    # The test LMS sets no EVENT_ROUTING_BACKEND_BATCHING_ENABLED override; event-routing-backends'
    # plugin settings default it to False, and the report reads it.
    assert result.sizing.input("batching_enabled").source == "configured: EVENT_ROUTING_BACKEND_BATCHING_ENABLED"
    assert result.sizing.input("aspects_workers").source == "measured"


def test_failed_measurement_falls_back_without_leaking_the_error():
    def broken():
        raise ConnectionError("redis://aspects:hunter2-secret@redis:6379/0 refused")

    result = plan(ConfigOptions(service="workers", format="k8s"), source=broken)
    text = summary(result, "x")
    assert "measurement failed (ConnectionError)" in text
    assert "hunter2" not in text
    assert result.sizing.input("events_per_second").source.startswith("assumed: ")


def test_fixed_profiles_do_not_measure():
    def must_not_run():
        raise AssertionError("a fixed profile must not measure")

    result = plan(ConfigOptions(service="workers", format="k8s", profile="small"), source=must_not_run)
    assert result.notes[0].startswith("--profile small: nothing measured")


def test_stdout_output_prints_no_secret():
    stdout, stderr = _run("--services", "superset", "--profile", "large", "--format", "tutor")
    assert "holds a generated secret" not in stderr
    assert "GLOBAL_ASYNC_QUERIES_JWT_SECRET" not in stdout and "allow_run_async: true" in stdout

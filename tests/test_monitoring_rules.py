"""
``aspects_scaling_config --services monitoring``: the generated rules, dashboards and scrape
configs are accepted by the real tools.

* ``promtool check rules`` on the plain rules file and on the PrometheusRule's groups;
  ``promtool check config`` on a Prometheus config made of the generated scrape entry;
* ``promtool test rules``: every alert fires on synthetic series built to trigger it, stays
  quiet on a neighbour built not to (and before its ``for`` has passed);
* the ConfigMap and the Service validate strictly with kubernetes-validate; the
  PrometheusRule and ServiceMonitor against prometheus-operator's models generated from its
  CRDs (cloudcoil-models-prometheus-operator, pydantic), made strict by a round trip: a field
  the model does not know is dropped by it, so the round trip differs (as the API server
  would prune it); the PrometheusRule's rules also through promtool;
* the token is never inline: the files name a Secret or a file, never a value.

promtool comes from Debian's ``prometheus`` package (``apt-get install prometheus``).
"""

from __future__ import annotations

import json
import re
import subprocess

import kubernetes_validate
import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from aspects_routing.scaling.configgen import ConfigOptions, plan
from aspects_routing.scaling.configgen import monitoring as mon
from tests.tiers import require_binary

HOW = "apt-get install prometheus (Debian's package has prometheus and promtool)"


@pytest.fixture(scope="module")
def promtool():
    return require_binary("promtool", HOW)


def _files(**options):
    result = plan(ConfigOptions(service="monitoring", **options))
    return {f.path: f for f in result.files}


def _run(*args, cwd=None):
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)
    assert out.returncode == 0, f"{' '.join(map(str, args))} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


RULES = "monitoring/prometheus/aspects-routing.rules.yml"


def test_rules_pass_promtool_check_and_the_prometheusrule_has_the_same_groups(promtool, tmp_path):
    files = _files()
    plain = tmp_path / "rules.yml"
    plain.write_text(files[RULES].content)
    out = _run(promtool, "check", "rules", str(plain))
    assert "SUCCESS" in out
    rule = yaml.safe_load(files["k8s/monitoring/prometheusrule.yaml"].content)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(files[RULES].content)["groups"]
    from_crd = tmp_path / "from-prometheusrule.yml"
    from_crd.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    assert "SUCCESS" in _run(promtool, "check", "rules", str(from_crd))


def test_alerts_follow_the_mixin_conventions():
    groups = yaml.safe_load(_files()[RULES].content)["groups"]
    records = [r for g in groups for r in g["rules"] if "record" in r]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    assert all(re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", r["record"]) for r in records)
    assert {a["alert"] for a in alerts} == set(ALERT_CASES)
    for alert in alerts:
        assert re.fullmatch(r"Aspects[A-Za-z]+", alert["alert"])
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url", "dashboard_url"}
        assert "Fix:" in alert["annotations"]["description"] or "check" in alert["annotations"]["description"]


def test_flags_set_the_thresholds():
    groups = yaml.safe_load(_files(queue_wait_slo=12.5, xapi_lag_threshold=900)[RULES].content)["groups"]
    exprs = {r["alert"]: r["expr"] for g in groups for r in g["rules"] if "alert" in r}
    assert exprs["AspectsQueueWaitHigh"].endswith("> 12.5")
    assert exprs["AspectsXapiLagHigh"].endswith("> 900")
    default = yaml.safe_load(_files()[RULES].content)["groups"]
    exprs = {r["alert"]: r["expr"] for g in default for r in g["rules"] if "alert" in r}
    assert exprs["AspectsQueueWaitHigh"].endswith("> 30")  # sizing.TARGET_QUEUE_WAIT_SECONDS


@pytest.mark.parametrize("flag", ["--queue-wait-slo", "--xapi-lag-threshold"])
def test_bad_threshold_is_a_command_error(flag, tmp_path):
    with pytest.raises(CommandError, match=flag):
        call_command("aspects_scaling_config", "--services", "monitoring", flag, "0", "--output", str(tmp_path))
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- every alert, on synthetic series

SLOW, FAST = "edx.lms.core.aspects", "edx.lms.core.aspects_bulk"
TASK, OTHER = "event_routing_backends.tasks.dispatch_event", "platform_plugin_aspects.tasks.dump_data_to_clickhouse"


def _s(name: str, labels: dict, values: str) -> dict:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _buckets(name, labels, per_bucket):
    """A histogram's cumulative buckets growing by ``per_bucket[le]`` per minute."""
    total = 0
    series = []
    for le, step in per_bucket:
        total += step
        series.append(_s(f"{name}_bucket", {**labels, "le": le}, f"0+{total}x60"))
    return series


#: alert -> (input series, labels of the series that must fire; every other series stays quiet).
ALERT_CASES = {
    "AspectsQueueWaitHigh": (
        _buckets("aspects_task_queue_wait_seconds", {"task": TASK, "queue": SLOW},
                 [("10.0", 0), ("60.0", 10), ("+Inf", 0)])
        + _buckets("aspects_task_queue_wait_seconds", {"task": TASK, "queue": FAST},
                   [("10.0", 10), ("60.0", 0), ("+Inf", 0)]),
        [{"queue": SLOW}],
    ),
    "AspectsQueueBacklogGrowing": (
        [
            _s("aspects_queue_depth", {"queue": SLOW}, "0+100x60"),  # grows 100 a minute
            _s("aspects_tasks_succeeded_total", {"task": TASK, "queue": SLOW}, "0+60x60"),  # 1 a second
            _s("aspects_queue_depth", {"queue": FAST}, "1000+0x60"),  # long drain, but not growing
            _s("aspects_tasks_succeeded_total", {"task": TASK, "queue": FAST}, "0+60x60"),
        ],
        [{"queue": SLOW}],
    ),
    "AspectsQueueNoConsumer": (
        [
            _s("aspects_queue_depth", {"queue": SLOW}, "50+0x60"),  # nothing ever started there
            _s("aspects_queue_depth", {"queue": FAST}, "50+0x60"),
            _s("aspects_tasks_started_total", {"task": TASK, "queue": FAST}, "0+60x60"),
            _s("aspects_queue_depth", {"queue": "edx.lms.core.empty"}, "0+0x60"),
        ],
        [{"queue": SLOW}],
    ),
    "AspectsTaskFailureRateHigh": (
        [
            _s("aspects_tasks_succeeded_total", {"task": TASK, "queue": SLOW}, "0+60x60"),
            _s("aspects_tasks_failed_total", {"task": TASK, "queue": SLOW}, "0+30x60"),  # a third fails
            _s("aspects_tasks_succeeded_total", {"task": OTHER, "queue": SLOW}, "0+600x60"),
            _s("aspects_tasks_failed_total", {"task": OTHER, "queue": SLOW}, "0+6x60"),  # 1 %
            _s("aspects_tasks_succeeded_total", {"task": "rare", "queue": SLOW}, "0+1x60"),
            _s("aspects_tasks_failed_total", {"task": "rare", "queue": SLOW}, "0+0.5x60"),  # too few to mean much
        ],
        [{"task": TASK, "queue": SLOW}],
    ),
    "AspectsTaskRetryRateHigh": (
        [
            _s("aspects_tasks_started_total", {"task": TASK, "queue": SLOW}, "0+60x60"),
            _s("aspects_tasks_retried_total", {"task": TASK, "queue": SLOW}, "0+30x60"),
            _s("aspects_tasks_started_total", {"task": OTHER, "queue": SLOW}, "0+60x60"),
            _s("aspects_tasks_retried_total", {"task": OTHER, "queue": SLOW}, "0+1x60"),
        ],
        [{"task": TASK, "queue": SLOW}],
    ),
    "AspectsEventBusLagGrowing": (
        [
            _s("aspects_event_bus_lag", {"stream": "prod-analytics", "group": "behind"}, "0+50x60"),
            _s("aspects_event_bus_lag", {"stream": "prod-analytics", "group": "steady"}, "500+0x60"),
        ],
        [{"stream": "prod-analytics", "group": "behind"}],
    ),
    "AspectsEventBusEntriesStalled": (
        [
            _s(mon.EVENT_BUS_STALLED, {"stream": "prod-analytics", "group": "stuck"}, "3+0x60"),
            _s(mon.EVENT_BUS_STALLED, {"stream": "prod-analytics", "group": "fine"}, "0+0x60"),
        ],
        [{"stream": "prod-analytics", "group": "stuck"}],
    ),
    "AspectsEventBusDown": (
        [_s(mon.EVENT_BUS_UP, {"instance": "lms-1"}, "0+0x60"), _s(mon.EVENT_BUS_UP, {"instance": "lms-2"}, "1+0x60")],
        [{"instance": "lms-1"}],
    ),
    "AspectsMetricsStoreDown": (
        [
            _s("aspects_metrics_store_up", {"instance": "lms-1"}, "0+0x60"),
            _s("aspects_metrics_store_up", {"instance": "lms-2"}, "1+0x60"),
        ],
        [{"instance": "lms-1"}],
    ),
    "AspectsClickHouseDown": (
        [
            _s("aspects_clickhouse_up", {"instance": "lms-1"}, "0+0x60"),
            _s("aspects_clickhouse_up", {"instance": "lms-2"}, "1+0x60"),
        ],
        [{"instance": "lms-1"}],
    ),
    "AspectsXapiLagHigh": (
        [
            _s("aspects_xapi_lag_seconds", {"database": "xapi", "table": "stale"}, "7200+60x60"),
            _s("aspects_xapi_lag_seconds", {"database": "xapi", "table": "fresh"}, "5+0x60"),
        ],
        [{"database": "xapi", "table": "stale"}],
    ),
    "AspectsMetricsDropped": (
        # The same cluster-wide counter from two pods: one alert, not two.
        [
            _s("aspects_metrics_dropped_total", {"instance": "lms-1"}, "0 0 0 0 0 5+0x55"),
            _s("aspects_metrics_dropped_total", {"instance": "lms-2"}, "0 0 0 0 0 5+0x55"),
        ],
        [{}],
    ),
}


def _expected_annotations(rule: dict, labels: dict) -> dict:
    def fill(text):
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)

    return {k: fill(v) for k, v in rule["annotations"].items()}


def _unit_tests(rules: dict) -> dict:
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = []
    for name, (series, firing) in ALERT_CASES.items():
        rule = by_name[name]
        expected = [
            {"exp_labels": {**labels, "severity": rule["labels"]["severity"]},
             "exp_annotations": _expected_annotations(rule, labels)}
            for labels in firing
        ]
        # 30 min in, every `for` has passed; an alert without one is checked right after the drop.
        checks = [{"eval_time": "30m" if rule.get("for") else "10m", "alertname": name, "exp_alerts": expected}]
        if rule.get("for"):
            # True from the first minutes on, but not for long enough yet: pending, not firing.
            checks.append({"eval_time": "4m", "alertname": name, "exp_alerts": []})
        else:
            # The drop is over: quiet again once it leaves the window.
            checks.append({"eval_time": "45m", "alertname": name, "exp_alerts": []})
        tests.append({"name": name, "interval": "1m", "input_series": series, "alert_rule_test": checks})
    return {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}


def test_every_alert_fires_when_it_should_and_stays_quiet_otherwise(promtool, tmp_path):
    content = _files()[RULES].content
    (tmp_path / "rules.yml").write_text(content)
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(_unit_tests(yaml.safe_load(content)), sort_keys=False))
    out = _run(promtool, "test", "rules", "tests.yml", cwd=tmp_path)
    assert "SUCCESS" in out


def test_promtool_test_catches_a_wrong_expectation(promtool, tmp_path):
    """The harness can fail: expecting the quiet queue to fire is reported."""
    content = _files()[RULES].content
    (tmp_path / "rules.yml").write_text(content)
    tests = _unit_tests(yaml.safe_load(content))
    case = next(t for t in tests["tests"] if t["name"] == "AspectsQueueNoConsumer")
    case["alert_rule_test"][0]["exp_alerts"][0]["exp_labels"]["queue"] = FAST
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    out = subprocess.run([promtool, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode != 0 and "AspectsQueueNoConsumer" in out.stdout + out.stderr


# ---------------------------------------------------------------- scrape configs and Kubernetes objects


def test_scrape_config_passes_promtool_and_reads_the_token_from_a_file(promtool, tmp_path):
    files = _files()
    scrape = yaml.safe_load(files["monitoring/prometheus/scrape-config.yml"].content)
    (job,) = scrape["scrape_configs"]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": mon.TOKEN_FILE}
    assert job["metrics_path"] == "/aspects-routing/metrics"
    token = tmp_path / "token"
    token.write_text("not-checked-here\n")
    job["authorization"]["credentials_file"] = str(token)  # promtool checks that the file exists
    (tmp_path / "rules.yml").write_text(files[RULES].content)
    config = {"global": {"evaluation_interval": "30s"}, "rule_files": ["rules.yml"], **scrape}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    assert "SUCCESS" in _run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)


def test_kubernetes_objects(tmp_path):
    files = _files(namespace="analytics")
    version = kubernetes_validate.latest_version()
    for path in ("k8s/monitoring/service.yaml", "k8s/monitoring/grafana-dashboards.yaml"):
        assert files[path].complete_k8s_object
        kubernetes_validate.validate(yaml.safe_load(files[path].content), version, strict=True)

    configmap = yaml.safe_load(files["k8s/monitoring/grafana-dashboards.yaml"].content)
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "analytics"
    for name, text in configmap["data"].items():
        assert json.loads(text) == json.loads(files[f"monitoring/grafana/{name}"].content)

    service = yaml.safe_load(files["k8s/monitoring/service.yaml"].content)
    monitor = yaml.safe_load(files["k8s/monitoring/servicemonitor.yaml"].content)
    # The ServiceMonitor selects the Service, names its port, and takes the token from a Secret.
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "ServiceMonitor"
    assert set(monitor["spec"]) == {"jobLabel", "selector", "namespaceSelector", "endpoints"}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["analytics"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert set(endpoint) == {"port", "path", "interval", "scheme", "authorization"}
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["authorization"] == {
        "type": "Bearer", "credentials": {"name": mon.TOKEN_SECRET, "key": mon.TOKEN_KEY}
    }
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "lms"}  # Tutor's LMS pods


def _validate_operator_object(doc):
    """Validate against prometheus-operator's CRD-generated model; unknown fields fail (round trip)."""
    from cloudcoil.models.prometheus_operator import v1  # pylint: disable=import-outside-toplevel

    model = {"PrometheusRule": v1.PrometheusRule, "ServiceMonitor": v1.ServiceMonitor}[doc["kind"]]
    parsed = model.model_validate(doc)
    assert parsed.model_dump(by_alias=True, exclude_unset=True, mode="json") == doc, "a field the CRD does not have"


def test_operator_objects_validate_against_the_crd_models():
    files = _files()
    for path in ("k8s/monitoring/prometheusrule.yaml", "k8s/monitoring/servicemonitor.yaml"):
        _validate_operator_object(yaml.safe_load(files[path].content))


def test_operator_validation_catches_a_typo_and_a_bad_value():
    import pydantic  # pylint: disable=import-outside-toplevel

    monitor = yaml.safe_load(_files()["k8s/monitoring/servicemonitor.yaml"].content)
    typo = json.loads(json.dumps(monitor))
    typo["spec"]["endpoints"][0]["authorisation"] = typo["spec"]["endpoints"][0].pop("authorization")
    with pytest.raises(AssertionError, match="a field the CRD does not have"):
        _validate_operator_object(typo)
    bad = json.loads(json.dumps(monitor))
    bad["spec"]["endpoints"][0]["interval"] = "every thirty seconds"
    with pytest.raises(pydantic.ValidationError):
        _validate_operator_object(bad)


def test_dashboards_use_a_datasource_variable_and_recorded_series():
    files = _files()
    for name in ("aspects-pipeline-overview.json", "aspects-task-drilldown.json"):
        board = json.loads(files[f"monitoring/grafana/{name}"].content)
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"]
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_no_token_value_anywhere(settings, tmp_path):
    secret = "a-real-metrics-token-value-1234"
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "METRICS_TOKEN": secret}
    call_command("aspects_scaling_config", "--services", "monitoring", "--output", str(tmp_path))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len([p for p in written if "monitoring" in p.parts]) == 8
    assert not [p for p in written if secret in p.read_text()]


def test_kustomize_builds_the_k8s_tree_with_the_monitoring_objects(tmp_path):
    kubectl = require_binary("kubectl", "install kubectl (it has kustomize built in)")
    call_command("aspects_scaling_config", "--services", "monitoring", "--format", "k8s", "--output", str(tmp_path))
    out = _run(kubectl, "kustomize", str(tmp_path / "k8s"))
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(out) if doc)
    assert kinds == ["ConfigMap", "PrometheusRule", "Service", "ServiceMonitor"]


def test_format_tutor_writes_the_plain_files_only():
    files = _files(format="tutor")
    assert files and not [p for p in files if p.startswith("k8s/")]

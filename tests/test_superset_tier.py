"""
The generated Superset settings on real Superset 6.1 (the ``superset`` tier:
``make superset-env``), loading the superset_config.py that real Tutor 21 with
tutor-contrib-aspects 6.1.0 renders with the generated plugin (the ``tutor21``
tier: ``make tutor-env``), on MariaDB and a private Redis.

One module-scoped stack: the plugin for each profile rendered by ``tutor config
save`` in one Tutor root, a uniquely named MariaDB database, ``superset db
upgrade``, ``superset init`` and ``superset fab create-admin`` as Aspects' init
job runs them, the Aspects database asset imported with Aspects' own importer,
then gunicorn and a Celery worker started with the rendered settings.

ClickHouse: there is no ClickHouse server on this machine, so the "OpenedX
Clickhouse" database asset points at the MariaDB test database instead (Aspects
sets its URI from SUPERSET_DATABASES at import in the same way); the async flag,
guest tokens, the results backend and the warm-up do not depend on the engine.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml
from port_for import get_port

from aspects_routing.scaling.configgen import superset as superset_gen
from aspects_routing.scaling.configgen.service import ConfigOptions, plan
from aspects_routing.scaling.sizing import Measured
from tests.conftest import stop_process_group
from tests.tiers import ROOT, missing, require, require_binary

PROFILES = ("small", "large")
PLUGIN = "tutor/aspects-scaling.yml"
PYTHONPATH_DIR = "env/plugins/aspects/apps/superset/pythonpath"
DRIVER = ROOT / "tests" / "superset_tier_driver.py"
CONFIG = ROOT / "tests" / "superset_tier_config.py"
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}


def run(args, env=None, timeout=600, cwd=None) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, timeout=timeout, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise AssertionError(f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return done


def last_json(done: subprocess.CompletedProcess) -> dict:
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s")


@dataclass
class Rendered:
    """One profile's plugin as Tutor rendered it."""

    profile: str
    plugin: dict
    pythonpath: Path  # a copy of Tutor's rendered pythonpath dir
    override: list  # the documents of env/k8s/override.yml
    shipped_assets: Path  # tutor-contrib-aspects' assets as Tutor renders them into the image build


@dataclass
class Stack:
    superset: Path
    tmp: Path
    redis_port: int
    database: str
    admin: str
    rendered: dict = field(default_factory=dict)
    setup: dict = field(default_factory=dict)
    processes: list = field(default_factory=list)
    web_port: int = 0  # the running web server's: Superset derives the guest tokens' audience from it

    @property
    def data_uri(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:3306/{self.database}"

    def env(self, profile: str, web_port: int | None = None) -> dict:
        """The variables Aspects' Superset containers get (k8s-deployments), for this machine."""
        rendered = self.rendered[profile]
        return {
            "PATH": f"{self.superset / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.tmp),
            "SUPERSET_HOME": str(self.tmp / "superset-home"),
            "SUPERSET_CONFIG_PATH": str(CONFIG),
            "ASPECTS_RENDERED_SUPERSET_CONFIG": str(rendered.pythonpath / "superset_config.py"),
            "ASPECTS_TIER_WEBDRIVER_BASEURL": f"http://127.0.0.1:{self.web_port if web_port is None else web_port}/",
            "PYTHONPATH": str(rendered.pythonpath),
            "SECRET_KEY": "tier-" + "k" * 48,
            # Aspects' image has mysqlclient; pymysql needs no compiler here.
            "DATABASE_DIALECT": "mysql+pymysql",
            "DATABASE_USER": "root",
            "DATABASE_PASSWORD": "",
            "DATABASE_HOST": "127.0.0.1",
            "DATABASE_PORT": "3306",
            "DATABASE_DB": self.database,
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(self.redis_port),
            "OPENEDX_LMS_ROOT_URL": "http://lms.invalid",
            "OAUTH2_CLIENT_ID": "tier",
            "OAUTH2_CLIENT_SECRET": "tier-secret",
            "OAUTH2_ACCESS_TOKEN_PATH": "/oauth2/access_token",
            "OAUTH2_AUTHORIZE_PATH": "/oauth2/authorize",
            "SUPERSET_ENV": "production",
            "FLASK_DEBUG": "0",
        }

    def driver(self, profile: str, *args, timeout=300) -> dict:
        return last_json(run([self.superset / "bin/python", DRIVER, *map(str, args)], env=self.env(profile), timeout=timeout))

    def start(self, name: str, args, env) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # pylint: disable=consider-using-with
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp,  # pylint: disable=consider-using-with
                                start_new_session=True)
        self.processes.append((proc, log))
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop(self, proc: subprocess.Popen) -> None:
        stop_process_group(proc, timeout=30)


def mariadb(statement: str, superset: Path) -> None:
    code = (
        "import pymysql,sys; c=pymysql.connect(host='127.0.0.1',port=3306,user='root',password='');"
        "c.cursor().execute(sys.argv[1]); c.commit()"
    )
    run([superset / "bin/python", "-c", code, statement], timeout=60)


def render(tutor: Path, tutor_root: Path, plugins_root: Path, profile: str, copy_to: Path) -> Rendered:
    """The plugin generated for ``profile``, enabled in Tutor, rendered by ``tutor config save``."""
    result = plan(ConfigOptions(service="superset,ralph", format="tutor", profile=profile), source=Measured.nothing())
    files = {f.path: f for f in result.files}
    assert PLUGIN in files, f"the generator wrote no {PLUGIN}: {sorted(files)}"
    plugins_root.mkdir(exist_ok=True)
    (plugins_root / "aspects-scaling.yml").write_text(files[PLUGIN].content)
    env = {**os.environ, "TUTOR_ROOT": str(tutor_root), "TUTOR_PLUGINS_ROOT": str(plugins_root)}
    run([tutor / "bin/tutor", "plugins", "enable", "aspects", "aspects-scaling"], env=env, timeout=120)
    # Aspects 6.1 runs Ralph only on request (RUN_RALPH); the Ralph patches render when it does.
    run([tutor / "bin/tutor", "config", "save", "--set", "RUN_RALPH=true"], env=env, timeout=120)
    copy_to.mkdir(parents=True)
    run(["cp", "-r", f"{tutor_root / PYTHONPATH_DIR}/.", str(copy_to)])
    # Aspects' image builds /app/localization at build time (compile_translations.py): point the
    # rendered module at a copy here (empty translations; the tier shows no translated asset).
    localization = copy_to.parent / f"localization-{profile}"
    localization.mkdir()
    (localization / "locale.yaml").write_text("{}\n")
    build = tutor_root / "env/plugins/aspects/build/aspects-superset"
    run(["cp", str(build / "localization/datasets_strings.yaml"), str(localization)])
    module = copy_to / "openedx/localization.py"
    module.write_text(module.read_text().replace('"/app/localization/', f'"{localization}/'))
    override = [d for d in yaml.safe_load_all((tutor_root / "env/k8s/override.yml").read_text()) if d]
    return Rendered(profile, yaml.safe_load(files[PLUGIN].content), copy_to, override,
                    build / "openedx-assets/assets")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    superset = require("superset", "bin/superset")
    tutor = require("tutor21", "bin/tutor")
    require_binary("redis-server", "apt-get install redis-server")
    tmp = tmp_path_factory.mktemp("superset-tier")
    (tmp / "superset-home").mkdir()
    tutor_root, plugins_root = tmp / "tutor-root", tmp / "tutor-plugins"
    rendered = {p: render(tutor, tutor_root, plugins_root, p, tmp / f"pythonpath-{p}") for p in PROFILES}
    env = {**os.environ, "TUTOR_ROOT": str(tutor_root), "TUTOR_PLUGINS_ROOT": str(plugins_root)}
    admin = run([tutor / "bin/tutor", "config", "printvalue", "SUPERSET_ADMIN_USERNAME"], env=env).stdout.strip()

    redis_port = get_port(None)
    redis = subprocess.Popen(  # pylint: disable=consider-using-with
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    database = f"aspects_superset_tier_{uuid.uuid4().hex[:12]}"
    try:
        mariadb(f"CREATE DATABASE {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", superset)
    except AssertionError as exc:
        redis.terminate()
        redis.wait(timeout=30)
        missing(f"MariaDB or MySQL at 127.0.0.1:3306 (user root, no password) is needed for Superset's "
                f"metadata: {str(exc).splitlines()[-1][:200]}")
    state = Stack(superset, tmp, redis_port, database, admin, rendered)
    try:
        env = state.env("large")
        # As Aspects' init job (init-superset.sh) does.
        run([superset / "bin/superset", "db", "upgrade"], env=env, timeout=900)
        run([superset / "bin/superset", "init"], env=env, timeout=600)
        run([superset / "bin/superset", "fab", "create-admin", "--username", admin, "--password", "tier-admin-pw",
             "--firstname", "Superset", "--lastname", "Admin", "--email", "admin@example.invalid"], env=env)
        # Aspects' roles (the guest role "Public" among them), as init-superset.sh imports them.
        roles = tutor_root / "env/plugins/aspects/apps/superset/security/roles.json"
        run([superset / "bin/superset", "fab", "import-roles", "-p", roles], env=env, timeout=600)
        shipped = rendered["large"].shipped_assets / "databases/OpenedX_Clickhouse.yaml"
        state.setup = state.driver("large", "setup", state.data_uri, tmp / "assets", shipped,
                                   rendered["large"].pythonpath / "assets.yaml", admin)
        yield state
    finally:
        for proc, log in state.processes:
            state.stop(proc)
            log.close()
        redis.terminate()
        redis.wait(timeout=30)
        mariadb(f"DROP DATABASE IF EXISTS {database}", superset)


@pytest.fixture(scope="module")
def web(stack):
    """Factory: ``web(profile)`` serves Superset with that profile's config (one at a time)."""
    current = {}

    def start(profile: str) -> str:
        if current.get("profile") == profile:
            return current["base"]
        if current:
            stack.stop(current["proc"])
        port = get_port(None)
        env = stack.env(profile, port)
        proc = stack.start(f"gunicorn-{profile}", [stack.superset / "bin/gunicorn", "-w", "1", "--threads", "8",
                                                   "--timeout", "120", "-b", f"127.0.0.1:{port}",
                                                   "superset.app:create_app()"], env)
        base = f"http://127.0.0.1:{port}"

        def healthy():
            assert proc.poll() is None, stack.log(f"gunicorn-{profile}")
            try:
                return requests.get(base + "/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, 180, f"Superset ({profile}) /health")
        stack.web_port = port
        current.update(profile=profile, proc=proc, base=base)
        return base

    return start


def worker_args(rendered: Rendered) -> list[str]:
    """CELERY_WORKER_EXTRA_ARGS of superset-worker, as Tutor rendered the k8s-override patch."""
    [worker] = [d for d in rendered.override if d["kind"] == "Deployment" and d["metadata"]["name"] == "superset-worker"]
    [container] = worker["spec"]["template"]["spec"]["containers"]
    [value] = [e["value"] for e in container["env"] if e["name"] == superset_gen.WORKER_ARGS_ENV]
    return value.split()


@pytest.fixture(scope="module")
def worker(stack, web):
    """The Superset Celery worker as Aspects' docker-bootstrap.sh starts it, with the generated arguments."""
    base = web("large")
    port = int(base.rsplit(":", 1)[1])
    args = [stack.superset / "bin/celery", "--app=superset.tasks.celery_app:app", "worker", "-Ofair", "-l", "INFO",
            "--hostname=superset-worker@tier", *worker_args(stack.rendered["large"])]
    proc = stack.start("worker", args, stack.env("large", port))
    wait_until(lambda: " ready." in stack.log("worker") or proc.poll() is not None, 180, "Superset worker ready")
    assert proc.poll() is None, stack.log("worker")
    return proc


# ---------------------------------------------------------------- what Tutor rendered


def test_the_generated_database_asset_is_the_shipped_one_with_allow_run_async(stack):
    shipped = yaml.safe_load((stack.rendered["large"].shipped_assets / "databases/OpenedX_Clickhouse.yaml").read_text())
    [extra] = [d for d in yaml.safe_load_all((stack.rendered["large"].pythonpath / "assets.yaml").read_text()) if d]
    assert shipped["allow_run_async"] is False and extra["allow_run_async"] is True
    assert {k: v for k, v in shipped.items() if k not in ("allow_run_async", "sqlalchemy_uri")} == {
        k: v for k, v in extra.items() if k != "allow_run_async"
    }
    # The small profile keeps Aspects' synchronous SQL Lab: no extra asset.
    assert not [d for d in yaml.safe_load_all((stack.rendered["small"].pythonpath / "assets.yaml").read_text()) if d]


def test_shipped_charts_without_query_context_are_the_ones_listed(stack):
    charts = [yaml.safe_load(Path(p).read_text())
              for p in sorted(glob.glob(str(stack.rendered["large"].shipped_assets / "charts/*.yaml")))]
    without = sorted(c["slice_name"] for c in charts if not c.get("query_context"))
    assert (len(without), len(charts)) == (len(superset_gen.ASPECTS_CHARTS_WITHOUT_QUERY_CONTEXT),
                                           superset_gen.ASPECTS_CHART_COUNT) == (14, 82)
    assert without == sorted(superset_gen.ASPECTS_CHARTS_WITHOUT_QUERY_CONTEXT)
    create_assets = (stack.rendered["large"].pythonpath / "create_assets.py").read_text()
    # Why every Aspects chart stays cold after an import (quoted in the generator's note).
    assert re.search(r"for o in db.session.query\(Slice\).all\(\):\s+if o.query_context:\s+o.query_context = None",
                     create_assets)


def test_deployments_roll_and_the_worker_is_bounded(stack):
    patches = [d for d in stack.rendered["large"].override if d["kind"] == "Deployment"]

    def strategies(name):
        return [d["spec"]["strategy"] for d in patches if d["metadata"]["name"] == name and "strategy" in d["spec"]]

    for name in ("superset", "superset-worker", "ralph"):
        assert strategies(name) == [{"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}]
    assert strategies("superset-worker-beat") == []  # one beat at a time: Aspects' Recreate stays
    [ralph] = [d for d in patches if d["metadata"]["name"] == "ralph" and "strategy" in d["spec"]]
    [container] = ralph["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/__lbheartbeat__"
    assert container["readinessProbe"]["httpGet"]["path"] == "/__heartbeat__"
    args = worker_args(stack.rendered["large"])
    assert args[0].startswith("--concurrency=") and int(args[0].split("=")[1]) >= 1
    assert args[1].startswith("--max-memory-per-child=")


@pytest.mark.parametrize("profile", PROFILES)
def test_the_loaded_config(stack, profile):
    config = stack.driver(profile, "config")
    # RESULTS_BACKEND is Aspects' RedisCache on REDIS_HOST (the generated patches point it at Superset's Redis).
    assert (config["results_backend"], config["results_backend_host"], config["results_backend_port"]) == (
        "RedisCache", "127.0.0.1", stack.redis_port)
    assert config["embedded_superset"] and not config["global_async_queries"]
    assert config["beat_schedule"]["cache-warmup"]["kwargs"]["strategy_name"] == "top_n_dashboards"


# ---------------------------------------------------------------- behaviour


def chart_data_body(stack) -> dict:
    s = stack.setup
    chart = s["charts"]["warm"]
    return {
        "datasource": {"id": s["dataset_id"], "type": "table"},
        "force": False,
        "queries": [s["query"]],
        "form_data": {**s["params"], "slice_id": chart, "dashboardId": s["dashboard_id"]},
        "result_format": "json",
        "result_type": "full",
    }


@pytest.mark.parametrize("profile", PROFILES)
def test_guest_token_chart_data_comes_back(stack, web, profile):
    base = web(profile)
    token = stack.driver(profile, "guest-token", stack.setup["embedded_uuid"])["token"]
    response = requests.post(base + "/api/v1/chart/data", json=chart_data_body(stack),
                             headers={"X-GuestToken": token}, timeout=60)
    assert response.status_code == 200, response.text[:2000]
    [result] = response.json()["result"]
    assert sorted((r["course_key"], r["enrollments"]) for r in result["data"]) == [
        ("course-v1:A+1+1", 3), ("course-v1:B+2+2", 5)]


def test_global_async_queries_would_break_guest_tokens(stack):
    """Why the generator never turns GLOBAL_ASYNC_QUERIES on: the same request answers 401."""
    port = get_port(None)
    env = {**stack.env("large", port), "ASPECTS_TIER_GLOBAL_ASYNC_QUERIES": "1"}
    proc = stack.start("gunicorn-gaq", [stack.superset / "bin/gunicorn", "-w", "1", "--threads", "4", "-b",
                                        f"127.0.0.1:{port}", "superset.app:create_app()"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy():
            assert proc.poll() is None, stack.log("gunicorn-gaq")
            try:
                return requests.get(base + "/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, 180, "Superset with GLOBAL_ASYNC_QUERIES /health")
        token = last_json(run([stack.superset / "bin/python", DRIVER, "guest-token", stack.setup["embedded_uuid"]],
                              env=env))["token"]
        body = {**chart_data_body(stack), "force": True}
        browser = requests.Session()  # keeps the async-token cookie, as the embedded dashboard's browser does
        # First request: no async channel cookie yet (401 "Token not preset"); Superset sets one whose
        # JWT has sub=None for the guest. Every request after that: the cookie cannot be decoded.
        for _ in range(2):
            response = browser.post(base + "/api/v1/chart/data", json=body, headers={"X-GuestToken": token}, timeout=60)
            assert response.status_code == 401, response.text[:500]
        assert "async-token" in browser.cookies
        assert "InvalidSubjectError: Subject must be a string" in stack.log("gunicorn-gaq")
    finally:
        stack.stop(proc)


def admin_session(stack, base: str) -> requests.Session:
    """Logged in as Aspects' admin the way Superset's own tasks are (fetch_csrf_token's steps)."""
    cookie = stack.driver("large", "admin-cookie", stack.admin)["cookies"]["session"]
    token = requests.get(base + "/api/v1/security/csrf_token/", headers={"Cookie": f"session={cookie}"}, timeout=30)
    assert token.status_code == 200, token.text[:500]
    # The CSRF token lives in the session: keep the session cookie that came with it.
    cookie = token.cookies.get("session", cookie)
    session = requests.Session()
    session.headers.update({"Cookie": f"session={cookie}", "X-CSRFToken": token.json()["result"], "Referer": base})
    return session


def test_sql_lab_query_runs_on_the_superset_worker(stack, web, worker):
    assert stack.setup["allow_run_async"] is True  # the imported asset, from the generated patch
    base = web("large")
    session = admin_session(stack, base)
    submitted = session.post(base + "/api/v1/sqllab/execute/", timeout=60, json={
        "database_id": stack.setup["database_id"], "sql": "SELECT SUM(enrollments) AS total FROM aspects_tier_enrollments",
        "runAsync": True, "client_id": uuid.uuid4().hex[:10], "queryLimit": 100, "schema": None,
    })
    assert submitted.status_code == 202, submitted.text[:2000]
    query_id = submitted.json()["query"]["queryId"]

    def finished():
        listing = session.get(base + "/api/v1/query/updated_since", params={"q": "(last_updated_ms:0)"}, timeout=30)
        for query in listing.json()["result"]:
            if query["queryId"] == query_id and query["state"] in ("success", "failed"):
                return query
        return None

    query = wait_until(finished, 120, "async SQL Lab query")
    assert query["state"] == "success", query
    results = session.get(base + "/api/v1/sqllab/results/", params={"q": f"(key:'{query['resultsKey']}')"}, timeout=30)
    assert results.status_code == 200, results.text[:1000]
    assert results.json()["data"] == [{"total": 8}]
    assert re.search(r"Task sql_lab.get_sql_results\[[^\]]+\] succeeded", stack.log("worker"))


def test_warmup_requests_ownerless_charts(stack, web, worker):
    assert stack.setup["owners"] == {"warm": [], "cold": []}
    entry = stack.driver("large", "config")["beat_schedule"]["cache-warmup"]
    answer = stack.driver("large", "warmup", json.dumps(entry), 120)
    assert answer["executors"] == [[stack.admin]]
    charts = stack.setup["charts"]
    scheduled = sorted(json.loads(p)["chart_id"] for p in answer["answer"]["scheduled"])
    assert scheduled == sorted(charts.values()) and not answer["answer"]["errors"]

    def fetched():
        results = [r["result"] for r in stack.driver("large", "task-results")["results"]
                   if isinstance(r["result"], dict) and "success" in r["result"]]
        return results if len(results) >= len(charts) else None

    by_chart = {}
    for result in wait_until(fetched, 120, "fetch_url results of the warm-up"):
        [viz] = json.loads(result["response"])["result"]
        by_chart[viz["chart_id"]] = viz
    assert by_chart[charts["warm"]]["viz_status"] == "success" and by_chart[charts["warm"]]["viz_error"] is None
    # The chart without a saved query_context is requested but not warmed (the generator lists why).
    assert "query context does not exist" in by_chart[charts["cold"]]["viz_error"]


def test_the_report_sees_the_superset_workers(stack, web, worker, settings):
    from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel
    from aspects_routing.scaling.collectors.services import collect_services  # pylint: disable=import-outside-toplevel

    settings.ASPECTS_ROUTING = {"SUPERSET_URL": web("large"),
                                "SUPERSET_BROKER_URL": f"redis://127.0.0.1:{stack.redis_port}/3"}
    # The ping waits the whole timeout for replies: generous, as this 2-core machine is often loaded.
    [health] = collect_services(get_config(), timeout=15).services
    assert (health.state, health.status_code) == ("up", 200)
    assert "superset-worker@tier" in health.backend.workers


def test_worker_memory_fits_the_generated_limit(stack, worker):
    """Measured after the SQL Lab query and the warm-up ran on it: parent and children (PSS, MiB)."""
    def pss(pid: int) -> int:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        return int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1)) // 1024

    children = [int(p) for p in Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()]
    parent = pss(worker.pid)
    per_child = [pss(c) for c in children]
    concurrency = int(worker_args(stack.rendered["large"])[0].split("=")[1])
    assert len(children) == concurrency
    [limits] = [d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
                for d in stack.rendered["large"].override
                if d["metadata"]["name"] == "superset-worker" and "resources" in d["spec"]["template"]["spec"]["containers"][0]]
    limit_mi = int(limits["memory"].removesuffix("Mi"))
    (stack.tmp / "worker-memory.json").write_text(json.dumps({"parent": parent, "children": per_child}))
    print(f"superset worker PSS MiB: parent {parent}, children {per_child}, limit {limit_mi}")
    assert parent + sum(per_child) < limit_mi

"""
Steps of the superset tier that run inside Superset (``.venv-superset/bin/python``).

Run by tests/test_superset_tier.py with the environment of Aspects' Superset
containers and ``SUPERSET_CONFIG_PATH`` on tests/superset_tier_config.py (which
loads the superset_config.py that real Tutor rendered). Each command prints one
JSON object on its last line.

    setup DATA_URI ASSETS_DIR SHIPPED_DB_ASSET RENDERED_ASSETS ADMIN
    guest-token EMBEDDED_UUID
    admin-cookie ADMIN
    warmup TASK_JSON TIMEOUT
    task-results
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import yaml

#: The Aspects database asset's name (tutor-contrib-aspects' OpenedX_Clickhouse.yaml).
ASPECTS_DATABASE = "OpenedX Clickhouse"
TABLE = "aspects_tier_enrollments"


def app_context():
    from superset.app import create_app  # pylint: disable=import-outside-toplevel

    app = create_app()
    context = app.app_context()
    context.push()
    return app


def write_database_assets(assets_dir: Path, shipped: Path, rendered_assets: Path, data_uri: str) -> None:
    """
    What tutor-contrib-aspects' create_assets.py does with database assets, in its order.

    The shipped assets are written first, then each document of the rendered
    ``assets.yaml`` (the ``superset-extra-assets`` patch) to
    ``databases/<_file_name>``: an extra asset with the shipped file's name
    replaces it. ``sqlalchemy_uri`` comes from SUPERSET_DATABASES there; here it
    is the MariaDB test database (no ClickHouse server on this machine).
    """
    folder = assets_dir / "databases"
    folder.mkdir(parents=True, exist_ok=True)
    # An export's metadata.yaml: with a database file alone (no dashboard), Superset's dashboard
    # import dispatcher needs it to take the files as the v1 format instead of trying v0 JSON.
    (assets_dir / "metadata.yaml").write_text("version: 1.0.0\ntimestamp: '2024-01-01T00:00:00+00:00'\n")
    documents = [yaml.safe_load(shipped.read_text())]
    documents += [d for d in yaml.safe_load_all(rendered_assets.read_text()) if d]
    for asset in documents:
        if "database_name" not in asset:
            continue
        file_name = asset.pop("_file_name")
        asset["sqlalchemy_uri"] = data_uri if asset["database_name"] == ASPECTS_DATABASE else asset["sqlalchemy_uri"]
        (folder / file_name).write_text(yaml.dump(asset))


def setup(data_uri: str, assets_dir: str, shipped: str, rendered_assets: str, admin: str) -> dict:
    """Import the Aspects database asset with Aspects' importer; a dataset, two ownerless charts, a dashboard."""
    app_context()
    # pylint: disable=import-outside-toplevel
    import sqlalchemy as sa
    from openedx.create_assets_utils import load_configs_from_directory
    from superset import security_manager
    from superset.connectors.sqla.models import SqlaTable
    from superset.extensions import db
    from superset.models.core import Database, Log
    from superset.models.dashboard import Dashboard
    from superset.models.embedded_dashboard import EmbeddedDashboard
    from superset.models.slice import Slice

    engine = sa.create_engine(data_uri)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE TABLE {TABLE} (course_key VARCHAR(64), enrollments INT)"))
        connection.execute(sa.text(f"INSERT INTO {TABLE} VALUES ('course-v1:A+1+1', 3), ('course-v1:B+2+2', 5)"))
    engine.dispose()

    root = Path(assets_dir)
    write_database_assets(root, Path(shipped), Path(rendered_assets), data_uri)
    # Aspects' own importer (openedx/create_assets_utils.py, rendered by Tutor) finds the admin user itself.
    load_configs_from_directory(root=root, overwrite=True, force_data=False)
    database = db.session.query(Database).filter_by(database_name=ASPECTS_DATABASE).one()

    dataset = SqlaTable(table_name=TABLE, database=database, schema=None)
    db.session.add(dataset)
    db.session.flush()
    dataset.fetch_metadata()
    query = {
        "columns": ["course_key"],
        "metrics": [{"expressionType": "SQL", "sqlExpression": "SUM(enrollments)", "label": "enrollments"}],
        "orderby": [[{"expressionType": "SQL", "sqlExpression": "SUM(enrollments)", "label": "enrollments"}, False]],
        "row_limit": 100,
        "filters": [],
        "extras": {"having": "", "where": ""},
    }
    params = {"viz_type": "table", "datasource": f"{dataset.id}__table", "groupby": ["course_key"],
              "metrics": query["metrics"], "row_limit": 100}
    charts = {}
    # Both ownerless, as Aspects imports its charts unless SUPERSET_OWNERS is set. One has the
    # query_context Explore saves; the other has none, like every Aspects chart after create_assets.
    for name, with_context in (("warm", True), ("cold", False)):
        chart = Slice(slice_name=f"tier {name}", viz_type="table", datasource_type="table",
                      datasource_id=dataset.id, params=json.dumps(params), owners=[])
        db.session.add(chart)
        db.session.flush()
        if with_context:
            chart.query_context = json.dumps({
                "datasource": {"id": dataset.id, "type": "table"}, "force": False, "queries": [query],
                "form_data": {**params, "slice_id": chart.id}, "result_format": "json", "result_type": "full",
            })
        charts[name] = chart
    dashboard = Dashboard(dashboard_title="tier", slug="tier", owners=[], published=True,
                          slices=list(charts.values()), json_metadata=json.dumps({}))
    db.session.add(dashboard)
    db.session.flush()
    embedded = EmbeddedDashboard(dashboard_id=dashboard.id)
    db.session.add(embedded)
    # Stands in for the dashboard views Superset's event logger records (top_n_dashboards ranks on them).
    db.session.add(Log(action="DashboardRestApi.get", dashboard_id=dashboard.id,
                       user_id=security_manager.find_user(username=admin).id))
    db.session.commit()
    return {
        "database_id": database.id,
        "allow_run_async": database.allow_run_async,
        "dataset_id": dataset.id,
        "charts": {name: chart.id for name, chart in charts.items()},
        "owners": {name: [o.username for o in chart.owners] for name, chart in charts.items()},
        "dashboard_id": dashboard.id,
        "embedded_uuid": str(embedded.uuid),
        "query": query,
        "params": params,
    }


def guest_token(embedded_uuid: str) -> dict:
    """A guest token for the embedded dashboard, as the LMS asks Superset for one."""
    from superset.extensions import security_manager  # pylint: disable=import-outside-toplevel

    app_context()
    token = security_manager.create_guest_access_token(
        {"username": "lms-learner", "first_name": "LMS", "last_name": "Learner"},
        [{"type": "dashboard", "id": embedded_uuid}],
        [],
    )
    return {"token": token.decode() if isinstance(token, bytes) else token}


def admin_cookie(admin: str) -> dict:
    """The session cookie Superset's own tasks log in with (MachineAuthProvider)."""
    # pylint: disable=import-outside-toplevel
    from superset import security_manager
    from superset.utils.machine_auth import MachineAuthProvider

    app_context()
    return {"cookies": MachineAuthProvider.get_auth_cookies(security_manager.find_user(username=admin))}


def warmup(task_json: str, timeout: str) -> dict:
    """Send the generated beat entry's task to the Superset worker and wait for its answer."""
    from superset.extensions import celery_app  # pylint: disable=import-outside-toplevel

    app = app_context()
    entry = json.loads(task_json)
    result = celery_app.send_task(entry["task"], kwargs=entry["kwargs"])
    answer = result.get(timeout=float(timeout))
    return {"answer": answer, "executors": [list(e) if isinstance(e, tuple) else str(e)
                                            for e in app.config["CACHE_WARMUP_EXECUTORS"]]}


def task_results() -> dict:
    """Every task result in the Celery result backend (fetch_url's answers among them)."""
    import redis  # pylint: disable=import-outside-toplevel

    app = app_context()
    client = redis.Redis.from_url(app.config["CELERY_CONFIG"].CELERY_RESULT_BACKEND)
    found = []
    for key in client.scan_iter("celery-task-meta-*"):
        meta = json.loads(client.get(key))
        found.append({"status": meta.get("status"), "result": meta.get("result")})
    return {"results": found}


def config_summary() -> dict:
    """What the loaded config says about the results backend, async queries and the warm-up."""
    app = app_context()
    backend = app.config["RESULTS_BACKEND"]
    celery = app.config["CELERY_CONFIG"]
    return {
        "results_backend": type(backend).__name__,
        "results_backend_host": backend._write_client.connection_pool.connection_kwargs.get("host"),  # noqa: SLF001
        "results_backend_port": int(backend._write_client.connection_pool.connection_kwargs.get("port")),  # noqa: SLF001
        "global_async_queries": bool(app.config["FEATURE_FLAGS"].get("GLOBAL_ASYNC_QUERIES")),
        "embedded_superset": bool(app.config["FEATURE_FLAGS"].get("EMBEDDED_SUPERSET")),
        "beat_schedule": {name: {"task": e["task"], "kwargs": e.get("kwargs", {})}
                          for name, e in celery.CELERYBEAT_SCHEDULE.items()},
        "broker_url_host": celery.BROKER_URL.rsplit("@", 1)[-1],
    }


COMMANDS = {
    "setup": setup, "guest-token": guest_token, "admin-cookie": admin_cookie, "warmup": warmup,
    "task-results": task_results, "config": config_summary,
}


def main() -> None:
    started = time.monotonic()
    result = COMMANDS[sys.argv[1]](*sys.argv[2:])
    result["seconds"] = round(time.monotonic() - started, 1)
    sys.stdout.flush()
    os.write(1, ("\n" + json.dumps(result, default=str) + "\n").encode())


if __name__ == "__main__":
    main()

"""
Routing against a real Redis broker, with the real Aspects tasks.

Each test publishes with ``.delay()`` and reads the broker's lists to see where
every message landed.
"""

import subprocess
import sys

import pytest
from event_routing_backends import tasks as erb_tasks
from eventtracking import tasks as tracking_tasks
from platform_plugin_aspects import tasks as aspects_tasks

from aspects_routing.conf import ASPECTS_TASKS
from tests import tasks as platform_tasks
from tests.broker import queued_task_names
from tests.conftest import ROOT, subprocess_env

AspectsQueue = "edx.lms.core.aspects"  # set through ENV_TOKENS in tests.settings.edx_order

REAL_TASKS = {
    "platform_plugin_aspects.tasks.dump_course_to_clickhouse": lambda: aspects_tasks.dump_course_to_clickhouse.delay(
        "course-v1:org+course+run"
    ),
    "platform_plugin_aspects.tasks.dump_data_to_clickhouse": lambda: aspects_tasks.dump_data_to_clickhouse.delay(
        "platform_plugin_aspects.sinks", "UserProfileSink", 1
    ),
    "event_routing_backends.tasks.dispatch_event": lambda: erb_tasks.dispatch_event.delay(
        "problem_check", {"a": 1}, "XAPI_LRS", {}
    ),
    "event_routing_backends.tasks.dispatch_event_persistent": lambda: erb_tasks.dispatch_event_persistent.delay(
        "problem_check", {"a": 1}, "XAPI_LRS", {}
    ),
    "event_routing_backends.tasks.dispatch_bulk_events": lambda: erb_tasks.dispatch_bulk_events.delay(
        [{"a": 1}], "XAPI_LRS", {}
    ),
    "eventtracking.tasks.send_event": lambda: tracking_tasks.send_event.delay("event_transformer", {"name": "x"}),
}


def test_every_default_task_is_exercised():
    assert set(REAL_TASKS) == set(ASPECTS_TASKS)


def test_real_aspects_tasks_land_on_the_configured_queue(redis_client, celery_app):
    for publish in REAL_TASKS.values():
        publish()
    assert sorted(queued_task_names(redis_client, AspectsQueue)) == sorted(ASPECTS_TASKS)
    assert queued_task_names(redis_client, "edx.lms.core.default") == []


def test_other_tasks_keep_platform_routing(redis_client, celery_app):
    platform_tasks.platform_task.delay()
    platform_tasks.explicit_platform_task.delay()
    assert queued_task_names(redis_client, "edx.lms.core.default") == ["tests.tasks.platform_task"]
    assert queued_task_names(redis_client, "edx.lms.core.high_mem") == ["tests.tasks.explicit_platform_task"]
    assert queued_task_names(redis_client, AspectsQueue) == []


def test_queue_passed_by_caller_wins(redis_client, celery_app):
    tracking_tasks.send_event.apply_async(("event_transformer", {"name": "x"}), queue="edx.lms.core.low")
    assert queued_task_names(redis_client, "edx.lms.core.low") == ["eventtracking.tasks.send_event"]
    assert queued_task_names(redis_client, AspectsQueue) == []


PROBE = """
import django, json, sys
django.setup()
from tests.celery_app import APP
from eventtracking.tasks import send_event
from event_routing_backends.tasks import dispatch_bulk_events
from tests.tasks import platform_task
send_event.delay("event_transformer", {"name": "x"})
dispatch_bulk_events.delay([], "XAPI_LRS", {})
platform_task.delay()
"""


@pytest.mark.parametrize(
    "settings_module, expected",
    [
        (
            "tests.settings.edx_order",
            {
                AspectsQueue: ["eventtracking.tasks.send_event", "event_routing_backends.tasks.dispatch_bulk_events"],
                "edx.lms.core.default": ["tests.tasks.platform_task"],
            },
        ),
        (
            "tests.settings.tutor_order",
            {
                AspectsQueue: ["eventtracking.tasks.send_event"],
                "edx.lms.core.aspects_bulk": ["event_routing_backends.tasks.dispatch_bulk_events"],
                "edx.lms.core.default": ["tests.tasks.platform_task"],
            },
        ),
    ],
)
def test_settings_orders_of_real_deployments(redis_client, settings_module, expected):
    """A fresh process per order: edx-platform's (YAML) and Tutor's (Python appended last)."""
    subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=subprocess_env(DJANGO_SETTINGS_MODULE=settings_module),
        check=True,
        timeout=120,
    )
    for queue, names in expected.items():
        assert queued_task_names(redis_client, queue) == names

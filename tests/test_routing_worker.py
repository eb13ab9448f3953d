"""A real worker started as Tutor starts lms-worker (no -Q) consumes the Aspects queue."""

import re
import time

from eventtracking import tasks as tracking_tasks
from platform_plugin_aspects import tasks as aspects_tasks

from tests.broker import queued_task_names


def _wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _received(worker, task_name):
    return len(re.findall(rf"Task {re.escape(task_name)}\[[0-9a-f-]+\] received", worker.log()))


def test_worker_without_dash_q_consumes_the_dedicated_queue(redis_client, start_worker):
    # Published before the worker starts: the tasks wait on the dedicated queue.
    for _ in range(5):
        tracking_tasks.send_event.delay("event_transformer", {"name": "x"})
    aspects_tasks.dump_data_to_clickhouse.delay("platform_plugin_aspects.sinks", "UserProfileSink", 1)
    assert len(queued_task_names(redis_client, "edx.lms.core.aspects")) == 6

    # Tutor's lms-worker: no -Q, only the CMS default queue excluded.
    worker = start_worker("--exclude-queues=edx.cms.core.default", "--concurrency=1", "--pool=solo")

    assert _wait_for(lambda: _received(worker, "eventtracking.tasks.send_event") == 5), worker.log()
    assert _wait_for(lambda: _received(worker, "platform_plugin_aspects.tasks.dump_data_to_clickhouse") == 1)
    assert queued_task_names(redis_client, "edx.lms.core.aspects") == []
    assert "edx.lms.core.aspects" in worker.log()  # listed among the queues it consumes


def test_worker_with_dash_q_keeps_the_operators_selection(redis_client, start_worker):
    tracking_tasks.send_event.delay("event_transformer", {"name": "x"})
    worker = start_worker("-Q", "edx.lms.core.default", "--concurrency=1", "--pool=solo")
    from tests.tasks import platform_task  # pylint: disable=import-outside-toplevel

    platform_task.delay()
    assert _wait_for(lambda: _received(worker, "tests.tasks.platform_task") == 1), worker.log()
    # The Aspects task is still waiting: this worker was told to consume only the default queue.
    assert queued_task_names(redis_client, "edx.lms.core.aspects") == ["eventtracking.tasks.send_event"]
    assert _received(worker, "eventtracking.tasks.send_event") == 0

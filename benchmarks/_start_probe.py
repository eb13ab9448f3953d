"""
Imported by benchmark workers (``celery worker --include benchmarks._start_probe``):
records when each task starts, in the broker's Redis, so the benchmark can
compute queue wait = start - publish for every task.
"""

import os
import time

import redis
from celery.signals import task_prerun

_CLIENT = redis.Redis.from_url(os.environ["REDIS_URL"])


@task_prerun.connect
def _record_start(task_id=None, **kwargs):  # pylint: disable=unused-argument
    _CLIENT.hset("bench:started", task_id, repr(time.time()))

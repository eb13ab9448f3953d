"""Platform-like tasks that are not Aspects work."""

import time

from celery import shared_task


@shared_task
def platform_task(seconds=0.0):
    """An ordinary LMS task (grading, email, ...): must stay on the platform's queues."""
    if seconds:
        time.sleep(seconds)
    return "done"


@shared_task
def explicit_platform_task():
    """A task the platform routes through EXPLICIT_QUEUES."""
    return "done"

"""
The test LMS's Celery app, built like edx-platform's ``openedx/core/lib/celery``:
created at import (before Django's apps are ready), protocol 1, configured from
Django settings without a namespace, tasks autodiscovered.

Start a worker as Tutor's ``lms-worker`` does::

    celery --app=tests.celery_app worker --exclude-queues=edx.cms.core.default
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings.edx_order")

APP = Celery("proj")
APP.conf.task_protocol = 1
APP.config_from_object("django.conf:settings")
APP.autodiscover_tasks(["tests"])

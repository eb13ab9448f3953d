"""
Stand-in for edx-platform's ``openedx/core/lib/celery/__init__.py``: the one Celery
app of the LMS and the CMS, built at import (before Django's apps are ready),
protocol 1, configured from Django settings without a namespace, tasks
autodiscovered. ``lms/celery.py`` and ``cms/celery.py`` set the settings module
and import it, as edx-platform's do.
"""

from celery import Celery

APP = Celery("proj")
APP.conf.task_protocol = 1
APP.config_from_object("django.conf:settings")
APP.autodiscover_tasks()

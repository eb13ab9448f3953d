"""
The Celery parts of an edx-platform service with only aspects-routing installed.

Needs nothing but this package's own requirements, so workers built on it also
run in the lean Celery 5.4/5.5 virtualenvs. Outside the ``tests`` package on
purpose: importing ``tests`` creates the test LMS's Celery app, which would
become Celery's current app in these workers.
"""

import os


def service_settings(service: str) -> dict:
    """Settings of a minimal ``service`` ("lms" or "cms"), queues named as edx-platform names them."""
    high, default, high_mem = (f"edx.{service}.core.{name}" for name in ("high", "default", "high_mem"))
    return {
        "SECRET_KEY": "tests-only-not-a-secret",
        "USE_TZ": True,
        "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        "INSTALLED_APPS": ["django.contrib.contenttypes", "django.contrib.auth", "aspects_routing"],
        "DEFAULT_AUTO_FIELD": "django.db.models.AutoField",
        "LOGGING_CONFIG": None,
        # As lms/envs/common.py and cms/envs/common.py: it also tells aspects-routing the service.
        "ROOT_URLCONF": f"{service}.urls",
        "CELERY_ALWAYS_EAGER": False,
        "CELERY_IGNORE_RESULT": True,
        "BROKER_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9"),
        "HIGH_PRIORITY_QUEUE": high,
        "DEFAULT_PRIORITY_QUEUE": default,
        "HIGH_MEM_QUEUE": high_mem,
        "CELERY_DEFAULT_EXCHANGE": f"edx.{service}.core",
        "CELERY_DEFAULT_QUEUE": default,
        "CELERY_DEFAULT_ROUTING_KEY": default,
        "CELERY_QUEUES": {high: {}, default: {}, high_mem: {}},
        # A dedicated Aspects queue, as the README's example configures it.
        "ASPECTS_ROUTING": {"QUEUE": f"edx.{service}.core.aspects", "METRICS_ENABLED": False},
    }

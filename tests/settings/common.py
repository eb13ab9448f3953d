"""
The parts of edx-platform's ``lms/envs/common.py`` that aspects-routing touches.

edx-platform is not on PyPI, so this module stands in for it. It keeps edx's
old-style Celery names (``CELERY_QUEUES``, ``BROKER_URL``, ...) because the LMS's
Celery app reads Django settings without a namespace.
"""

import os
import sys
from pathlib import Path

from edx_django_utils.plugins import get_plugin_apps

HERE = Path(__file__).resolve().parent
# Minimal stand-ins for the edx-platform modules the real packages import.
sys.path.insert(0, str(HERE.parent / "stand_ins"))

SECRET_KEY = "tests-only-not-a-secret"  # noqa: S105
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
LMS_ROOT_URL = "http://localhost:18000"
ALLOWED_HOSTS = ["*"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("ASPECTS_TEST_DB", ":memory:"),
    }
}

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "waffle",
    "config_models",
    "celery_utils",
    "eventtracking.django.apps.EventTrackingConfig",
    # As in edx-platform: listed before the plugins, so ready() before them.
    "openedx_events",
    *get_plugin_apps("lms.djangoapp"),
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.contrib.auth.context_processors.auth"]},
    }
]

# Settings other plugins' plugin_settings() expect to find.
MAKO_TEMPLATE_DIRS_BASE = []
EVENT_TRACKING_BACKENDS = {}
EVENT_TRACKING_PROCESSORS = []
EVENT_TRACKING_ENABLED = True

############################## Celery (as in lms/envs/common.py) ##############################
QUEUE_VARIANT = "lms."
HIGH_PRIORITY_QUEUE = "edx.lms.core.high"
DEFAULT_PRIORITY_QUEUE = "edx.lms.core.default"
HIGH_MEM_QUEUE = "edx.lms.core.high_mem"
CELERY_DEFAULT_EXCHANGE = "edx.lms.core"
CELERY_DEFAULT_QUEUE = DEFAULT_PRIORITY_QUEUE
CELERY_DEFAULT_ROUTING_KEY = DEFAULT_PRIORITY_QUEUE
CELERY_QUEUES = {
    HIGH_PRIORITY_QUEUE: {},
    DEFAULT_PRIORITY_QUEUE: {},
    HIGH_MEM_QUEUE: {},
}
CELERY_ROUTES = "openedx.core.lib.celery.routers.route_task"
CELERY_ALWAYS_EAGER = False
CELERY_IGNORE_RESULT = True
CELERY_SEND_EVENTS = False
# The conftest starts a private redis-server and sets REDIS_URL when none is given.
BROKER_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
ALTERNATE_ENV_TASKS = {}
EXPLICIT_QUEUES = {}

ENV_TOKENS = {}

############################## Event bus (as Tutor configures the Redis bus) ##############################
EVENT_BUS_PRODUCER = "edx_event_bus_redis.create_producer"
EVENT_BUS_CONSUMER = "edx_event_bus_redis.RedisEventConsumer"
# A test may point the producer at a dead Redis to see send failures.
EVENT_BUS_REDIS_CONNECTION_URL = os.environ.get("ASPECTS_TEST_EVENT_BUS_URL", BROKER_URL)
EVENT_BUS_TOPIC_PREFIX = "test"
# Below redis-py's 5 s default socket timeout (see aspects_routing.W082).
EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT = 1
# edx-platform ships producer entries of its own; the event-bus transport must keep them.
EVENT_BUS_PRODUCER_CONFIG = {
    "org.openedx.learning.certificate.created.v1": {
        "learning-certificate-lifecycle": {"event_key_field": "certificate.course.course_key", "enabled": False},
    },
}

LOGGING_CONFIG = None
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# As at the end of lms/envs/common.py: the plugins' common settings.
from edx_django_utils.plugins import add_plugins  # noqa: E402  pylint: disable=wrong-import-position

add_plugins(__name__, "lms.djangoapp", "common")

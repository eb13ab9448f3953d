"""
Tutor's order: the platform settings and ``add_plugins()`` run first, then
Tutor appends the operator's Python settings (the ``openedx-lms-*-settings``
patches) -- which is where ``ASPECTS_ROUTING`` is usually set.
"""

# pylint: disable=wildcard-import,unused-wildcard-import
from edx_django_utils.plugins import add_plugins

from tests.settings.common import *  # noqa: F401,F403

ENV_TOKENS = {}
add_plugins(__name__, "lms.djangoapp", "production")

EXPLICIT_QUEUES = {
    "tests.tasks.explicit_platform_task": {"queue": HIGH_MEM_QUEUE},  # noqa: F405
}

# --- appended by Tutor from the operator's plugin patches ---
ASPECTS_ROUTING = {
    "QUEUE": "edx.lms.core.aspects",
    "TASK_QUEUES": {"event_routing_backends.tasks.dispatch_bulk_events": "edx.lms.core.aspects_bulk"},
}

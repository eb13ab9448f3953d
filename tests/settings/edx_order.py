"""
edx-platform's order (``lms/envs/production.py``): YAML is read into
``ENV_TOKENS``, ``add_plugins()`` runs the plugins' production settings, and
*afterwards* ``EXPLICIT_QUEUES`` is reassigned as a literal -- so anything a
plugin wrote into it is lost. The operator configures aspects-routing in YAML.
"""

# pylint: disable=wildcard-import,unused-wildcard-import
import json
import os

from edx_django_utils.plugins import add_plugins

from tests.settings.common import *  # noqa: F401,F403

ENV_TOKENS = json.loads(
    os.environ.get(
        "ASPECTS_TEST_ENV_TOKENS",
        json.dumps({"ASPECTS_ROUTING": {"QUEUE": "edx.lms.core.aspects"}}),
    )
)

add_plugins(__name__, "lms.djangoapp", "production")

######################## CELERY ROUTING (reassigned after add_plugins) ########################
EXPLICIT_QUEUES = {
    "tests.tasks.explicit_platform_task": {"queue": HIGH_MEM_QUEUE},  # noqa: F405
}

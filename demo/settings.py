"""
The demo's LMS settings: the test LMS (``tests/settings`` over the edx-platform
stand-ins in ``tests/stand_ins``, since edx-platform is not on PyPI) with the
plugins loaded in Tutor's order, then the operator's settings appended as Tutor
appends them.

:mod:`demo.run` sets the environment variables read here before Django starts:
``REDIS_URL`` (broker and metrics store), ``ASPECTS_TEST_DB`` (the LMS's SQLite
file), ``ASPECTS_DEMO_CLICKHOUSE_DSN`` (the chDB database) and
``ASPECTS_DEMO_RALPH_URL`` (the demo's LRS stand-in).
"""

# pylint: disable=wildcard-import,unused-wildcard-import
import os

from edx_django_utils.plugins import add_plugins

from aspects_routing.testing.xapi import COURSES

from tests.settings.common import *  # noqa: F401,F403

ENV_TOKENS = {}
add_plugins(__name__, "lms.djangoapp", "production")

# --- appended by Tutor from the operator's plugin patches ---
ASPECTS_ROUTING = {
    # A dedicated queue, consumed by the demo's worker.
    "QUEUE": "edx.lms.core.aspects",
    # Flush counters every second so the report sees the burst right after it drains.
    "METRICS_FLUSH_SECONDS": 1.0,
    "RALPH_URL": os.environ.get("ASPECTS_DEMO_RALPH_URL") or None,
}
# The LMS database: a SQLite file shared by the demo and its worker (ASPECTS_TEST_DB,
# read by tests/settings/common.py), migrated by the demo; waits instead of failing
# while the other process writes.
DATABASES["default"]["OPTIONS"] = {"timeout": 30}  # noqa: F405
# The courses the burst's events belong to (edx-platform's course overviews stand-in).
STAND_IN_COURSE_OVERVIEWS = {
    course: {"display_name": course.split(":", 1)[1].replace("+", " "), "language": "en"}
    for course, _weight in COURSES
}
# Aspects' ClickHouse connection, pointed at the demo's embedded chDB database.
EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {
    **EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG,  # noqa: F405  (set by platform-plugin-aspects' plugin settings)
    "url": os.environ.get("ASPECTS_DEMO_CLICKHOUSE_DSN", "chdb://memory"),
    "username": None,
    "password": None,
}

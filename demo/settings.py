"""
The demo's LMS settings: the test LMS (``tests/settings`` over the edx-platform
stand-ins in ``tests/stand_ins``, since edx-platform is not on PyPI) with the
plugins loaded in Tutor's order, then the operator's settings appended as Tutor
appends them.

:mod:`demo.run` sets the environment variables read here before Django starts:
``REDIS_URL`` (broker and metrics store), ``ASPECTS_DEMO_CLICKHOUSE_DSN`` (the
chDB database) and ``ASPECTS_DEMO_RALPH_URL`` (the demo's LRS stand-in).
"""

# pylint: disable=wildcard-import,unused-wildcard-import
import os

from edx_django_utils.plugins import add_plugins

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
# Aspects' ClickHouse connection, pointed at the demo's embedded chDB database.
EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {
    **EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG,  # noqa: F405  (set by platform-plugin-aspects' plugin settings)
    "url": os.environ.get("ASPECTS_DEMO_CLICKHOUSE_DSN", "chdb://memory"),
    "username": None,
    "password": None,
}

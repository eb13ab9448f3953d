"""
Tutor's order with the event-bus transport: ``TRANSPORT`` is set by the
operator's Python settings, appended after ``add_plugins()`` has run (so no
plugin settings hook could have seen it).
"""

# pylint: disable=wildcard-import,unused-wildcard-import
from tests.settings.tutor_order import *  # noqa: F401,F403

# --- appended by Tutor from the operator's plugin patches ---
ASPECTS_ROUTING = {**ASPECTS_ROUTING, "TRANSPORT": "event_bus"}  # noqa: F405

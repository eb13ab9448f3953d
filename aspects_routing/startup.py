"""
What runs once per process when Django's apps are ready.

Each step is isolated: a failure is logged and the LMS, CMS or worker keeps
starting (the system checks report configuration mistakes).
"""

import logging

log = logging.getLogger(__name__)


def _route():
    from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel
    from aspects_routing.routing.install import (  # pylint: disable=import-outside-toplevel
        celery_app,
        declare_queues,
        install_router,
    )

    app = celery_app()
    install_router(app)
    declare_queues(app, get_config())


def _transport():
    from aspects_routing.transport import start as start_transport  # pylint: disable=import-outside-toplevel

    start_transport()


def _metrics():
    from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel
    from aspects_routing.metrics import hooks  # pylint: disable=import-outside-toplevel

    if get_config().metrics_enabled:
        hooks.install()


STEPS = [_route, _transport, _metrics]


def start():
    """Run every startup step; never raise."""
    for step in STEPS:
        try:
            step()
        except Exception:  # pylint: disable=broad-except
            log.exception("aspects-routing startup step %s failed; continuing without it", step.__name__)

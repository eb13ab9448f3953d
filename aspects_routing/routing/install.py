"""
Make the running Celery app use :data:`~aspects_routing.routing.router.route_task`
and declare the Aspects queues.

Called from :meth:`AspectsRoutingConfig.ready` in every process (LMS/CMS web,
workers, management commands). It works on the app object, not on Django
settings, because

* edx-platform's ``production.py`` reassigns ``EXPLICIT_QUEUES`` (and may set
  ``CELERY_ROUTES``) after the plugins' settings ran;
* the LMS's Celery app exists before Django's apps are ready, and may already
  have read its configuration.

Both steps are idempotent.
"""

from __future__ import annotations

import logging

from aspects_routing.conf import RoutingSettings
from aspects_routing.routing.router import route_task

log = logging.getLogger(__name__)


def celery_app():
    """The process's current Celery app (the LMS's or CMS's ``APP``)."""
    from celery import current_app  # pylint: disable=import-outside-toplevel

    return current_app._get_current_object()  # pylint: disable=protected-access


def _as_tuple(routes) -> tuple:
    if routes is None:
        return ()
    if isinstance(routes, (list, tuple)):
        return tuple(routes)
    return (routes,)


def install_router(app) -> bool:
    """Put :data:`route_task` first in ``app.conf.task_routes``; True if it was added."""
    routes = _as_tuple(app.conf.task_routes)
    if any(r is route_task or r == "aspects_routing.routing.router.route_task" for r in routes):
        return False
    app.conf.task_routes = (route_task, *routes)
    # Celery caches the prepared route table, and the Router built from it if
    # anything published already: rebuild both from the new conf.
    app.amqp.flush_routes()
    if "router" in vars(app.amqp):
        app.amqp.router = app.amqp.Router()
    return True


def declare_queues(app, config: RoutingSettings) -> list[str]:
    """
    Add every Aspects queue to the app's declared queues; return the names added.

    A worker started without ``-Q`` (Tutor's ``lms-worker`` and ``cms-worker``)
    consumes every declared queue, so a dedicated Aspects queue must be declared
    or its tasks pile up unseen.

    This runs before the worker applies ``-Q``/``--exclude-queues``: Celery's
    ``WorkController.__init__`` calls ``app.loader.init_worker()`` (which, through
    Celery's Django fix-up, sets Django up and so runs this plugin's ``ready()``)
    before ``setup_queues()``. So no selection exists yet, and ``select_add``
    puts the queue among "every declared queue" in each Celery version: Celery
    5.4/5.5 consume from the declared dict itself, 5.6+ from a copy taken when
    the queues were created (``_default_consume_from``), which ``select_add``
    updates. The worker's selection then applies as usual: ``-Q`` without the
    Aspects queue leaves it out, ``--exclude-queues`` removes only what it names
    (tests/test_routing_worker.py and tests/test_worker_compat.py start real
    workers the way Tutor does, on each supported Celery).
    """
    declared = app.amqp.queues
    added = []
    for queue in config.queues:
        if queue not in declared:
            declared.select_add(queue)
            added.append(queue)
    if added:
        log.info("aspects-routing declared Celery queue(s) %s", ", ".join(added))
    return added

"""
Stand-in for edx-platform's ``openedx.core.lib.celery.routers`` (not on PyPI):
the platform router that ``CELERY_ROUTES`` names, reduced to its
``EXPLICIT_QUEUES`` lookup.
"""

from django.conf import settings


def route_task(name, args, kwargs, options, task=None, **kw):  # pylint: disable=unused-argument
    """Send tasks named in ``EXPLICIT_QUEUES`` to their queue; leave the rest alone."""
    return settings.EXPLICIT_QUEUES.get(name)

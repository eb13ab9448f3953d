"""
aspects-routing: route, measure and size the Open edX Aspects pipeline.

Public API (everything else is private and may change):

* :func:`get_config` -- the validated ``ASPECTS_ROUTING`` settings.
* :func:`route_task` -- the Celery router; usable directly in ``CELERY_ROUTES``.
"""

__version__ = "0.1.0"

__all__ = ["get_config", "route_task", "__version__"]


def __getattr__(name):
    # Lazy re-exports: importing the package must not import Django settings
    # or Celery (the LMS imports plugins while its settings are being built).
    if name == "get_config":
        from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel

        return get_config
    if name == "route_task":
        from aspects_routing.routing.router import route_task  # pylint: disable=import-outside-toplevel

        return route_task
    raise AttributeError(name)

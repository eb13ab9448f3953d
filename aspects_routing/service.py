"""
Which edx-platform service this process belongs to (LMS or CMS), and the
commands that address it.

Advice printed by the report and the checks must name the service it runs in:
a CMS is told ``celery --app=cms.celery`` and ``./manage.py cms``, an LMS the
LMS's. The service is known from, in order:

1. ``settings.ROOT_URLCONF``: ``lms.urls`` / ``cms.urls``, set by
   ``lms/envs/common.py`` and ``cms/envs/common.py`` in every release, whatever
   settings module or manage.py style loaded them;
2. the settings module's top package (``DJANGO_SETTINGS_MODULE=cms.envs.production``,
   which the newest manage.py, ``cms/celery.py`` and Tutor's containers set);
3. the ``SERVICE_VARIANT`` environment variable (set by Tutor's containers and by
   the manage.py of older releases; ``lms-preview``/``lms-xml`` are the LMS);
4. otherwise the LMS, where Aspects' event tasks run.

This is a fact about the platform, not an ``ASPECTS_ROUTING`` setting, so it is
read here, at the moment advice is rendered, and never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

LMS, CMS = "lms", "cms"
SERVICES = (LMS, CMS)


@dataclass(frozen=True)
class Service:
    """An edx-platform service and how its commands are spelled."""

    name: str  # "lms" or "cms"
    source: str  # how it was found, e.g. "ROOT_URLCONF 'cms.urls'"

    @property
    def celery_app(self) -> str:
        """The ``--app`` of this service's Celery workers (``lms.celery`` / ``cms.celery``)."""
        return f"{self.name}.celery"

    def celery(self, *args: str) -> str:
        """A ``celery`` command line for this service's app."""
        return " ".join(("celery", f"--app={self.celery_app}", *args))

    def manage(self, *args: str) -> str:
        """A ``./manage.py <service> ...`` command line (the form every release accepts)."""
        return " ".join(("./manage.py", self.name, *args))


def _top_package(dotted: str | None) -> str | None:
    head = (dotted or "").split(".", 1)[0]
    return head if head in SERVICES else None


def service_of(root_urlconf: str | None, settings_module: str | None, service_variant: str | None) -> Service:
    """The service named by the first of these that names one (pure; see the module docstring)."""
    if _top_package(root_urlconf):
        return Service(_top_package(root_urlconf), f"ROOT_URLCONF {root_urlconf!r}")
    if _top_package(settings_module):
        return Service(_top_package(settings_module), f"DJANGO_SETTINGS_MODULE {settings_module!r}")
    variant = (service_variant or "").strip().lower()
    if variant == CMS or variant.startswith("lms"):
        return Service(CMS if variant == CMS else LMS, f"SERVICE_VARIANT {service_variant!r}")
    return Service(LMS, "default (nothing names the service)")


def current_service() -> Service:
    """The service of this process, from its settings and environment."""
    from django.conf import settings  # pylint: disable=import-outside-toplevel

    root_urlconf = getattr(settings, "ROOT_URLCONF", None) if settings.configured else None
    return service_of(
        root_urlconf if isinstance(root_urlconf, str) else None,
        os.environ.get("DJANGO_SETTINGS_MODULE"),
        os.environ.get("SERVICE_VARIANT"),
    )

"""
Django app config and Open edX plugin wiring for aspects-routing.
"""

import logging

from django.apps import AppConfig
from edx_django_utils.plugins import PluginSettings, PluginURLs

log = logging.getLogger(__name__)

_PROJECTS = ("lms.djangoapp", "cms.djangoapp")
_SETTINGS_TYPES = ("common", "production", "test")


class AspectsRoutingConfig(AppConfig):
    """Routes Aspects Celery tasks, measures the pipeline, sizes its services."""

    name = "aspects_routing"
    verbose_name = "Aspects routing"
    default_auto_field = "django.db.models.AutoField"

    plugin_app = {
        PluginURLs.CONFIG: {
            project: {
                PluginURLs.NAMESPACE: "aspects_routing",
                PluginURLs.REGEX: r"^aspects-routing/",
                PluginURLs.RELATIVE_PATH: "urls",
            }
            for project in _PROJECTS
        },
        PluginSettings.CONFIG: {
            project: {
                settings_type: {PluginSettings.RELATIVE_PATH: f"settings.{settings_type}"}
                for settings_type in _SETTINGS_TYPES
            }
            for project in _PROJECTS
        },
    }

    def ready(self):
        # Registers the system checks.
        from aspects_routing import checks  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
        from aspects_routing.startup import start  # pylint: disable=import-outside-toplevel

        start()

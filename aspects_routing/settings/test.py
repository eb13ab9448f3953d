"""Settings overlay for the platform's ``test`` settings type: same as ``common``."""

from aspects_routing.settings.common import plugin_settings  # noqa: F401  pylint: disable=unused-import

"""A minimal LMS: see ``platform_minimal``."""

from platform_minimal import service_settings

globals().update(service_settings("lms"))

"""Built like edx-platform's ``lms/celery.py``: a default settings module, then the shared app."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms.envs.minimal")

from platform_celery import APP  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

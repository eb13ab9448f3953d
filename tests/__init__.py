# As edx-platform's lms/__init__.py does: the Celery app exists before Django's
# apps are ready, whenever anything under this package (e.g. its settings) loads.
from tests.celery_app import APP as celery_app  # noqa: F401

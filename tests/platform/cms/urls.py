"""Stand-in for ``cms/urls.py``: Celery's Django fix-up runs the system checks, which load ROOT_URLCONF."""

urlpatterns = []

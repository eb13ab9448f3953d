"""Stand-in for edx-platform's ``cms`` package (only ``cms.celery``)."""

"""Stand-in for edx-platform's ``lms`` package (only ``lms.celery``)."""

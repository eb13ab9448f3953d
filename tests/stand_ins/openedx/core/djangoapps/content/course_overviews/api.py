"""
Stand-in for edx-platform's ``openedx.core.djangoapps.content.course_overviews.api``
(not on PyPI), imported by event-routing-backends' xAPI helpers.

No course exists unless the settings list some in ``STAND_IN_COURSE_OVERVIEWS``
(``{course_id: {"display_name": ..., "language": ...}}``); the demo does, so that
its tracking events transform as they do in an LMS. The tests emit events without
a course.
"""

from django.conf import settings


def get_course_overviews(course_ids):
    """The overviews (dicts, as edx-platform's API returns) of the known courses among ``course_ids``."""
    known = getattr(settings, "STAND_IN_COURSE_OVERVIEWS", {})
    return [{"id": str(key), **known[str(key)]} for key in course_ids if str(key) in known]

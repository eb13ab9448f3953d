"""
Stand-in for edx-platform's ``common.djangoapps.student.models`` (not on PyPI).

event-routing-backends' xAPI helpers import ``get_potentially_retired_user_by_username``
together with the two other stand-ins; if any import fails, every transformer
raises ImportError. Retirement does not exist here: a username that is not in
the user table is not found.
"""

from django.contrib.auth import get_user_model


def get_potentially_retired_user_by_username(username):
    """The user called ``username``; raises ``DoesNotExist`` as edx-platform's does."""
    return get_user_model().objects.get(username=username)

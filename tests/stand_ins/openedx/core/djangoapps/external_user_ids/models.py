"""
Stand-in for edx-platform's ``openedx.core.djangoapps.external_user_ids.models``
(not on PyPI), imported by event-routing-backends to build the xAPI actor.

edx-platform stores one random UUID per (user, type) in a table; this stand-in
derives it from the user id instead (uuid5), which gives the same property the
xAPI statements need -- one stable anonymous id per user and type -- without a
model and migration of its own.
"""

import uuid
from dataclasses import dataclass

_NAMESPACE = uuid.UUID("5b9d8c8e-4a36-4a9a-9f53-2b0a3c1d7e61")


class ExternalIdType:
    """The id types event-routing-backends asks for."""

    XAPI = "xapi"
    CALIPER = "caliper"
    LTI = "lti"


@dataclass(frozen=True)
class ExternalId:
    """One user's anonymous id of one type."""

    external_user_id: uuid.UUID

    @classmethod
    def add_new_user_id(cls, user, type_name):
        """``(ExternalId, created)`` as edx-platform returns it."""
        return cls(uuid.uuid5(_NAMESPACE, f"{type_name}:{user.pk}")), False

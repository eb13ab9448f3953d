"""
The demo LMS's database, prepared as a Tutor deployment's is before traffic flows:
migrated, with learners, and an xAPI ``RouterConfiguration`` pointing at the LRS.

Runs inside the demo process after ``django.setup()``; the Celery worker shares
the same SQLite file (``ASPECTS_TEST_DB``).
"""

from __future__ import annotations

import io

#: Learners the burst's events are attributed to (user ids 1..LEARNERS).
LEARNERS = 50


def _case_insensitive_backend_names(connection, model) -> None:
    """
    Give ``RouterConfiguration.backend_name`` MySQL's case-insensitive comparison.

    edx-platform runs on MySQL, whose default collation compares case-insensitively,
    and event-routing-backends relies on it (routers are stored as ``"xAPI"`` and
    looked up as ``"xapi"``). SQLite compares bytes; without this no router matches.
    """
    table = model._meta.db_table  # pylint: disable=protected-access
    with connection.cursor() as cursor:
        sql = cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [table]).fetchone()[0]
        column = '"backend_name" varchar(50) NOT NULL'
        if column not in sql:
            return
        cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_binary"')
        cursor.execute(sql.replace(column, f"{column} COLLATE NOCASE"))
        cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{table}_binary"')
        cursor.execute(f'DROP TABLE "{table}_binary"')


def prepare_database(lrs_statements_url: str, log) -> int:
    """Migrate, add :data:`LEARNERS` learners and an enabled xAPI router to ``lrs_statements_url``; return the number of migrations' output lines."""
    # pylint: disable=import-outside-toplevel
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from event_routing_backends.models import RouterConfiguration

    output = io.StringIO()
    call_command("migrate", "--noinput", stdout=output, stderr=output)
    log.write(output.getvalue())
    if connection.vendor == "sqlite":
        _case_insensitive_backend_names(connection, RouterConfiguration)
    users = get_user_model()
    users.objects.bulk_create(
        [users(id=i, username=f"learner{i}", email=f"learner{i}@example.com") for i in range(1, LEARNERS + 1)]
    )
    RouterConfiguration.objects.create(
        backend_name=RouterConfiguration.XAPI_BACKEND, enabled=True, route_url=lrs_statements_url
    )
    return len(output.getvalue().splitlines())

"""Router decisions (pure) and the memoizing callable."""

from types import SimpleNamespace

from aspects_routing.conf import parse
from aspects_routing.routing.router import decide_queue, route_task

CONFIG = parse(
    {
        "QUEUE": "edx.lms.core.aspects",
        "EXTRA_TASKS": ["my_plugin.tasks.*"],
        "TASK_QUEUES": {"event_routing_backends.tasks.dispatch_bulk_*": "edx.lms.core.bulk"},
    },
    SimpleNamespace(HIGH_PRIORITY_QUEUE="edx.lms.core.high"),
)


def test_decisions():
    assert decide_queue("eventtracking.tasks.send_event", CONFIG) == "edx.lms.core.aspects"
    assert decide_queue("event_routing_backends.tasks.dispatch_bulk_events", CONFIG) == "edx.lms.core.bulk"
    assert decide_queue("my_plugin.tasks.anything", CONFIG) == "edx.lms.core.aspects"
    assert decide_queue("lms.djangoapps.grades.tasks.compute_grades", CONFIG) is None
    # fnmatch is case-sensitive here: task names are.
    assert decide_queue("EVENTTRACKING.tasks.send_event", CONFIG) is None


def test_explicit_queues_entry_wins():
    explicit = {"eventtracking.tasks.send_event": {"queue": "edx.lms.core.low"}}
    assert decide_queue("eventtracking.tasks.send_event", CONFIG, explicit) is None


def test_no_queue_configured_means_no_route():
    config = parse({}, SimpleNamespace())
    assert decide_queue("eventtracking.tasks.send_event", config) is None


def test_router_returns_fresh_route_dicts_and_follows_settings(settings):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.x"}
    first = route_task("eventtracking.tasks.send_event", (), {}, {})
    assert first == {"queue": "edx.lms.core.x"}
    first.pop("queue")  # Celery pops it; the memo must not be affected.
    assert route_task("eventtracking.tasks.send_event", (), {}, {}) == {"queue": "edx.lms.core.x"}
    assert route_task("tests.tasks.platform_task", (), {}, {}) is None
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.y"}
    assert route_task("eventtracking.tasks.send_event", (), {}, {}) == {"queue": "edx.lms.core.y"}


def test_install_router_refreshes_a_router_celery_already_built():
    """Something published before Django was ready: Celery built and cached its Router."""
    from celery import Celery  # pylint: disable=import-outside-toplevel

    from aspects_routing.routing.install import install_router  # pylint: disable=import-outside-toplevel

    app = Celery("early", broker="memory://", set_as_current=False)
    app.conf.task_routes = {"eventtracking.tasks.send_event": {"queue": "old"}}
    built_early = app.amqp.router  # cached by Celery
    assert install_router(app) is True
    assert app.amqp.router is not built_early
    assert app.amqp.router.routes[0] is route_task
    assert install_router(app) is False  # idempotent

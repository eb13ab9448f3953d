"""
Queue depth read from the broker: ``LLEN`` on a Redis broker.

Kombu's Redis transport keeps a queue as a list named after it, plus one list
per priority step (``<queue>\\x06\\x16<n>`` for 3, 6 and 9); the depth is the sum.
Other brokers report every queue as unavailable (RabbitMQ's management API is
not queried).
"""

from __future__ import annotations

from aspects_routing.redaction import describe_error, parse_url

#: Kombu's Redis transport: separator and priority steps of its per-priority lists.
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


def broker_url() -> str | None:
    """The running Celery app's broker URL (read at call time)."""
    from celery import current_app  # pylint: disable=import-outside-toplevel

    url = current_app.conf.broker_url
    if isinstance(url, (list, tuple)):  # failover list: the first is the one in use
        url = url[0] if url else None
    return url if isinstance(url, str) and url else None


def queue_depths(queues, timeout: float = 0.5, url: str | None = None) -> dict[str, int | str]:
    """
    ``{queue: messages waiting}`` from the Redis broker, in one round trip.

    Never raises: when the depth cannot be read, each queue maps to a string
    ``"unavailable: <reason>"`` (credentials never appear in it).
    """
    queues = list(dict.fromkeys(queues))
    if not queues:
        return {}
    try:
        url = url or broker_url()
    except Exception as exc:  # pylint: disable=broad-except
        return dict.fromkeys(queues, f"unavailable: no Celery broker URL ({exc.__class__.__name__})")
    if not url:
        return dict.fromkeys(queues, "unavailable: no Celery broker URL")
    address = parse_url(url, "CELERY_BROKER_URL")
    if not address.ok:
        return dict.fromkeys(queues, f"unavailable: {address.failure('')}")
    if address.scheme not in ("redis", "rediss", "unix"):
        return dict.fromkeys(queues, f"unavailable: broker is {address.scheme}, depth is read only from Redis")
    try:
        import redis  # pylint: disable=import-outside-toplevel
        from redis.backoff import NoBackoff  # pylint: disable=import-outside-toplevel
        from redis.retry import Retry  # pylint: disable=import-outside-toplevel

        client = redis.Redis.from_url(
            address.url(), socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        try:
            pipe = client.pipeline(transaction=False)
            for queue in queues:
                pipe.llen(queue)
                for step in _PRIORITY_STEPS:
                    pipe.llen(f"{queue}{_PRIORITY_SEP}{step}")
            lengths = pipe.execute()
        finally:
            client.close()
    except Exception as exc:  # pylint: disable=broad-except
        # Library messages may echo the URL: only the mapped reason, the setting and the host are shown.
        return dict.fromkeys(queues, f"unavailable: {address.failure(describe_error(exc, address.secrets))}")
    per_queue = 1 + len(_PRIORITY_STEPS)
    return {q: int(sum(lengths[i * per_queue : (i + 1) * per_queue])) for i, q in enumerate(queues)}

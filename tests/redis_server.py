"""
pytest plugin (``-p tests.redis_server``): make sure a Redis is there.

If ``REDIS_URL`` is set (CI sets it to the machine's Redis), it is used as is
and must answer: a missing service fails the run instead of skipping tests.
Otherwise a private ``redis-server`` is started with pytest-redis's executor
and ``REDIS_URL`` points at it. This happens at plugin import, because the
Django test settings read ``REDIS_URL`` before any fixture runs.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import redis
from port_for import get_port
from pytest_redis.executor import RedisExecutor


def start_private_redis(prefix: str = "aspects-routing-redis-") -> tuple[RedisExecutor, str]:
    """Start a private ``redis-server`` on a free port; return its executor and URL (DB 0)."""
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError(
            "REDIS_URL is not set and no redis-server is installed: "
            "install Redis (apt-get install redis-server) or set REDIS_URL."
        )
    port = get_port(None)
    executor = RedisExecutor(
        executable=binary,
        databases=16,
        redis_timeout=30,
        loglevel="warning",
        host="127.0.0.1",
        port=port,
        datadir=Path(tempfile.mkdtemp(prefix=prefix)),
        save="",
        appendonly="no",
    )
    executor.start()
    atexit.register(executor.stop)
    return executor, f"redis://127.0.0.1:{port}/0"


if not os.environ.get("REDIS_URL"):
    os.environ["REDIS_URL"] = start_private_redis()[1]


def pytest_configure(config):  # pylint: disable=unused-argument
    """Fail early and clearly if the Redis that tests need does not answer."""
    url = os.environ["REDIS_URL"]
    try:
        redis.Redis.from_url(url, socket_timeout=5).ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis at REDIS_URL={url!r} does not answer: {exc}") from exc

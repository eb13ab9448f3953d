"""
The install path (router + queue declaration at ``ready()``) against real workers
started the way Tutor starts ``lms-worker`` and ``cms-worker``, with ``-Q`` and
with ``--exclude-queues``, on every supported Celery.

The workers run ``celery --app=lms.celery`` / ``--app=cms.celery`` exactly as
Tutor's containers do (``tests/platform`` holds those two modules, built like
edx-platform's), with the service's own queue names and a dedicated Aspects
queue (``tests/platform``: ``lms.envs.minimal``, ``cms.envs.minimal``). Which queues a worker consumes
is asked from the worker itself (``inspect().active_queues()``).

Celery versions: the one installed with the tests, and the celery-compat tier's
lean virtualenvs (``make celery-compat-env``): Celery 5.4 with Django 4.2, and 5.5.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery import Celery

from tests import tiers
from tests.conftest import Worker, wait_for

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "tests" / "platform"

# Tutor's docker-compose commands (``%%h`` there is compose's escape of Celery's ``%h``).
TUTOR_WORKER = {
    "lms": "celery --app=lms.celery worker --loglevel=info --hostname=edx.lms.core.default.%h "
    "--max-tasks-per-child=100 --exclude-queues=edx.cms.core.default",
    "cms": "celery --app=cms.celery worker --loglevel=info --hostname=edx.cms.core.default.%h "
    "--max-tasks-per-child 100 --exclude-queues=edx.lms.core.default",
}

# (service, extra args appended to Tutor's command or replacing its selection, Aspects queue consumed?)
CASES = {
    "tutor-lms-worker": ("lms", TUTOR_WORKER["lms"], True),
    "tutor-cms-worker": ("cms", TUTOR_WORKER["cms"], True),
    "dash-q-without-aspects": ("lms", "celery --app=lms.celery worker --loglevel=info -Q edx.lms.core.default", False),
    "dash-q-aspects-only": ("cms", "celery --app=cms.celery worker --loglevel=info -Q edx.cms.core.aspects", True),
    "exclude-aspects": (
        "lms",
        TUTOR_WORKER["lms"].replace("--exclude-queues=edx.cms.core.default",
                                    "--exclude-queues=edx.cms.core.default,edx.lms.core.aspects"),
        False,
    ),
}


class PlatformWorker(Worker):
    """A ``celery --app=lms.celery|cms.celery worker`` command line run as is (stopped and logged like the conftest's)."""

    def __init__(self, argv, env, log_path):  # pylint: disable=super-init-not-called
        self.log_path = log_path
        self._log = open(log_path, "wb")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            argv, cwd=log_path.parent, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )


def _python(celery: str) -> str:
    if celery == "installed":
        return sys.executable
    return str(tiers.require(f"celery{celery.replace('.', '')}") / "bin" / "python")


def _declared(service: str) -> set[str]:
    return {f"edx.{service}.core.{name}" for name in ("high", "default", "high_mem", "aspects")}


@pytest.mark.slow
@pytest.mark.parametrize("celery", ["installed", "5.4", "5.5"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_worker_consumes_what_tutor_and_the_operator_expect(celery, case, redis_url, redis_client, tmp_path):
    service, command, aspects_consumed = CASES[case]
    python = _python(celery)
    args = shlex.split(command)
    assert args[0] == "celery"
    node = f"{case}-{uuid.uuid4().hex[:8]}"
    # The node name must be unique on this broker: the hostname Tutor passes, plus a suffix.
    args = [a.replace("%h", f"{node}@%h") if a.startswith("--hostname=") else a for a in args]
    if "--hostname=" not in command:
        args += [f"--hostname={node}@%h"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PLATFORM), str(ROOT)]),  # lms/cms stand-ins, aspects_routing
        "DJANGO_SETTINGS_MODULE": f"{service}.envs.minimal",
        "SERVICE_VARIANT": service,  # as Tutor's containers set it
        "REDIS_URL": redis_url,
    }
    worker = PlatformWorker([python, "-m", *args], env, tmp_path / "worker.log")
    try:
        worker.wait_ready(timeout=90)
        version = subprocess.run([python, "-c", "import celery; print(celery.__version__)"], check=True,
                                 capture_output=True, text=True).stdout.strip()
        if celery != "installed":
            assert version.startswith(celery), version

        # Not the current app: the test LMS's app must stay current for the tests that run after this one.
        client = Celery(broker=redis_url, set_as_current=False)
        answers = {}

        def answered():
            answers.update(client.control.inspect(timeout=2).active_queues() or {})
            return any(node in name for name in answers)

        assert wait_for(answered, timeout=60), worker.log()
        (queues,) = [q for name, q in answers.items() if node in name]
        consumed = {q["name"] for q in queues}
        aspects = f"edx.{service}.core.aspects"
        assert (aspects in consumed) is aspects_consumed, (version, consumed)
        if "-Q" in args:
            assert consumed == {args[args.index("-Q") + 1]}, (version, consumed)
        else:
            excluded = {q for a in args if a.startswith("--exclude-queues=") for q in a.split("=", 1)[1].split(",")}
            # Without -Q: every declared queue of this service (the Aspects one included) but the excluded.
            assert consumed == _declared(service) - excluded, (version, consumed)
        assert "Traceback" not in worker.log(), worker.log()
    finally:
        worker.stop()

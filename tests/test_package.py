"""
aspects-routing as a real package: ``python -m build`` makes an sdist and a wheel
that ``twine check`` accepts; the wheel installs into a clean Python 3.11
virtualenv next to the LMS's own pins (``requirements/lms-pins.txt``, from
edx-platform's ``requirements/edx/base.txt``), registers itself through the
``lms.djangoapp`` entry point and passes ``manage.py check``; and the Git URL
form of the README's install section installs the same package.

A heavy tier: ``make package-env`` (build and twine); the clean virtualenv is
made with ``python3.11`` and filled from PyPI by pip, as an operator's would be.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import tiers

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

# An LMS with only the packages the wheel pulls in, laid out as edx-platform's: ``lms/__init__.py``
# imports the Celery app, the settings live under ``lms.envs``, and the plugin comes in
# through its ``lms.djangoapp`` entry point (edx_django_utils.plugins).
LMS_FILES = {
    "lms/__init__.py": "from lms.celery import APP as CELERY_APP  # noqa: F401\n",
    "lms/celery.py": """
        import os
        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms.envs.check")
        APP = Celery("proj")
        APP.conf.task_protocol = 1
        APP.config_from_object("django.conf:settings")
        APP.autodiscover_tasks()
    """,
    "lms/envs/__init__.py": "",
    "lms/envs/check.py": """
        from edx_django_utils.plugins import add_plugins, get_plugin_apps

        SECRET_KEY = "package-test-only"
        USE_TZ = True
        ROOT_URLCONF = "lms.urls"
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
        INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", *get_plugin_apps("lms.djangoapp")]
        HIGH_PRIORITY_QUEUE = "edx.lms.core.high"
        CELERY_DEFAULT_QUEUE = "edx.lms.core.default"
        CELERY_QUEUES = {"edx.lms.core.high": {}, "edx.lms.core.default": {}}
        BROKER_URL = "redis://127.0.0.1:6379/9"
        ENV_TOKENS = {}
        add_plugins(__name__, "lms.djangoapp", "common")
        add_plugins(__name__, "lms.djangoapp", "production")
    """,
    "lms/urls.py": """
        from edx_django_utils.plugins import get_plugin_url_patterns

        urlpatterns = get_plugin_url_patterns("lms.djangoapp")
    """,
}
#: The Aspects tasks this LMS lacks: their packages (event-tracking, event-routing-backends,
#: platform-plugin-aspects) are the platform's, not this package's requirements; W050 says so.
MISSING_TASKS = 6


def run(*args, cwd=None, env=None, timeout=600):
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The sdist and the wheel, built from this checkout."""
    tools = tiers.require("package")
    out = tmp_path_factory.mktemp("dist")
    run(tools / "bin" / "python", "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0], "tools": tools}


def test_sdist_and_wheel_pass_twine_check(dist):
    result = run(dist["tools"] / "bin" / "twine", "check", "--strict", dist["wheel"], dist["sdist"])
    assert result.stdout.count("PASSED") == 2, result.stdout
    listing = run(sys.executable, "-m", "zipfile", "-l", dist["wheel"]).stdout
    assert "aspects_routing-" in listing and "licenses/LICENSE" in listing
    assert "aspects_routing/management/commands/aspects_scaling_report.py" in listing
    assert "tests/" not in listing and "demo/" not in listing


def test_wheel_installs_next_to_the_lms_pins_and_passes_check(dist, tmp_path):
    python311 = tiers.require_binary("python3.11", "install Python 3.11 (the Python edx-platform's pins are compiled for)")
    venv = tmp_path / "lms-venv"
    run(python311, "-m", "venv", venv)
    pip = venv / "bin" / "pip"
    # pip sees neither this checkout (its egg-info would count as installed) nor the test's environment;
    # pip's own configuration (index, certificates) is kept.
    pip_env = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in ("HOME", "LANG")}
    pip_env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    run(pip, "install", "-q", "-c", ROOT / "requirements" / "lms-pins.txt", dist["wheel"], cwd=tmp_path, env=pip_env,
        timeout=900)
    run(pip, "check", cwd=tmp_path, env=pip_env)
    site = tmp_path / "edx-platform"
    for name, text in LMS_FILES.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(textwrap.dedent(text))
    # Nothing of this checkout on the path: only the venv and the modules above.
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(site), "DJANGO_SETTINGS_MODULE": "lms.envs.check"}
    versions = run(venv / "bin" / "python", "-c",
                   "import celery, django, aspects_routing; print(django.__version__, celery.__version__, "
                   "aspects_routing.__file__)", cwd=site, env=env).stdout.split()
    assert versions[:2] == ["5.2.10", "5.6.2"], versions  # the LMS's pins, not whatever is newest
    assert str(venv) in versions[2]  # the installed wheel, not this checkout
    check = run(venv / "bin" / "python", "-m", "django", "check", cwd=site, env=env)
    assert_checked(check)
    commands = run(venv / "bin" / "python", "-m", "django", "help", "--commands", cwd=site, env=env).stdout.split()
    assert {"aspects_scaling_report", "aspects_scaling_config"} <= set(commands)

    # The README's Git URL form installs the same package (here from this checkout's committed HEAD).
    run(pip, "install", "-q", "--no-deps", "--force-reinstall", f"git+file://{ROOT}", cwd=tmp_path,
        env=pip_env, timeout=900)
    assert_checked(run(venv / "bin" / "python", "-m", "django", "check", cwd=site, env=env))


def assert_checked(check):
    """``check`` passed: no error, and no warning but W050 for each Aspects task whose package is absent."""
    output = check.stdout + check.stderr
    ids = re.findall(r"\(([a-z_.]+\.[EW]\d+)\)", output)
    assert ids == ["aspects_routing.W050"] * MISSING_TASKS, output
    assert f"System check identified {MISSING_TASKS} issues" in output, output

"""
Heavy test tiers: real tools that live in their own pinned virtualenvs or Debian packages.

A tier (real Tutor + kustomize, real Superset, real Ralph, real Prometheus...) is
prepared by a ``make <tier>-env`` target that builds ``.venv-<tier>`` from a lock
under ``requirements/``. Tests of a tier call :func:`require` first:

* the tier is there: its location is returned;
* it is missing on a user's machine: the test is skipped with a message saying
  how to prepare it;
* it is missing and ``ASPECTS_REQUIRE_TIERS=1`` (``.ci/run`` sets it): the test
  fails, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def required() -> bool:
    """True where every tier must be present (CI)."""
    return os.environ.get("ASPECTS_REQUIRE_TIERS", "") not in ("", "0")


def missing(message: str) -> None:
    """Skip (user's machine) or fail (CI) with ``message``."""
    if required():
        pytest.fail(f"{message} (ASPECTS_REQUIRE_TIERS is set: tiers must not be skipped)", pytrace=False)
    pytest.skip(message)


def require(tier: str, marker: str = "bin/python") -> Path:
    """The virtualenv of ``tier`` (``.venv-<tier>``, or ``$ASPECTS_<TIER>_VENV``), or skip/fail."""
    env_name = f"ASPECTS_{tier.upper().replace('-', '_')}_VENV"
    venv = Path(os.environ.get(env_name) or ROOT / f".venv-{tier}")
    if not (venv / marker).exists():
        missing(f"the {tier} tier is not installed at {venv}: run `make {tier}-env` (or set {env_name})")
    return venv


def require_binary(name: str, how: str) -> str:
    """The path of executable ``name``, or skip/fail saying ``how`` to install it."""
    path = shutil.which(name)
    if not path:
        missing(f"{name} is not installed: {how}")
    return path

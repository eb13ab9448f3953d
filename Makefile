# aspects-routing developer tasks.
#   make demo     the scaling report on an embedded default (no external services)
#   make test     system checks + the test suite (needs redis-server installed, or REDIS_URL)
#   make upgrade  recompile requirements/*.txt from requirements/*.in
#   make superset-env / ralph-env  the real Superset 6.1 / Ralph 5 tiers (.venv-superset, .venv-ralph)
#   make tutor-env  the Tutor 21 and 22 tiers (.venv-tutor21, .venv-tutor22) for tests/test_tutor_build.py
#   make celery-compat-env  Celery 5.4 and 5.5 tiers (.venv-celery54/55) for tests/test_worker_compat.py
#   make package-env  build + twine tier (.venv-package) for tests/test_package.py

.PHONY: demo test bench upgrade clean tutor-env tutor21-env tutor22-env

VENV ?= .venv
# Python 3.12, as current Open edX runs; found on PATH or through pyenv.
PYTHON ?= $(shell for c in python3.12 "env PYENV_VERSION=3.12.1 python3.12"; do \
	$$c -c 'import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)' 2>/dev/null && break; done)
# The operators' CRDs that generated configs are validated against (altinity/, keda/).
ASPECTS_SCHEMAS_DIR ?= $(abspath ../shared/schemas)
export ASPECTS_SCHEMAS_DIR
PIP_COMPILE = $(VENV)/bin/pip-compile -q --allow-unsafe --no-strip-extras --no-emit-index-url --no-emit-find-links

$(VENV)/.installed: requirements/test.txt setup.py
	@test -n "$(PYTHON)" || { echo "Python 3.12 not found: install it, or run make PYTHON=/path/to/python3.12"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements/test.txt -e .
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/python -m demo

test: $(VENV)/.installed
	PYTHONPATH=. $(VENV)/bin/python -m django check --settings=tests.settings.edx_order
	PYTHONPATH=. $(VENV)/bin/python -m pytest

bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do PYTHONPATH=. $(VENV)/bin/python $$b || exit 1; done

upgrade: $(VENV)/.installed
	$(VENV)/bin/pip install -q pip-tools
	cd requirements && for f in base test dev; do ../$(PIP_COMPILE) -o $$f.txt $$f.in || exit 1; done
	@echo "requirements/test-py311.txt (tox's Python 3.11 envs) is compiled the same way from a Python 3.11"
	@echo "virtualenv with pip-tools: pip-compile ... -o test-py311.txt test.in"

# The tutor tier: real Tutor + Aspects + pod-autoscaling + celery, one venv per release line,
# installed from complete locks with --no-deps (Tutor 22's lock forces aspects 6.1.0 past its click pin).
tutor-env: tutor21-env tutor22-env
tutor21-env: .venv-tutor21/.installed
tutor22-env: .venv-tutor22/.installed

# Every tier venv (.venv-<tier>) is built the same way: a fresh venv, then its complete lock
# (requirements/<tier>.txt) installed with --no-deps, so what is tested is exactly what is pinned.
.venv-%/.installed: requirements/%.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12 not found: install it, or run make PYTHON=/path/to/python3.12"; exit 1; }
	rm -rf .venv-$*
	$(PYTHON) -m venv .venv-$*
	.venv-$*/bin/pip install -q --no-deps -r requirements/$*.txt
	touch $@

# The superset and ralph tiers: real Superset 6.1 (tests/test_superset_tier.py) and real Ralph 5
# (tests/test_ralph_tier.py), each installed from a complete pip-freeze lock with --no-deps.
.PHONY: superset-env ralph-env
superset-env: .venv-superset/.installed
ralph-env: .venv-ralph/.installed

# The celery-compat tier: lean Celery 5.4 (with Django 4.2) and Celery 5.5 virtualenvs in
# which tests/test_worker_compat.py starts LMS and CMS workers the way Tutor does; aspects-routing is
# imported from the checkout (PYTHONPATH), so only its requirements are installed, from pip-freeze locks.
.PHONY: celery-compat-env
celery-compat-env: .venv-celery54/.installed .venv-celery55/.installed

# The prometheus tier: Debian's prometheus package (prometheus and promtool) for
# tests/test_monitoring_rules.py and tests/test_monitoring_prometheus.py, which run their own server
# on a free port; the packaged service is stopped and disabled so it never holds port 9090.
.PHONY: prometheus-env
prometheus-env:
	command -v prometheus >/dev/null && command -v promtool >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }
	-systemctl disable --now prometheus >/dev/null 2>&1 || true

# The package tier: build + twine (and setuptools/wheel for --no-isolation builds) for
# tests/test_package.py, which builds the sdist and wheel, checks them, and installs the
# wheel into a clean Python 3.11 virtualenv next to the LMS's pins (requirements/lms-pins.txt).
.PHONY: package-env
package-env: .venv-package/.installed

# Every heavy tier; .ci/run builds them all, then runs `make test` with ASPECTS_REQUIRE_TIERS=1
# so a missing tier fails instead of skipping.
.PHONY: tiers
tiers: tutor-env superset-env ralph-env celery-compat-env package-env prometheus-env

clean:
	rm -rf $(VENV) .venv-*/ build dist *.egg-info

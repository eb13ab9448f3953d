# aspects-routing developer tasks.
#   make demo     the scaling report on an embedded default (no external services)
#   make test     system checks + the test suite (needs redis-server installed, or REDIS_URL)
#   make upgrade  recompile requirements/*.txt from requirements/*.in

.PHONY: demo test bench upgrade clean

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

clean:
	rm -rf $(VENV) build dist *.egg-info

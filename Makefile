# Two commands for a newcomer: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Anything that opens WebRTC runs in a private network namespace with only loopback up,
# so no packet can leave this machine (see DEVELOPERS.md, "The network rule").
LOOPBACK_ONLY := unshare --net $(if $(filter 0,$(shell id -u)),,--map-root-user) \
	sh -c 'ip link set lo up && exec "$$0" "$$@"'

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(STAMP)
	$(PY) server.py $(ARGS)

test: lint typecheck pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

pytest: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(LOOPBACK_ONLY) $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(LOOPBACK_ONLY) sh -c 'for b in bench/[!_]*.py; do $(PY) "$$b" || exit 1; done'

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

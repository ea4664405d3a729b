# Two commands for a newcomer: `make run` and `make test`. Both create .venv when it is missing;
# `make test` also installs the Debian packages the tests use (`make deps`); `make run` needs none.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# What the tests need beyond pip: Debian's Chromium (browser tests), iproute2 and util-linux
# (`ip` and `unshare`, for the loopback-only namespace below), a font for the page's text,
# Orthanc with its DICOMweb plugin (the PACS tests start their own instances) and dicom3tools
# (`dciodvfy` validates the DICOM SEG files the server writes).
SYSTEM_PACKAGES := chromium iproute2 util-linux fonts-dejavu-core orthanc orthanc-dicomweb \
	dicom3tools

# Anything that opens WebRTC runs in a private network namespace with only loopback up, so no
# packet can leave this machine (README, "Tests").
LOOPBACK_ONLY := unshare --net $(if $(filter 0,$(shell id -u)),,--map-root-user) \
	sh -c 'ip link set lo up && exec "$$0" "$$@"'

# Committed files larger than this fail the lint step (binaries and data belong outside the
# repository), except the vendored API-documentation bundles and the README's screenshot.
MAX_FILE_BYTES := 1048576

.PHONY: run test deps lint typecheck pytest bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(STAMP)
	$(PY) server.py $(ARGS)

test: deps lint typecheck pytest

# Installs the missing SYSTEM_PACKAGES with apt-get when run as root; otherwise names them and
# the command that installs them, and stops. Services the packages would start on installation
# (Orthanc on 8042/4242) are kept from starting (policy-rc.d): nothing relies on them.
deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	missing=$$(echo $$missing); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "make test needs these Debian packages: $$missing - install them with 'sudo apt-get install $$missing' and run make test again." >&2; \
			exit 1; \
		fi; \
		echo "installing Debian packages: $$missing"; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
			trap 'rm -f /usr/sbin/policy-rc.d' EXIT; \
		fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	@big=$$(git ls-files -z 2>/dev/null | xargs -0 -r stat -c '%s %n' 2>/dev/null \
		| awk '$$1 > $(MAX_FILE_BYTES) {print $$2}' | grep -v -E '^(static/vendor|docs)/' || true); \
	if [ -n "$$big" ]; then \
		echo "committed files over $(MAX_FILE_BYTES) bytes (keep binaries and data out of the repository): $$big" >&2; \
		exit 1; \
	fi

typecheck: $(STAMP)
	$(PY) -m mypy

pytest: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(LOOPBACK_ONLY) $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(LOOPBACK_ONLY) sh -c 'for b in bench/[!_]*.py; do $(PY) "$$b" || exit 1; done'

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# The two set-up commands of the README:
#   make demo   bring up the local stack and provision the sample GP practice end to end
#   make test   lint, type-check and run the whole test suite (what .ci/run calls)
PYTHON ?= python3
SAMPLE ?= starter_excel_samples/hausarztpraxis-mueller.xlsx
PIP_FLAGS ?= -q --disable-pip-version-check

.PHONY: install lock stack demo lint test unit test-deps

install:
	$(PYTHON) -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev,fleet]'

# Pin what this machine has installed (after an upgrade and a green `make test`).
lock:
	$(PYTHON) scripts/lock_constraints.py

stack: install
	smartpraxx-provision dev-stack up

demo: stack
	smartpraxx-provision provision $(SAMPLE) --yes

lint: install
	ruff check smartpraxx_provision tests benchmarks starter_excel_samples scripts
	mypy

unit: install
	$(PYTHON) -m pytest tests/unit -q

# The tests reuse the Keycloak that `dev-stack up` started (same state dir and port).
SETTING = $(PYTHON) -c 'import sys; from smartpraxx_provision.config import load_settings; print(getattr(load_settings(), sys.argv[1]))'

# Servers the tests run for real besides the stack: PostgreSQL (team inventory) and Caddy;
# headless Chromium + chromedriver and certutil (NSS) for the browser tests.
test-deps:
	@if ! command -v caddy >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql caddy; \
	fi
	@if ! test -x /usr/bin/chromium || ! test -x /usr/bin/chromedriver || ! command -v certutil >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver libnss3-tools; \
	fi

test: test-deps stack lint
	SMARTPRAXX_TEST_KEYCLOAK_STATE="$$($(SETTING) state_dir)" \
	SMARTPRAXX_TEST_KEYCLOAK_PORT="$$($(SETTING) keycloak_port)" \
	SMARTPRAXX_REQUIRE_STACK=1 \
	$(PYTHON) -m pytest -q

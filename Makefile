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

# The demo runs behind the local TLS proxy (https://*.smartpraxx.localhost:8443, Caddy's
# local CA) in a state dir of its own, so it never restarts the test stack's Keycloak.
DEMO_STATE ?= $(HOME)/.local/share/smartpraxx-demo
DEMO_ENV = SMARTPRAXX_STATE_DIR=$(DEMO_STATE) SMARTPRAXX_KEYCLOAK_PORT=8181 \
	SMARTPRAXX_KEYCLOAK_URL=http://127.0.0.1:8181 SMARTPRAXX_SMTP_PORT=2526 \
	SMARTPRAXX_DOMAIN=smartpraxx.localhost SMARTPRAXX_IDENTITY_HOST=mein.smartpraxx.localhost \
	SMARTPRAXX_PUBLIC_SCHEME=https SMARTPRAXX_PROXY_PORT=8443

demo: install
	$(DEMO_ENV) smartpraxx-provision dev-stack up
	$(DEMO_ENV) smartpraxx-provision provision $(SAMPLE) --yes
	@echo "Open the start page and Nextcloud URLs above in a browser on this machine;"
	@echo "trust Caddy's local CA: $(DEMO_STATE)/proxy/caddy/data/caddy/pki/authorities/local/root.crt"
	@echo "Same settings for further commands: env $(DEMO_ENV) smartpraxx-provision ..."

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
	$(PYTHON) -m pytest -q --durations=40

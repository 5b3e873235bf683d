# Two entry points for a fresh machine (Debian, Python >= 3.11, root or sudo for apt):
#   make bench   set up and run the default benchmark
#   make test    set up and run the test suite (what .ci/run runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := chromium prometheus

.PHONY: bench test setup setup-test system-packages lint mutation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e .

setup-test: $(BIN)/python system-packages
	$(BIN)/pip install --quiet -e '.[test,cluster]'

# Chromium (browser tests, driven by Playwright with executable_path; no browser
# download) and Prometheus/promtool (metrics tests). Installed only when missing.
system-packages:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench: setup
	$(BIN)/cloudarcade bench

# pytest exits 5 when it collected no tests: that is a failure here. Two workers
# (pytest-xdist), a test file per worker: the suite mostly waits on sockets,
# browsers and servers (2 min of CPU in 5 min of wall time on one worker).
test: setup-test
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$rc

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/mypy

# Break the marker flip, the netsim delay, spectator isolation and codec
# validation one at a time, in temporary copies of the tree; the tests must fail.
mutation: setup-test
	$(BIN)/python tools/mutation.py

# Set-up, demo and tests. Everything installs what it needs on a fresh Debian machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test setup mosquitto vermin unit integration clean deb

demo: setup
	$(PY) demo/demo.py

test: setup vermin
	$(PY) -m pytest -q tests

unit: setup
	$(PY) -m pytest -q tests/unit

integration: setup
	$(PY) -m pytest -q tests/integration

vermin: setup
	$(VENV)/bin/vermin -q -t=3.7- --violations --eval-annot --no-tips thingsboard_gateway

setup: mosquitto $(VENV)/.installed

mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq mosquitto mosquitto-clients openssl socat)
	@command -v socat >/dev/null 2>&1 || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq socat)
	@# For the .deb tests: lintian, and the Debian packages the .deb depends on.
	@command -v lintian >/dev/null 2>&1 && /usr/bin/python3 -c "import lxml, dateutil, pytz, serial, six" 2>/dev/null || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq lintian python3-lxml python3-dateutil \
		 python3-tz python3-serial python3-six) || echo "(optional .deb test tools not installed)"

$(VENV)/.installed: setup.py requirements-test.txt
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e . -r requirements-test.txt
	touch $@

deb: setup
	debian/build-deb.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache demo-work

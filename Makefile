# Set-up, demo and tests. Everything installs what it needs on a fresh Debian machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The integration tests run a second time with the gateway installed in a Python 3.7
# environment that holds only the package and its runtime dependencies (tests/py37/envs.sh).
GATEWAY37_TESTS := $(addprefix tests/integration/,test_mqtt_connector.py test_mqtt_kill.py test_gateway_kill.py \
	test_modbus_connector.py test_opcua_connector.py test_gateway_platform.py test_outage.py test_supervision.py \
	test_security.py test_dry_run.py test_storage_cli.py test_report_strategies.py \
	test_modbus_server.py test_remote_management.py test_opcua_scale.py test_never_stuck.py test_liveness.py \
	test_connector_changes.py test_gateway_pages.py test_provisioning.py test_snmp_connector.py \
	test_software_update.py)
# Of the serial, socket, REST, request and BLE files, the tests that run a gateway process
# (the others run the connector inside the test's own interpreter).
GATEWAY37_CONNECTOR_TESTS := $(addprefix tests/integration/,test_serial_connector.py test_socket_connector.py \
	test_rest_connector.py test_request_connector.py test_ble_connector.py)

.PHONY: demo test test37 quick setup mosquitto vermin unit integration clean deb

demo: setup
	$(PY) demo/demo.py

# The gateway-on-3.7 run goes alongside the main run (both mostly wait on their peers, and
# one after the other they took 13 of the 15 minutes the suite may take on 2 cores); its
# output follows the main run's.
test: setup vermin
	tests/py37/envs.sh
	@log=$$(mktemp); $(MAKE) --no-print-directory test37 >$$log 2>&1 & t37=$$!; \
	trap 'kill $$t37 2>/dev/null; rm -f $$log' EXIT; \
	TB_GW_TEST_BUSTER_PYTHON=$$([ -x .venv-buster37/bin/python ] && echo $(CURDIR)/.venv-buster37/bin/python) \
		$(PY) -m pytest -q tests; main=$$?; \
	wait $$t37; code37=$$?; cat $$log; \
	[ $$main -eq 0 ] && [ $$code37 -eq 0 ]

# The gateway on Python 3.7 (the tests themselves run on the machine's Python).
test37:
	@if [ -x .venv37/bin/thingsboard-gateway ]; then \
		echo "== the gateway on $$(.venv37/bin/python --version) with only its runtime dependencies"; \
		TB_GW_TEST_GATEWAY=$(CURDIR)/.venv37/bin/thingsboard-gateway $(PY) -m pytest -q $(GATEWAY37_TESTS) && \
		TB_GW_TEST_GATEWAY=$(CURDIR)/.venv37/bin/thingsboard-gateway $(PY) -m pytest -q \
			-k "end_to_end or missing_bluepy or stops_reading" $(GATEWAY37_CONNECTOR_TESTS); \
	else echo "python 3.7: no .venv37 (no interpreter found): the gateway-on-3.7 run is skipped"; fi

# Everything but the tests marked slow (outages, kills, the .deb): for the edit-test loop.
quick: setup
	$(PY) -m pytest -q -m "not slow" tests

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
	@# The SNMP connector's tests run net-snmp's agent, with its command-line tools as the reference.
	@[ -x /usr/sbin/snmpd ] && command -v snmpget >/dev/null 2>&1 || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq snmpd snmp)
	@# For the .deb tests: lintian, and the Debian packages the .deb depends on.
	@command -v lintian >/dev/null 2>&1 && /usr/bin/python3 -c "import lxml, dateutil, pytz, serial, six" 2>/dev/null || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq lintian python3-lxml python3-dateutil \
		 python3-tz python3-serial python3-six) || echo "(optional .deb test tools not installed)"

$(VENV)/.installed: setup.py requirements-test.txt
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e . -r requirements-test.txt
	@# bluepy (the BLE extra) compiles a helper: with it, the bluepy double is compared with the real one.
	@(pkg-config --exists glib-2.0 2>/dev/null || ($(SUDO) apt-get install -y -qq libglib2.0-dev pkg-config)) && \
		$(PY) -m pip install -q "bluepy==1.3.0" || echo "(bluepy did not build: the double's signature test is skipped)"
	touch $@

deb: setup
	debian/build-deb.sh

clean:
	rm -rf $(VENV) .venv37 .venv-buster37 build dist *.egg-info .pytest_cache demo-work

"""Fixtures: real Mosquitto brokers and the platform double, cleaned up also on failure."""
import pytest

from tests.support.broker import Mosquitto
from tests.support.devices import RelayPeers
from tests.support.gateway import GatewayProcess
from tests.support.platform import PlatformDouble


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes many seconds by design (outages, kills, the .deb); "
                                       "`make quick` leaves these out")


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(str(tmp_path), "platform-broker").start()
    yield b
    b.stop()


@pytest.fixture
def platform(broker):
    p = PlatformDouble(broker.port)
    yield p
    p.close()


@pytest.fixture
def relay_peers(tmp_path):
    """Devices broker, platform broker, platform double and a device client (subscribed
    to nothing the gateway sends); all stopped at teardown."""
    peers = RelayPeers(str(tmp_path), ("unused/topic",))
    yield peers
    peers.close()


@pytest.fixture
def open_connector():
    """open_connector(cls, config, type, gateway=None) -> (connector, gateway): a connector
    opened in the test's own process with a RecordingGateway; all closed at teardown."""
    from tests.support.recorder import RecordingGateway
    made = []

    def make(cls, config, connector_type, gateway=None):
        gateway = gateway or RecordingGateway()
        connector = cls(gateway, config, connector_type)
        connector.open()
        made.append(connector)
        return connector, gateway
    yield make
    for connector in made:
        connector.close()


@pytest.fixture
def gateways():
    """Start gateway processes with gateways(config_path, env=...); all are killed at teardown."""
    started = []

    def start(config_path, env=None, args=None):
        g = GatewayProcess(config_path, env=env, args=args)
        started.append(g)
        return g

    yield start
    for g in started:
        g.kill()

"""`thingsboard-gateway check --connector ... --topic ... --sample ...`."""
import json

from tests.integration.test_mqtt_connector import MQTT
from tests.support.gateway import run_cli


def files(tmp_path, sample):
    config = json.loads(json.dumps(MQTT))
    config["broker"]["port"] = 1883  # never connected in a dry run
    (tmp_path / "mqtt.json").write_text(json.dumps(config))
    (tmp_path / "sample.json").write_text(json.dumps(sample))
    return str(tmp_path / "mqtt.json"), str(tmp_path / "sample.json")


def test_dry_run_shows_every_key_and_value(tmp_path):
    config, sample = files(tmp_path, {"sensorModel": "T1", "temp": 21.5})
    result = run_cli(["check", "--connector", config, "--topic", "sensor/SN-1/data", "--sample", sample])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "timeseries temperature" in result.stdout and "${temp}" in result.stdout and "-> 21.5" in result.stdout
    assert '"deviceName": "SN-1"' in result.stdout


def test_dry_run_names_keys_that_found_nothing_and_exits_1(tmp_path):
    config, sample = files(tmp_path, {"sensorModel": "T1", "temperature": 21.5})
    result = run_cli(["check", "--connector", config, "--topic", "sensor/SN-1/data", "--sample", sample])
    assert result.returncode == 1
    assert "NOT FOUND: ${temp} found nothing" in result.stdout
    assert "timeseries temperature: ${temp} found nothing" in result.stdout


def test_dry_run_without_a_matching_mapping(tmp_path):
    config, sample = files(tmp_path, {})
    result = run_cli(["check", "--connector", config, "--topic", "elsewhere", "--sample", sample])
    assert result.returncode == 1 and "No mapping" in result.stdout

"""The shape of tb_gateway.json (upstream keys plus ours), as `Field` specs.

Upstream keys this gateway does not act on are listed as accepted (`Field("any")`)
so that upstream files load without warnings; genuinely unknown keys warn.
"""
from thingsboard_gateway.config.schema import Field
from thingsboard_gateway.config.ratelimits import parse_rate_limits

# "tlsPrivateKey" is the X.509 client-certificate type as ThingsBoard's UI and upstream name
# it; "tls" is our earlier name for it, kept as an alias.
SECURITY_TYPES = ["accessToken", "usernamePassword", "tlsAccessToken", "tlsPrivateKey", "tls"]
CLIENT_CERTIFICATE_TYPES = ("tlsPrivateKey", "tls")
STORAGE_TYPES = ["memory", "file", "sqlite"]


def _rate_limit_problem(text):
    try:
        parse_rate_limits(text)
    except ValueError as e:
        return str(e)
    return None


RATE = Field("str", check=_rate_limit_problem)
ACCEPTED = Field("any")
PORT = Field("int", min=1, max=65535)

SECURITY = Field("object", fields={
    "type": Field("str", choices=SECURITY_TYPES),
    "accessToken": Field("str"),
    "clientId": Field("str"),
    "username": Field("str"),
    "password": Field("str"),
    "caCert": Field("str"),
    "cert": Field("str"),
    "privateKey": Field("str"),
    "checkServerHostname": Field("bool", default=True),
})

# ThingsBoard's device provisioning (config/provisioning.py): used when there is no `security`
# section and no credentials saved by an earlier provisioning.
PROVISIONING_TYPES = ["ACCESS_TOKEN", "MQTT_BASIC", "X509_CERTIFICATE"]
PROVISIONING = Field("object", fields={
    "type": Field("str", choices=PROVISIONING_TYPES, default="ACCESS_TOKEN"),
    "provisionDeviceKey": Field("str", required=True),
    "provisionDeviceSecret": Field("str", required=True),
    "deviceName": Field("str"),
    "accessToken": Field("str"),
    "clientId": Field("str"),
    "username": Field("str"),
    "password": Field("str"),
    "caCert": Field("str"),
    "checkServerHostname": Field("bool", default=True),
})

# Updates of the gateway itself from ThingsBoard's software OTA (gateway/software_update.py).
SOFTWARE_UPDATES = Field("object", default=dict, fields={
    "enabled": Field("bool", default=False),
    "title": Field("str", default="thingsboard-gateway"),
    "installCommand": Field("str"),
    "rollbackCommand": Field("str"),
    "confirmTimeoutSeconds": Field("number", min=5, default=120),
    "chunkSize": Field("int", min=256, max=65536, default=16384),  # ThingsBoard refuses more than 64 KiB
})

RECONNECT = Field("object", default=dict, fields={
    "enabled": Field("bool", default=True),
    "minDelay": Field("int", min=0, default=1000),
    "maxDelay": Field("int", min=0, default=60000),
    "backoffMultiplier": Field("number", min=1, default=2),
    "jitter": Field("number", min=0, max=1, default=0.2),
})

STATISTICS = Field("object", default=dict, fields={
    "enable": Field("bool", default=True),
    "statsSendPeriodInSeconds": Field("int", min=1, default=60),
    "customStatsSendPeriodInSeconds": ACCEPTED,
    "configuration": ACCEPTED,
})

THINGSBOARD = Field("object", required=True, fields={
    "host": Field("str", required=True, check=lambda v: None if v.strip() else "expected a host name, got \"\""),
    "port": Field("int", min=1, max=65535, default=1883),
    "security": SECURITY,
    "provisioning": PROVISIONING,
    "softwareUpdates": SOFTWARE_UPDATES,
    "qos": Field("int", min=0, max=1, default=1),
    "keepalive": Field("int", min=5, default=60),
    "maxInflightMessages": Field("int", min=1, default=100),
    "sessionLimitsTimeoutMs": Field("int", min=0, default=10000),
    "publishAckTimeoutMs": Field("int", min=1000, default=30000),
    "statistics": STATISTICS,
    "reconnect": RECONNECT,
    "maxPayloadSizeBytes": Field("int", min=256, default=55000),
    "minPackSendDelayMS": Field("int", min=0, default=50),
    "minPackSizeToSend": Field("int", min=1, default=500),
    "rateLimits": RATE,
    "dpRateLimits": RATE,
    "messagesRateLimits": RATE,
    "deviceMessagesRateLimits": RATE,
    "deviceRateLimits": RATE,
    "deviceDpRateLimits": RATE,
    # Upstream keys accepted for compatibility; this gateway does not act on them (yet).
    "remoteShell": ACCEPTED,
    # Remote configuration (gateway/remote_config.py) and hot reload of connector files.
    "remoteConfiguration": Field("bool", default=False),
    "remoteConfigurationTrialSeconds": Field("number", min=1, default=60),  # ours
    "latencyDebugMode": ACCEPTED,
    "checkConnectorsConfigurationInSeconds": Field("number", min=0, default=0),  # 0: only on SIGHUP
    # A device renamed on the platform goes by its new name (gateway_device_renamed).
    "handleDeviceRenaming": Field("bool", default=True),
    # Report strategies (conversion/report.py) and device filtering (config/device_filter.py).
    "reportStrategy": Field("object", extra=True, default=lambda: {"type": "ON_RECEIVED"},
                            describe='{"type": ..., "reportPeriod": ms}'),
    "deviceFiltering": Field("object", default=dict, fields={
        "enable": Field("bool", default=False),
        "filterFile": Field("str", default="list.json"),
    }),
    # A device silent for inactivityTimeoutSeconds is disconnected on the platform.
    "checkingDeviceActivity": Field("object", default=dict, fields={
        "checkDeviceInactivity": Field("bool", default=False),
        "inactivityTimeoutSeconds": Field("number", min=1, default=300),
        "inactivityCheckPeriodSeconds": Field("number", min=0.1, default=10),
    }),
})

STORAGE = Field("object", default=dict, fields={
    "type": Field("str", choices=STORAGE_TYPES, default="memory"),
    "read_records_count": Field("int", min=1, default=100),
    "max_records_count": Field("int", min=1, default=100000),
    "data_folder_path": Field("str", default="./data/"),
    "max_file_count": Field("int", min=1, default=10),
    "max_read_records_count": Field("int", min=1, default=100),
    "max_records_per_file": Field("int", min=1, default=10000),
    "max_file_size": Field("int", min=1024),
    "commit_interval_ms": Field("int", min=0, default=100),
    "commit_records": Field("int", min=1, default=500),
    "overflow": Field("str", choices=["block", "drop_oldest"], default="block"),
    "data_file_path": Field("str", default="./data/data.db"),
    "messages_ttl_check_in_hours": Field("number", min=0, default=1),
    "messages_ttl_in_days": Field("number", min=0, default=7),
    "put_timeout_ms": Field("int", min=0, default=10000),
})

CONNECTOR_ENTRY = Field("object", fields={
    "name": Field("str", required=True),
    "type": Field("str", required=True),
    "configuration": Field("str", required=True),
    "class": Field("str"),
    "id": ACCEPTED,
    "configVersion": ACCEPTED,
    "enableRemoteLogging": ACCEPTED,
    "logLevel": ACCEPTED,
    "useGRPC": ACCEPTED,
})

SUPERVISION = Field("object", default=dict, fields={
    "maxFailures": Field("int", min=1, default=5),
    "minDelay": Field("int", min=0, default=1000),
    "maxDelay": Field("int", min=0, default=60000),
    "closeTimeoutMs": Field("int", min=0, default=5000),
    # A thread that makes no progress for this long is stuck (gateway/liveness.py): the data
    # path's (sender, storage writer, main loop) stop the systemd watchdog's feeding; a
    # connector's gets the connector restarted.
    "dataPathStuckMs": Field("int", min=1000, default=60000),
    "connectorStuckMs": Field("int", min=1000, default=120000),
})

GATEWAY = Field("object", fields={
    "thingsboard": THINGSBOARD,
    "storage": STORAGE,
    "connectors": Field("list", item=CONNECTOR_ENTRY, default=lambda: []),
    "supervision": SUPERVISION,
    "grpc": ACCEPTED,
})

"""ThingsBoard Gateway MQTT API topics."""

TELEMETRY = "v1/gateway/telemetry"
ATTRIBUTES = "v1/gateway/attributes"
CONNECT = "v1/gateway/connect"
DISCONNECT = "v1/gateway/disconnect"
ATTRIBUTES_REQUEST = "v1/gateway/attributes/request"
ATTRIBUTES_RESPONSE = "v1/gateway/attributes/response"
RPC = "v1/gateway/rpc"

# The gateway's own device.
ME_TELEMETRY = "v1/devices/me/telemetry"
ME_ATTRIBUTES = "v1/devices/me/attributes"
ME_ATTRIBUTES_REQUEST = "v1/devices/me/attributes/request/"
ME_ATTRIBUTES_RESPONSE = "v1/devices/me/attributes/response/"
ME_RPC_REQUEST = "v1/devices/me/rpc/request/"
ME_RPC_RESPONSE = "v1/devices/me/rpc/response/"

# ThingsBoard's software OTA (gateway/software_update.py): the only filters it accepts.
SW_RESPONSE_PREFIX = "v2/sw/response/"
SW_RESPONSES = SW_RESPONSE_PREFIX + "+/chunk/+"
OTA_ERRORS = "v2/fw/error"

SUBSCRIPTIONS = [ATTRIBUTES, ATTRIBUTES_RESPONSE, RPC, ME_ATTRIBUTES, ME_ATTRIBUTES_RESPONSE + "+",
                 ME_RPC_REQUEST + "+", ME_RPC_RESPONSE + "+"]

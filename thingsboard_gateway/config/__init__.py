"""Configuration: loading tb_gateway.json and connector files, env overrides, validation."""
from thingsboard_gateway.config.errors import ConfigError  # noqa: F401
from thingsboard_gateway.config.loader import GatewayConfig, load_gateway_config  # noqa: F401

"""The RPC methods of the gateway device itself (ThingsBoard's service RPC buttons and
the gateway's RPC page): method name -> handler(params) returning the JSON-able answer.
The Router (gateway/routing.py) calls them on paho's thread and sends the answer."""
from typing import Any, Callable, Dict

from thingsboard_gateway import __version__

Handler = Callable[[Any], Any]


def gateway_methods(registry, statistics):
    # type: (Any, Callable[[], Dict[str, Any]]) -> Dict[str, Handler]
    """registry: the DeviceRegistry; statistics(): every counter, flat."""
    return {
        "gateway_ping": lambda params: "pong",
        "gateway_version": lambda params: __version__,
        "gateway_devices": lambda params: {name: connector for name, connector, _ in registry.items()},
        "gateway_stats": lambda params: statistics(),
    }

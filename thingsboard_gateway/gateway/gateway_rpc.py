"""The RPC methods of the gateway device itself: the seven buttons of ThingsBoard's service
RPC widget (gateway_ping, _stats, _devices, _version, _update, _restart, _reboot), the
platform's own gateway_device_renamed and gateway_device_deleted, and the remote shell's
methods, refused. Method name -> handler(params) returning the JSON-able answer: a dict
with "code" is the answer as it is, anything else is answered as {"code": 200, "resp": it};
a Then runs its action after the answer went out. The Router (gateway/routing.py) calls
them on paho's thread."""
import json
import logging
from typing import Any, Callable, Dict, Optional

from thingsboard_gateway import FORMAT_VERSION, __version__

log = logging.getLogger(__name__)

Handler = Callable[[Any], Any]
REMOTE_SHELL = ("getTermInfo", "sendCommand", "getCommandStatus", "terminateCommand")
UPDATE_HOW = ("This gateway does not download updates by itself. Update it with its .deb package "
              "(dpkg -i), or from ThingsBoard: assign a software package to this gateway in OTA updates "
              "(thingsboard.softwareUpdates in tb_gateway.json, see the README)")


class Then(object):
    """An answer, and what to do once it is on its way."""

    __slots__ = ("value", "action")

    def __init__(self, value, action):
        # type: (Any, Callable[[], Any]) -> None
        self.value = value
        self.action = action


def parsed_params(params):
    # type: (Any) -> Any
    """ThingsBoard passes the service RPC page's text through: "{}" is a string. A string
    holding a JSON object or list is that object; anything else is kept as it is."""
    if isinstance(params, str) and params.strip()[:1] in ("{", "["):
        try:
            return json.loads(params)
        except ValueError:
            return params
    return params


def error(code, text):
    # type: (int, str) -> Dict[str, Any]
    return {"code": code, "error": text}


class GatewayMethods(object):
    """registry: the DeviceRegistry. statistics(): every counter, flat. forget(device):
    the device is deleted on the platform. request_restart(reason). reboot: host.Reboot.
    renaming: thingsboard.handleDeviceRenaming."""

    def __init__(self, registry, statistics, forget, request_restart, reboot, renaming=True):
        # type: (Any, Callable[[], Dict[str, Any]], Callable[[str], bool], Callable[[str], None], Any, bool) -> None
        self.registry = registry
        self.statistics = statistics
        self.forget = forget
        self.request_restart = request_restart
        self.reboot = reboot
        self.renaming = renaming
        self.describe_updates = None  # type: Optional[Callable[[], Dict[str, Any]]]  (software_update.py)

    def table(self):
        # type: () -> Dict[str, Handler]
        methods = {
            "gateway_ping": lambda params: "pong",
            "gateway_stats": lambda params: self.statistics(),
            "gateway_devices": self.devices,
            "gateway_version": lambda params: {"current_version": __version__, "format_version": FORMAT_VERSION},
            "gateway_update": self.update,
            "gateway_restart": self.restart,
            "gateway_reboot": self.reboot_board,
            "gateway_device_renamed": self.renamed,
            "gateway_device_deleted": self.deleted,
        }  # type: Dict[str, Handler]
        for name in REMOTE_SHELL:
            methods[name] = lambda params: error(403, "the remote shell is not offered by this gateway: "
                                                      "a command line on the board from the platform is more "
                                                      "than a data gateway should hand out (README, security)")
        return methods

    def devices(self, params):
        # type: (Any) -> Dict[str, str]
        """{device as the platform knows it: connector name}."""
        platform = self.registry.names.platform
        return {platform(name): connector for name, connector, _ in self.registry.items()}

    def update(self, params):
        # type: (Any) -> Dict[str, Any]
        """How this gateway is updated: it downloads nothing on this button."""
        answer = {"updated": False, "how": UPDATE_HOW}  # type: Dict[str, Any]
        if self.describe_updates is not None:
            answer.update(self.describe_updates())
        return {"code": 200, "resp": answer}

    def restart(self, params):
        # type: (Any) -> Then
        return Then("restarting", lambda: self.request_restart("the platform asked (gateway_restart)"))

    def reboot_board(self, params):
        # type: (Any) -> Any
        problem = self.reboot.check()
        if problem is not None:
            log.warning("gateway_reboot refused: %s", problem)
            return error(403, problem)
        return Then("rebooting", self.reboot.start)

    def renamed(self, params):
        # type: (Any) -> Any
        """{"<old name>": "<new name>"}: from now on the device goes by the new name."""
        if not isinstance(params, dict) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                   for k, v in params.items()):
            return error(400, "expected {\"<old name>\": \"<new name>\"}, got %.100s" % (params,))
        if not self.renaming:
            return {"code": 200, "resp": "ignored: handleDeviceRenaming is false in tb_gateway.json"}
        out = {}  # type: Dict[str, Optional[str]]
        for old, new in params.items():
            local = self.registry.rename(old, new)
            out[old] = new if local is not None else None
            if local is None:
                log.info("The platform renamed %s to %s, a device this gateway does not know", old, new)
            else:
                log.info("Device %s is called %s on the platform from now on (renamed from %s)", local, new, old)
        self.registry.save()  # a rename must survive a crash: its old name would come back
        return {"renamed": out}

    def deleted(self, params):
        # type: (Any) -> Any
        """"<name>": the device is forgotten; its next message announces it again."""
        if not isinstance(params, str) or not params:
            return error(400, "expected the device's name, got %.100s" % (params,))
        local = self.registry.names.local(params)
        known = self.forget(local)
        if known:
            log.info("Device %s was deleted on the platform: forgotten until it sends again", params)
        self.registry.save()
        return {"deleted": params, "known": known}

"""DeviceFilter: applies thingsboard.deviceFiltering (rules read and compiled by
config/device_filter.py) to every connector's data and device announcements, from the
first message on. Thread-safe: connectors call it from their own threads."""
import logging
import threading
from typing import Dict, Iterable, Optional, Tuple

from thingsboard_gateway.config.device_filter import Rules

log = logging.getLogger(__name__)


class DeviceFilter(object):
    """`rules`: {"deny"/"allow": {connector name in tb_gateway.json: [pattern]}};
    `aliases`: other names a connector goes by (its file's own `name`) -> the name in
    tb_gateway.json. A device is denied when a deny pattern of its connector matches the
    whole name (deny wins over allow; a device not denied passes). Each denied device is
    logged once; its decisions are remembered."""

    def __init__(self, rules, aliases=None):
        # type: (Rules, Optional[Dict[str, str]]) -> None
        self._deny = rules.get("deny") or {}
        self._aliases = dict(aliases or {})
        self._decided = {}  # type: Dict[Tuple[str, str], bool]
        self._lock = threading.Lock()

    def set_aliases(self, aliases):
        # type: (Dict[str, str]) -> None
        """The connectors' names changed (a connector added, changed or removed): decide again."""
        with self._lock:
            self._aliases = dict(aliases)
            self._decided = {}

    def denied(self, connector, device):
        # type: (str, str) -> bool
        """Whether `device` of `connector` is filtered out (its data and announcement)."""
        key = (connector, device)
        decided = self._decided
        verdict = decided.get(key)
        if verdict is None:
            verdict = self._decide(connector, device, self._aliases)
            with self._lock:
                if decided is self._decided and key not in decided:  # not decided on names since changed
                    decided[key] = verdict
                    if verdict:
                        log.info("Device %s of connector %s is denied by device filtering: its data is "
                                 "not sent and it is not announced", device, connector)
        return verdict

    def _decide(self, connector, device, aliases):
        # type: (str, str, Dict[str, str]) -> bool
        name = aliases.get(connector, connector)
        patterns = self._deny.get(name)  # type: Optional[Iterable]
        if patterns is None and name != connector:
            patterns = self._deny.get(connector)
        return any(p.fullmatch(device) for p in patterns or ())

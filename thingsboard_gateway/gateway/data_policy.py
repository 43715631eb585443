"""DataPolicy: what of the connectors' data goes to ThingsBoard. Device filtering
(gateway/device_filter.py) and report strategies (conversion/report_filter.py), built
from the configuration, for every connector, applied by GatewayService.send_to_storage
before anything is stored or announced."""
from typing import Any, Callable, Dict, List, Optional, Tuple

from thingsboard_gateway.config.report_strategy import parse_strategy
from thingsboard_gateway.conversion.report import DeviceStrategy
from thingsboard_gateway.conversion.report_filter import ReportFilter
from thingsboard_gateway.gateway.device_filter import DeviceFilter

Report = Callable[[str, str, List[Dict[str, Any]], Dict[str, Any]], Tuple[List[Dict[str, Any]], Dict[str, Any]]]


def connector_names(config):
    # type: (Any) -> Dict[str, str]
    """Every name a connector goes by (its tb_gateway.json name, its file's own `name`)
    -> its tb_gateway.json name."""
    names = {}  # type: Dict[str, str]
    for spec in config.connectors:
        own = spec.config.get("name") if isinstance(spec.config, dict) else None
        if isinstance(own, str) and own not in names:
            names[own] = spec.name
    for spec in config.connectors:
        names[spec.name] = spec.name
    return names


class DataPolicy(object):
    """Built from a GatewayConfig. `on_new_period()` is called (from a connector's thread)
    when a report period comes into use; the main thread then schedules the periods that
    `unscheduled()` returns and calls `due(ms)` at each."""

    def __init__(self, config, on_new_period=None):
        # type: (Any, Optional[Callable[[], None]]) -> None
        aliases = connector_names(config)
        self.filter = DeviceFilter(config.device_filter, aliases) if config.device_filter else None
        connectors = {}
        for spec in config.connectors:
            if isinstance(spec.config, dict) and spec.config.get("reportStrategy") is not None:
                strategy = parse_strategy(spec.config["reportStrategy"], spec.file)
                connectors.update({alias: strategy for alias, name in aliases.items() if name == spec.name})
        wake = on_new_period or (lambda: None)
        self.reports = ReportFilter(parse_strategy(config.thingsboard["reportStrategy"]), connectors,
                                    on_new_period=lambda period_ms: wake())
        self._scheduled = set()  # type: set  periods with a job (main thread only)

    def denied(self, connector, device):
        # type: (str, Any) -> bool
        return self.filter is not None and isinstance(device, str) and self.filter.denied(connector, device)

    def report_for(self, connector, data):
        # type: (str, Dict[str, Any]) -> Optional[Report]
        """The report step for this data (None: every value is sent as received)."""
        strategy = data.get("reportStrategy")
        if not isinstance(strategy, DeviceStrategy):
            strategy = None
        if not self.reports.applies(connector, strategy):
            return None
        reports = self.reports

        def report(device, device_type, telemetry, attributes):
            return reports.apply(connector, device, device_type, telemetry, attributes, strategy)
        return report

    def unscheduled(self):
        # type: () -> List[int]
        """Report periods in use that have no job yet (each returned once; main thread)."""
        new = [p for p in self.reports.periods() if p not in self._scheduled]
        self._scheduled.update(new)
        return new

    def due(self, period_ms):
        # type: (int) -> List[Tuple[str, Dict[str, Any]]]
        return self.reports.due(period_ms)

"""DataPolicy: what of the connectors' data goes to ThingsBoard. Device filtering
(gateway/device_filter.py) and report strategies (conversion/report_filter.py), built
from the configuration, for every connector, applied by Ingest.send_to_storage before
anything is stored or announced. What depends on the connectors (their level of report
strategy, the names device filtering knows them by) follows every change of the connector
set (gateway/connector_set.py calls connectors_changed), not only the start-up's."""
from typing import Any, Callable, Dict, List, Optional, Tuple

from thingsboard_gateway.config.report_strategy import parse_strategy
from thingsboard_gateway.conversion.report import DeviceStrategy
from thingsboard_gateway.conversion.report_filter import ReportFilter
from thingsboard_gateway.gateway.device_filter import DeviceFilter

Report = Callable[[str, str, List[Dict[str, Any]], Dict[str, Any]], Tuple[List[Dict[str, Any]], Dict[str, Any]]]


def connector_names(specs):
    # type: (Any) -> Dict[str, str]
    """Every name a connector goes by (its tb_gateway.json name, its file's own `name`)
    -> its tb_gateway.json name."""
    names = {}  # type: Dict[str, str]
    for spec in specs:
        own = spec.config.get("name") if isinstance(spec.config, dict) else None
        if isinstance(own, str) and own not in names:
            names[own] = spec.name
    for spec in specs:
        names[spec.name] = spec.name
    return names


class DataPolicy(object):
    """Built from a GatewayConfig. `on_new_period()` is called (from a connector's thread)
    when a report period comes into use; the main thread then schedules the periods that
    `unscheduled()` returns and calls `due(ms)` at each."""

    def __init__(self, config, on_new_period=None):
        # type: (Any, Optional[Callable[[], None]]) -> None
        self.filter = DeviceFilter(config.device_filter) if config.device_filter else None
        wake = on_new_period or (lambda: None)
        self.reports = ReportFilter(parse_strategy(config.thingsboard["reportStrategy"]),
                                    on_new_period=lambda period_ms: wake())
        self._scheduled = set()  # type: set  periods with a job (main thread only)
        self.connectors_changed(config.connectors)

    def connectors_changed(self, specs):
        # type: (Any) -> None
        """The connector set changed (start-up, remote configuration, hot reload, SIGHUP;
        main thread): their report strategies and names apply from the next value on."""
        aliases = connector_names(specs)
        if self.filter is not None:
            self.filter.set_aliases(aliases)
        connectors = {}
        for spec in specs:
            if isinstance(spec.config, dict) and spec.config.get("reportStrategy") is not None:
                strategy = parse_strategy(spec.config["reportStrategy"], spec.file)
                connectors.update({alias: strategy for alias, name in aliases.items() if name == spec.name})
        self.reports.set_connectors(connectors)

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

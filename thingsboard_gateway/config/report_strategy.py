"""Report strategies in configuration files (see conversion/report.py for what they
mean): the four types, the default period, and checking every `reportStrategy` of a
file. Pure."""
from typing import Any, List, NamedTuple, Optional, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.schema import walk

ON_RECEIVED, ON_CHANGE = "ON_RECEIVED", "ON_CHANGE"
ON_REPORT_PERIOD, ON_CHANGE_OR_REPORT_PERIOD = "ON_REPORT_PERIOD", "ON_CHANGE_OR_REPORT_PERIOD"
TYPES = (ON_RECEIVED, ON_CHANGE, ON_REPORT_PERIOD, ON_CHANGE_OR_REPORT_PERIOD)
DEFAULT_PERIOD_MS = 10000
MIN_PERIOD_MS = 100
Strategy = NamedTuple("Strategy", [("type", str), ("period_ms", int)])
RECEIVED = Strategy(ON_RECEIVED, DEFAULT_PERIOD_MS)


def strategy_problem(value):
    # type: (Any) -> Optional[Tuple[str, str]]
    """(the key at fault, what was expected) for a bad strategy object, or None."""
    if not isinstance(value, dict):
        return "", 'an object {"type": ..., "reportPeriod": ms}'
    kind = value.get("type")
    if not isinstance(kind, str) or kind.upper() not in TYPES:
        return "type", "one of " + ", ".join(TYPES)
    period = value.get("reportPeriod", DEFAULT_PERIOD_MS)
    if isinstance(period, bool) or not isinstance(period, int) or period < MIN_PERIOD_MS:
        return "reportPeriod", "milliseconds, an integer >= %d" % MIN_PERIOD_MS
    return None


def parse_strategy(value, file="", path="reportStrategy"):
    # type: (Any, str, str) -> Strategy
    """A strategy object as a Strategy; ConfigError naming the key at fault."""
    problem = strategy_problem(value)
    if problem is not None:
        key, expected = problem
        raise ConfigError(file, path + ("." + key if key else ""), "expected " + expected)
    kind = TYPES[TYPES.index(value["type"].upper())]  # the constant itself: compared with `is`
    return Strategy(kind, value.get("reportPeriod", DEFAULT_PERIOD_MS))


def find_strategies(config):
    # type: (Any) -> List[Tuple[str, Any]]
    """(JSON path, value) of every `reportStrategy` anywhere in a connector file."""
    return [(path, value) for path, key, value in walk(config) if key == "reportStrategy"]


def check_strategies(config, file):
    # type: (Any, str) -> List[int]
    """Validate every reportStrategy of a file (ConfigError for a bad one); returns the
    report periods (ms) its period strategies use."""
    periods = []
    for path, value in find_strategies(config):
        strategy = parse_strategy(value, file, path)
        if strategy.type in (ON_REPORT_PERIOD, ON_CHANGE_OR_REPORT_PERIOD):
            periods.append(strategy.period_ms)
    return periods

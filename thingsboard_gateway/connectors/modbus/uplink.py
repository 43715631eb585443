"""ModbusUplinkConverter: what one slave's registers and coils read -> its ThingsBoard
data (pure: no I/O; the connector's poller does the reads)."""
import struct
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.conversion.converter import Converter
from thingsboard_gateway.connectors.modbus import codec
from thingsboard_gateway.connectors.modbus.plan import Read, plan_reads
from thingsboard_gateway.conversion.report import ON_CHANGE_OR_REPORT_PERIOD, Strategy, device_strategy

Failure = Tuple[str, str]  # (key, reason)


def tag_decoder(tag, slave):
    # type: (Dict[str, Any], Dict[str, Any]) -> Any
    """The compiled decoder of one tag (the slave's byte/word order unless the tag has its own)."""
    return codec.compile_decoder(tag["type"], tag.get("objectsCount", 1), tag.get("byteOrder") or slave["byteOrder"],
                                 tag.get("wordOrder") or slave["wordOrder"], tag.get("bitTargetType", "bool"),
                                 tag.get("divider"), tag.get("multiplier"))


class ModbusUplinkConverter(Converter):
    """One slave (a validated entry of master.slaves). `reads` is the request plan the
    poller follows; `decode` takes what each read returned, in plan order."""

    def __init__(self, slave):
        # type: (Dict[str, Any]) -> None
        self.slave = slave
        tags = [dict(t, section="attributes") for t in slave["attributes"]] + \
            [dict(t, section="timeseries") for t in slave["timeseries"]]
        self.reads = plan_reads(tags, merge=slave["mergeReads"])  # type: List[Read]
        # Per read: (section, key, offset in the read, decoder), compiled once.
        self._decoders = [[(t["section"], t["tag"], t["address"] - read.address, tag_decoder(t, slave))
                           for t in read.tags] for read in self.reads]
        # sendDataOnlyOnChange (ours before report strategies): changes, and everything every
        # fullReportPeriodMs; the slave's own reportStrategy wins over it.
        legacy = Strategy(ON_CHANGE_OR_REPORT_PERIOD, slave.get("fullReportPeriodMs", 60000)) \
            if slave.get("sendDataOnlyOnChange") else None
        self.strategy = device_strategy(slave, legacy)

    def decode(self, results):
        # type: (List[Optional[List[Any]]]) -> Tuple[Dict[str, Dict[str, Any]], List[Failure]]
        """results[i]: the values read for reads[i] (None: not read). Returns the values by
        section and the tags that could not be decoded."""
        values = {"attributes": {}, "timeseries": {}}  # type: Dict[str, Dict[str, Any]]
        failures = []  # type: List[Failure]
        for data, decoders in zip(results, self._decoders):
            if data is None:
                continue
            for section, key, offset, decode in decoders:
                try:
                    values[section][key] = decode(data[offset:])
                except (ValueError, TypeError, IndexError, struct.error) as e:
                    failures.append((key, str(e) or type(e).__name__))
        return values, failures

    def record(self, attributes, telemetry, ts):
        # type: (Dict[str, Any], Dict[str, Any], int) -> Optional[Dict[str, Any]]
        """The converted data for send_to_storage (None when there is nothing)."""
        if not attributes and not telemetry:
            return None
        data = {"deviceName": self.slave["deviceName"], "deviceType": self.slave["deviceType"],
                "telemetry": [{"ts": ts, "values": telemetry}] if telemetry else [], "attributes": attributes}
        if self.strategy is not None:
            data["reportStrategy"] = self.strategy
        return data

    # -- recorded samples (check --sample, test cases) -------------------------------------
    def results_from_sample(self, sample):
        # type: (Dict[str, Any]) -> Tuple[List[Optional[List[Any]]], List[Failure]]
        """A recorded sample {"reads": [{"functionCode", "address", "values"}]} laid over the
        plan: each planned read gets its values, or None (with a failure) if not recorded."""
        image = {}  # type: Dict[int, Dict[int, Any]]
        for entry in sample.get("reads") or []:
            words = image.setdefault(int(entry["functionCode"]), {})
            for i, value in enumerate(entry["values"]):
                words[int(entry["address"]) + i] = value
        results, failures = [], []  # type: List[Optional[List[Any]]], List[Failure]
        for read in self.reads:
            words = image.get(read.function_code, {})
            data = [words.get(a) for a in range(read.address, read.address + read.count)]
            if any(v is None for v in data):
                results.append(None)
                failures.extend((t["tag"], "not in the sample: function %d, address %d, %d item(s)"
                                 % (read.function_code, t["address"], codec.registers_for(t["type"],
                                                                                        t.get("objectsCount", 1))))
                                for t in read.tags)
            else:
                results.append(data)
        return results, failures

    def convert_detailed(self, sample):
        # type: (Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], List[Failure]]
        results, missing = self.results_from_sample(sample)
        values, failures = self.decode(results)
        return self.record(values["attributes"], values["timeseries"], int(sample.get("ts", 0))), missing + failures

    def convert(self, config, data):
        return self.convert_detailed(data)[0]

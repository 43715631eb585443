"""One SNMP agent (a device of snmp.json) on its own DeviceWorker thread: the poll of its
attributes and telemetry every pollPeriod, and the SETs and RPCs queued to that thread.

A silent agent costs its own thread `timeout` x (1 + `retries`) once per poll (the rest of
that poll is skipped: the agent is away) and nothing else; the other devices keep their
periods. Failures are counted and logged rate-limited (30 s per kind) by the connector:
`agent:<device>` (no answer: down, or the community is not accepted), `oid:<device>:<key>`
(no such object), `error:<device>:<key>` (the agent refused), `write:<device>`."""
import logging
import re
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.kit import now_ms
from thingsboard_gateway.connectors.snmp.protocol import Agent, AgentError, AgentTimeout, MissingOid, plain, table_rows
from thingsboard_gateway.connectors.snmp.uplink import SnmpUplinkConverter, shaped
from thingsboard_gateway.connectors.worker import DeviceSession

log = logging.getLogger(__name__)

POLL = "poll"
GROUP = 16  # `get` keys asked for in one GET at most


def fetch(agent, entry):
    # type: (Agent, Dict[str, Any]) -> Any
    """The plain result of one entry's method (see uplink.shaped for what is sent)."""
    method, community, timeout = entry["method"], entry.get("community"), entry.get("timeout")
    oid = entry.get("oid")
    if method == "get":
        return agent.get([oid], community, timeout)[0]
    if method == "multiget":
        try:
            return agent.get(oid, community, timeout)
        except MissingOid:
            missing = []
            for one in oid:
                try:
                    agent.get([one], community, timeout)
                except MissingOid:
                    missing.append(one)
            raise MissingOid("no such object at %s" % ", ".join(missing or oid))
    if method in ("getnext", "multigetnext"):
        return {found: value for found, value in agent.getnext([oid] if method == "getnext" else oid, community,
                                                               timeout)}
    if method == "bulkget":
        return dict(agent.bulkget(entry.get("scalarOid") or [], entry.get("repeatingOid") or [],
                                  entry["maxListSize"], community, timeout))
    bulk = entry["bulkSize"] if method.startswith("bulk") else 0
    if method in ("walk", "multiwalk", "bulkwalk"):
        out = {}  # type: Dict[str, Any]
        for one in [oid] if method == "walk" else oid:
            out.update(agent.walk(one, community, timeout, bulk))
        return out
    if method in ("table", "bulktable"):
        return table_rows(agent.walk(oid, community, timeout, bulk), entry["numBaseNodes"])
    raise AgentError("method %s cannot read" % method)


def plain_results(results):
    # type: (Dict[str, Any]) -> Dict[str, Any]
    """Raw walk values (library types) made plain, for the converter and samples."""
    out = {}
    for key, result in results.items():
        if isinstance(result, dict):
            result = {k: (v if isinstance(v, dict) else plain(v)) for k, v in result.items()}
        out[key] = result
    return out


def substituted(template, value):
    # type: (Any, Any) -> Any
    """A multiset mapping's value: "${attribute}" (upstream's placeholder) is the value."""
    if isinstance(template, str) and "${" in template:
        if template.strip() in ("${attribute}", "${value}", "${params}"):
            return value
        return template.replace("${attribute}", str(value)).replace("${value}", str(value))
    return template


class SnmpDevice(DeviceSession):
    """connector: the SnmpConnector. device: one validated devices[] entry. custom: a
    custom uplink converter instance (convert(device, results)) or None."""

    def __init__(self, connector, device, custom=None):
        self.connector = connector
        self.device = device
        self.name = device["deviceName"]
        self.converter = SnmpUplinkConverter(device)
        self.custom = custom
        self.agent = None  # type: Optional[Agent]
        self.polls = 0
        self.online = False
        # A device's plain `get` keys go in one GET per poll (one datagram, not one per key),
        # grouped by community and timeout; a key whose OID the agent lacks is asked for alone
        # from then on, so that it does not fail the others' request.
        self.alone = set()  # type: set

    # -- the worker's thread ------------------------------------------------------------------
    def connect(self):
        device = self.device
        self.agent = Agent(device["ip"], device["port"], device["community"], device["versionNumber"],
                           float(device["timeout"]), device["retries"])
        if POLL not in self.worker.schedule:
            self.worker.schedule.add(POLL, device["pollPeriod"] / 1000.0)

    def disconnect(self):
        if self.agent is not None:
            self.agent.close()
            self.agent = None

    def run_job(self, key):
        self.poll()

    def _set_online(self, online):
        if online != self.online:
            self.online = online
            self.worker.set_online(self.name, self.device["deviceType"], online)

    def _batches(self):
        # type: () -> List[List[Dict[str, Any]]]
        """The entries of one poll, in order: several plain gets together, the rest alone."""
        groups = {}  # type: Dict[Any, List[Dict[str, Any]]]
        out = []  # type: List[List[Dict[str, Any]]]
        for section in ("attributes", "telemetry"):
            for entry in self.device[section]:
                if entry["method"] != "get" or entry["key"] in self.alone:
                    out.append([entry])
                    continue
                key = (entry.get("community"), entry.get("timeout"))
                group = groups.setdefault(key, [])
                if not group:
                    out.append(group)
                group.append(entry)
                if len(group) >= GROUP:
                    del groups[key]
        return out

    def _fetch(self, batch, results):
        # type: (List[Dict[str, Any]], Dict[str, Any]) -> None
        if len(batch) == 1:
            results[batch[0]["key"]] = fetch(self.agent, batch[0])
            return
        first = batch[0]
        try:
            values = self.agent.get([e["oid"] for e in batch], first.get("community"), first.get("timeout"))
        except (MissingOid, AgentError):  # which one: each alone, this once
            for entry in batch:
                try:
                    results[entry["key"]] = fetch(self.agent, entry)
                except (MissingOid, AgentError):
                    self.alone.add(entry["key"])
                    raise
            return
        for entry, value in zip(batch, values):
            results[entry["key"]] = value

    def poll(self):
        """Every entry once; an agent that does not answer ends the poll (its own cost)."""
        self.polls += 1
        results = {}  # type: Dict[str, Any]
        for batch in self._batches():
            while batch:
                entry = batch[0]
                try:
                    self._fetch(batch, results)
                    batch = []
                except AgentTimeout as e:
                    self.connector.count("agent:" + self.name, "SNMP device %s: %s (agent down, or community "
                                                               "not accepted)" % (self.name, e))
                    self._set_online(False)
                    return
                except (MissingOid, AgentError) as e:  # that key's: counted, the rest of the batch goes on
                    entry = next((b for b in batch if b["key"] not in results), entry)
                    if isinstance(e, MissingOid):
                        self.connector.count("oid:%s:%s" % (self.name, entry["key"]), "SNMP device %s: key %s: no "
                                             "such object at %s (%s)" % (self.name, entry["key"], entry.get("oid"), e))
                    else:
                        self.connector.count("error:%s:%s" % (self.name, entry["key"]), "SNMP device %s: key %s (%s): "
                                             "the agent refused: %s" % (self.name, entry["key"], entry["method"], e))
                    batch = [b for b in batch if b["key"] not in results and b is not entry]
        self._set_online(True)
        results = plain_results(results)
        if self.custom is not None:
            self.connector.emit(self.name, lambda: self.custom.convert(self.device, results), "converter",
                                strategy=self.converter.strategy)
            return
        data, _ = self.converter.convert(results, now_ms())
        if data is not None:
            self.connector.store(data)

    # -- writes and RPC (queued to this thread) ----------------------------------------------
    def write(self, entry, value):
        # type: (Dict[str, Any], Any) -> Dict[str, Any]
        """SET for an attribute update or an RPC: `set` writes the value at the entry's OID
        (or params' "oid"); `multiset` writes the entry's mappings ("${attribute}" is the
        value) or the params object {oid: value}."""
        pairs = []  # type: List[Tuple[str, Any]]
        if entry["method"] == "multiset":
            mappings = entry.get("mappings") or (value if isinstance(value, dict) else None)
            if not mappings:
                raise AgentError("multiset needs `mappings` in the file or {oid: value} as params")
            pairs = [(oid, substituted(template, value)) for oid, template in mappings.items()]
        else:
            oid = entry.get("oid")
            if isinstance(value, dict):
                oid = value.get("oid", oid)
                value = value.get("value")
            if oid is None or value is None:
                raise AgentError("set needs an OID (in the file or params' \"oid\") and a value")
            pairs = [(oid, value)]
        return self.agent.set(pairs, entry.get("community"), entry.get("timeout"))

    def rpc(self, entry, params):
        # type: (Dict[str, Any], Any) -> Dict[str, Any]
        if entry["method"] in ("set", "multiset"):
            return {"success": True, "values": self.write(entry, params)}
        request = dict(entry)
        if isinstance(params, dict) and params.get("oid") and not entry.get("oid"):
            request["oid"] = params["oid"]
        return {"value": shaped(entry["method"], plain_results({"v": fetch(self.agent, request)})["v"])}


def matching(entries, pattern_key, name):
    # type: (List[Dict[str, Any]], str, str) -> Optional[Dict[str, Any]]
    """The first entry whose regular expression (attributeFilter / requestFilter) matches
    `name` whole."""
    for entry in entries:
        if re.fullmatch(entry[pattern_key], name):
            return entry
    return None

"""SNMP v1/v2c requests to one agent, synchronous, on the calling thread: puresnmp 1.11's
message codec (its PDUs and X.690 types), our own UDP socket, timeout and retries.

Why not puresnmp's own request functions: they take no retries (a module-wide 3), build
a socket per call, and accept any datagram as the answer. Here an answer must carry the
request's id (a late answer to an earlier, timed-out request is dropped, not taken for
this one), each device has its own socket and its own `timeout` x (1 + `retries`).

Values come back as plain Python (see `plain`), so nothing of the library leaks out.
"""
import binascii
import ipaddress
import itertools
import socket
import time
from typing import Any, Dict, List, Optional, Tuple

from puresnmp import types as snmp_types  # noqa: F401  (registers SNMP's own types with the codec)
from puresnmp.exc import EmptyMessage, ErrorResponse, NoSuchOID, SnmpError
from puresnmp.pdu import END_OF_MIB_VIEW, BulkGetRequest, GetNextRequest, GetRequest, SetRequest, VarBind
from puresnmp.x690.types import Integer, Null, ObjectIdentifier, OctetString, Sequence
from puresnmp.x690.util import tablify, to_bytes

VERSIONS = {"1": 0, "v1": 0, "2": 1, "2c": 1, "v2": 1, "v2c": 1}
MAX_WALK = 10000  # varbinds of one walk at most (an agent that never ends its subtree)


class AgentTimeout(Exception):
    """No answer within timeout x (1 + retries): the agent is down, unreachable, or does not
    take the community (SNMP agents stay silent then)."""


class MissingOid(Exception):
    """The agent has no such object (noSuchObject, noSuchInstance, v1 noSuchName)."""


class AgentError(Exception):
    """The agent answered with an error (not writable, wrong type, too big, ...)."""


_OIDS = {}  # type: Dict[str, Any]  parsed once: a device asks for the same OIDs every poll


def oid_of(text):
    # type: (str) -> Any
    parsed = _OIDS.get(text)
    if parsed is None:
        parsed = ObjectIdentifier.from_string(str(text).strip().lstrip("."))
        if len(_OIDS) < 10000:
            _OIDS[text] = parsed
    return parsed


def printable(data):
    # type: (bytes) -> Optional[str]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.isprintable() or text.replace("\r", "").replace("\n", "").replace("\t", "").isprintable():
        return text
    return None


def plain(value):
    # type: (Any) -> Any
    """An SNMP value as plain JSON-able Python: OctetString -> text (bytes that are not
    printable UTF-8: lower-case hex), TimeTicks -> seconds, INTEGER / Counter / Gauge ->
    int, IpAddress -> dotted text, OBJECT IDENTIFIER -> dotted text, NULL -> None."""
    if value is None or value is END_OF_MIB_VIEW or isinstance(value, Null):
        return None
    if isinstance(value, snmp_types.TimeTicks):
        return value.value / 100.0
    if isinstance(value, snmp_types.IpAddress):
        raw = value.value
        return str(ipaddress.ip_address(raw)) if len(raw) in (4, 16) else binascii.hexlify(raw).decode()
    if isinstance(value, ObjectIdentifier):
        return str(value.pythonize())
    if isinstance(value, OctetString):
        raw = value.value if isinstance(value.value, bytes) else str(value.value).encode()
        text = printable(raw)
        return text if text is not None else binascii.hexlify(raw).decode()
    if isinstance(value, Integer):
        return int(value.value)
    pythonized = value.pythonize() if hasattr(value, "pythonize") else value
    if isinstance(pythonized, bytes):
        text = printable(pythonized)
        return text if text is not None else binascii.hexlify(pythonized).decode()
    return pythonized if isinstance(pythonized, (int, float, str, bool)) else str(pythonized)


def typed(value):
    # type: (Any) -> Any
    """A value to SET: int and bool -> INTEGER, anything else -> OCTET STRING (text)."""
    if isinstance(value, bool):
        return Integer(int(value))
    if isinstance(value, int):
        return Integer(value)
    return OctetString(value if isinstance(value, str) else str(value))


class Agent(object):
    """One SNMP agent: ip, port, community, version (0 = v1, 1 = v2c), timeout (s), retries."""

    _ids = itertools.count(int(time.time()) % 100000 * 1000 + 1)

    def __init__(self, ip, port, community, version, timeout, retries):
        # type: (str, int, str, int, float, int) -> None
        self.address = (ip, port)
        self.community = community
        self.version = version
        self.timeout = timeout
        self.retries = retries
        self._sock = None  # type: Optional[socket.socket]

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _socket(self):
        # type: () -> socket.socket
        if self._sock is None:
            family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
        return self._sock

    def request(self, pdu, community=None, timeout=None):
        # type: (Any, Optional[str], Optional[float]) -> Any
        """Send `pdu`, return the response PDU; AgentTimeout, MissingOid or AgentError."""
        packet = to_bytes(Sequence(Integer(self.version), OctetString(community or self.community), pdu))
        sock = self._socket()
        wait = self.timeout if timeout is None else timeout
        for _ in range(1 + self.retries):
            try:
                sock.sendto(packet, self.address)
            except OSError as e:
                raise AgentTimeout("cannot send to %s:%s: %s" % (self.address[0], self.address[1], e))
            deadline = time.monotonic() + wait
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                try:
                    data, peer = sock.recvfrom(65535)
                except socket.timeout:
                    break
                except OSError:  # ICMP port unreachable, reported on the next receive
                    time.sleep(min(left, 0.05))
                    continue
                response = self._decode(data, pdu.request_id)
                if response is not None:
                    return response
        raise AgentTimeout("no answer from %s:%s in %.1f s x %d" % (self.address[0], self.address[1], wait,
                                                                    1 + self.retries))

    @staticmethod
    def _decode(data, request_id):
        # type: (bytes, int) -> Any
        """The response PDU if `data` answers request_id (None: another, late answer)."""
        try:
            message = Sequence.from_bytes(data)
        except (NoSuchOID, EmptyMessage) as e:
            raise MissingOid(str(e))
        except ErrorResponse as e:
            raise AgentError(str(e))
        except (SnmpError, ValueError, TypeError, IndexError, KeyError) as e:
            raise AgentError("unreadable answer (%s: %s)" % (type(e).__name__, e))
        pdu = message[2] if len(message) > 2 else None
        if getattr(pdu, "request_id", None) != request_id:
            return None
        return pdu

    # -- methods ----------------------------------------------------------------------------
    def get(self, oids, community=None, timeout=None):
        # type: (List[str], Optional[str], Optional[float]) -> List[Any]
        """The values of `oids` (one GET), plain."""
        pdu = self.request(GetRequest(next(self._ids), *[oid_of(o) for o in oids]), community, timeout)
        if len(pdu.varbinds) != len(oids):
            raise AgentError("%d values for %d OIDs" % (len(pdu.varbinds), len(oids)))
        return [plain(value) for _, value in pdu.varbinds]

    def getnext(self, oids, community=None, timeout=None):
        # type: (List[str], Optional[str], Optional[float]) -> List[Tuple[str, Any]]
        pdu = self.request(GetNextRequest(next(self._ids), *[oid_of(o) for o in oids]), community, timeout)
        return [(str(oid), value) for oid, value in pdu.varbinds if value is not END_OF_MIB_VIEW]

    def walk(self, oid, community=None, timeout=None, bulk_size=0):
        # type: (str, Optional[str], Optional[float], int) -> List[Tuple[str, Any]]
        """Every (oid, raw value) under `oid`, in order (GETNEXT, or GETBULK of bulk_size on v2c)."""
        base = oid_of(oid)
        prefix = str(base) + "."
        out = []  # type: List[Tuple[str, Any]]
        current = base
        while len(out) < MAX_WALK:
            if bulk_size and self.version:
                pdu = self.request(BulkGetRequest(next(self._ids), 0, bulk_size, current), community, timeout)
            else:
                try:
                    pdu = self.request(GetNextRequest(next(self._ids), current), community, timeout)
                except MissingOid:  # v1: past the end of the MIB
                    break
            ended = True
            for found, value in pdu.varbinds:
                text = str(found)
                if value is END_OF_MIB_VIEW or not text.startswith(prefix) or not found > current:
                    break
                out.append((text, value))
                current = found
                ended = False
            if ended or not pdu.varbinds:
                break
        return out

    def bulkget(self, scalars, repeating, max_list_size, community=None, timeout=None):
        # type: (List[str], List[str], int, Optional[str], Optional[float]) -> List[Tuple[str, Any]]
        oids = [oid_of(o) for o in list(scalars) + list(repeating)]
        pdu = self.request(BulkGetRequest(next(self._ids), len(scalars), max_list_size, *oids), community, timeout)
        return [(str(oid), value) for oid, value in pdu.varbinds if value is not END_OF_MIB_VIEW]

    def set(self, pairs, community=None, timeout=None):
        # type: (List[Tuple[str, Any]], Optional[str], Optional[float]) -> Dict[str, Any]
        """SET each (oid, value) in one request; {oid: value as the agent took it}."""
        binds = [VarBind(oid_of(oid), typed(value)) for oid, value in pairs]
        pdu = self.request(SetRequest(next(self._ids), binds), community, timeout)
        return {str(oid): plain(value) for oid, value in pdu.varbinds}


def table_rows(varbinds, base_nodes=0):
    # type: (List[Tuple[str, Any]], int) -> Dict[str, Dict[str, Any]]
    """A walked table as {row index: {column: value}}: every row (puresnmp's tablify reads
    the OIDs: by default the last node is the row, the one before it the column)."""
    rows = tablify([(oid_of(oid), plain(value)) for oid, value in varbinds], num_base_nodes=base_nodes)
    return {str(row["0"]): {str(k): v for k, v in row.items() if k != "0"} for row in rows}

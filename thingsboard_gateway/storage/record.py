"""Record: one device's converted data, serialized once, on the producer's thread.

Telemetry entries and attributes are kept as compact JSON text so that neither storage
nor the sender serializes them again: the sender concatenates them into Gateway API
messages, file and SQLite storage write them as they are. The device name is kept as
its JSON string literal (the key it has in every Gateway API message). Each record
also knows how many datapoints (key/value pairs) each part holds, for datapoint rate
limits, and may carry a delivery token (see gateway/delivery.py).

Stored form (`encoded`): the JSON name, the JSON type, the attributes object (or
nothing), the telemetry entries, and `token|attribute count|entry counts`, joined by
the control characters US (\\x1f) and RS (\\x1e). JSON text with escaped non-ASCII
never contains raw control characters, so the separators cannot occur inside parts.
"""
import json
from typing import Any, Callable, Dict, List, Tuple

from thingsboard_gateway.runtime.memo import remembered

# allow_nan=False: NaN and Infinity are not JSON, and the platform would refuse the message
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _c_encoders():
    # type: () -> Tuple[Callable[[Any], str], Callable[[Any], str]]
    """(dumps, dumps of a dict or list) as _ENCODER.encode, without building the C encoder
    again at every call (JSONEncoder does: 3.0 -> 1.6 us for a telemetry entry on Python 3.7,
    twice per record). No circular check: a value that contains itself ends in
    RecursionError, which the callers take as bad data."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODER.encode, _ENCODER.encode
    encode = make(None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False)
    join = "".join
    ascii_text = json.encoder.encode_basestring_ascii

    def dumps(value):
        # type: (Any) -> str
        if isinstance(value, str):
            return ascii_text(value)
        return join(encode(value, 0))

    def dumps_container(value):
        # type: (Any) -> str
        return join(encode(value, 0))
    return dumps, dumps_container


dumps, _dumps_container = _c_encoders()

# The JSON literals of the device names and types seen last: a device sends again and again
# under the same name (bounded: cleared when full).
_LITERALS = {}  # type: Dict[str, str]
_LITERALS_MAX = 10000


def _literal(name):
    # type: (str) -> str
    if type(name) is not str:  # only text is kept (True and 1 would be one key)
        return dumps(name)
    return remembered(_LITERALS, name, dumps, _LITERALS_MAX)

UNIT, ENTRY = "\x1f", "\x1e"


class Record(object):
    """Immutable once built; safe to share between threads."""

    __slots__ = ("device_key", "device_type", "telemetry", "attributes", "entry_points", "attribute_points",
                 "token", "encoded")

    def __init__(self, device_key, device_type, telemetry, attributes, entry_points=None, attribute_points=None,
                 token="", encoded=None):
        # type: (str, str, List[str], str, List[int], int, str, bytes) -> None
        self.device_key = device_key    # JSON string literal of the device name
        self.device_type = device_type  # JSON string literal of the device type
        self.telemetry = telemetry      # JSON texts of {"ts": ms, "values": {...}}
        self.attributes = attributes    # JSON text of {...}, or "" for none
        if entry_points is None:
            entry_points = [len(json.loads(e).get("values", {})) for e in telemetry]
        if attribute_points is None:
            attribute_points = len(json.loads(attributes)) if attributes else 0
        self.entry_points = entry_points      # datapoints of each telemetry entry
        self.attribute_points = attribute_points
        self.token = token              # delivery token, "" for none
        # The stored form, made here on the producer's thread (or kept from the disk).
        self.encoded = encoded if encoded is not None else UNIT.join(
            (device_key, device_type, attributes, ENTRY.join(telemetry),
             "%s|%d|%s" % (token, attribute_points, ",".join(map(str, entry_points))))).encode("ascii")

    @classmethod
    def build(cls, device, device_type="default", telemetry=(), attributes=None, token=""):
        # type: (str, str, Any, Dict[str, Any], str) -> Record
        """From values: telemetry entries must be {"ts": ms, "values": {...}}."""
        telemetry = list(telemetry)
        return cls(_literal(device), _literal(device_type), [_dumps_container(entry) for entry in telemetry],
                   _dumps_container(attributes) if attributes else "", [len(e["values"]) for e in telemetry],
                   len(attributes) if attributes else 0, token)

    @property
    def device(self):
        # type: () -> str
        return json.loads(self.device_key)

    @property
    def datapoints(self):
        # type: () -> int
        return sum(self.entry_points) + self.attribute_points

    def telemetry_entries(self):
        # type: () -> List[Dict[str, Any]]
        return [json.loads(entry) for entry in self.telemetry]

    def attribute_values(self):
        # type: () -> Dict[str, Any]
        return json.loads(self.attributes) if self.attributes else {}

    def encode(self):
        # type: () -> bytes
        return self.encoded

    @classmethod
    def decode(cls, payload):
        # type: (bytes) -> Record
        """Inverse of encode; ValueError for a payload that is not a record."""
        parts = payload.decode("ascii").split(UNIT)
        if len(parts) != 5 or not parts[0].startswith('"'):
            raise ValueError("not a stored record")
        token, attribute_points, entry_points = parts[4].split("|")
        telemetry = parts[3].split(ENTRY) if parts[3] else []
        points = [int(p) for p in entry_points.split(",")] if entry_points else []
        if len(points) != len(telemetry):
            raise ValueError("not a stored record")
        return cls(parts[0], parts[1], telemetry, parts[2], points, int(attribute_points), token, bytes(payload))

    def __eq__(self, other):
        return isinstance(other, Record) and self.encoded == other.encoded

    def __repr__(self):
        return "Record(%s)" % self.encoded[:120]

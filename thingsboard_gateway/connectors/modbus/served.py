"""What the gateway serves as a Modbus slave (upstream's `slave` section), pure: the
entries of `slave.values`, the four tables' blocks with their initial values, and each
entry's encoding and decoding.

Each table (`holding_registers`, `input_registers`, `coils_initializer`,
`discrete_inputs`) serves one block: from its lowest configured address to the end of its
highest entry. An entry initialises its registers (or bits) at `address`, the zero-based
address in the request, with `value`, encoded with the slave's byte/word order exactly as a
write would be; strings keep their byte order (not swapped)."""
from typing import Any, Dict, List, NamedTuple, Tuple

from thingsboard_gateway.connectors.modbus import codec

TABLES = (("holding_registers", "hr"), ("input_registers", "ir"), ("coils_initializer", "co"),
          ("discrete_inputs", "di"))
BIT_TABLES = ("co", "di")
SECTIONS = ("attributes", "timeseries", "attributeUpdates", "rpc")
READ_FUNCTIONS = (1, 2, 3, 4)
FUNCTION_OF_TABLE = {"hr": (3, 16), "ir": (4, 16), "co": (1, 15), "di": (2, 15)}  # (read, write) of an entry

Entry = NamedTuple("Entry", [("table", str), ("section", str), ("tag", str), ("type", str), ("address", int),
                             ("width", int), ("objects", int), ("byte_order", str), ("word_order", str),
                             ("function", int), ("value", Any)])


def entries(slave):
    # type: (Dict[str, Any]) -> List[Entry]
    """Every entry of a validated `slave` section, in file order."""
    return [make_entry(slave, table, section, item) for name, table in TABLES
            for section in SECTIONS for item in ((slave.get("values") or {}).get(name) or {}).get(section) or []]


def make_entry(slave, table, section, item):
    # type: (Dict[str, Any], str, str, Dict[str, Any]) -> Entry
    """One entry of table `table` ("hr", ...) and section `section` ("rpc", ...)."""
    objects = item.get("objectsCount", 1)
    kind = "bits" if table in BIT_TABLES else codec.canonical(item.get("type", "16int"))
    width = objects if kind == "bits" else codec.registers_for(kind, objects)
    default_function = FUNCTION_OF_TABLE[table][0 if section in ("attributes", "timeseries") else 1]
    return Entry(table, section, item["tag"], kind, item["address"], width, objects,
                 item.get("byteOrder") or slave["byteOrder"], item.get("wordOrder") or slave["wordOrder"],
                 item.get("functionCode") or default_function, item.get("value"))


def encode(entry, value):
    # type: (Entry, Any) -> List[Any]
    """`value` as the entry's registers or bits (its full width); ValueError when the type
    cannot hold it."""
    if entry.type == "bits":
        items = value if isinstance(value, list) else [value]
        bits = [bool(b) for b in codec.encode(items, "bits")][:entry.width]
        return bits + [False] * (entry.width - len(bits))
    byte_order = codec.BIG if entry.type in ("string", "bytes") else entry.byte_order
    try:
        return codec.encode(value, entry.type, entry.objects, byte_order, entry.word_order)
    except (TypeError, OverflowError) as e:  # None, a list for a number, ...
        raise ValueError("%r is not a %s: %s" % (value, entry.type, e))


def decode(entry, values):
    # type: (Entry, List[Any]) -> Any
    """The entry's value from its registers or bits."""
    if entry.type == "bits":
        bits = [bool(b) for b in values[:entry.width]]
        return bits[0] if len(bits) == 1 else bits
    byte_order = codec.BIG if entry.type in ("string", "bytes") else entry.byte_order
    return codec.decode(values, entry.type, entry.objects, byte_order, entry.word_order)


def blocks(served):
    # type: (List[Entry]) -> Dict[str, Tuple[int, List[Any]]]
    """table -> (first address, initial values) of the block each table serves; a table
    without entries serves nothing. ValueError naming the entry whose value does not fit."""
    out = {}  # type: Dict[str, Tuple[int, List[Any]]]
    for _, table in TABLES:
        mine = [e for e in served if e.table == table]
        if not mine:
            out[table] = (0, [])
            continue
        start = min(e.address for e in mine)
        end = max(e.address + e.width for e in mine)
        values = [False if table in BIT_TABLES else 0] * (end - start)  # type: List[Any]
        for e in mine:
            if e.value is None:
                continue
            try:
                encoded = encode(e, e.value)
            except ValueError as error:
                raise ValueError("%s: value %r: %s" % (e.tag, e.value, error))
            values[e.address - start:e.address - start + len(encoded)] = encoded
        out[table] = (start, values)
    return out


def dry_run(slave, sample):
    # type: (Dict[str, Any], Dict[str, Any]) -> Tuple[Dict[str, Any], List[Tuple[str, str]]]
    """For `check --sample` and the case folders: the block each table serves after
    `sample["writes"]` ({tag: value}, as ThingsBoard's attribute updates and RPCs write
    them), and the report the gateway would send. Returns (result, [(tag, why)])."""
    served = entries(slave)
    image = blocks(served)
    failures = []  # type: List[Tuple[str, str]]
    writable = {e.tag: e for e in served if e.section in ("attributeUpdates", "rpc")}
    for tag, value in (sample.get("writes") or {}).items():
        entry = writable.get(tag)
        if entry is None:
            failures.append((tag, "no attributeUpdates or rpc entry with this tag"))
            continue
        try:
            encoded = encode(entry, value)
        except ValueError as e:
            failures.append((tag, str(e)))
            continue
        start, values = image[entry.table]
        values[entry.address - start:entry.address - start + len(encoded)] = encoded
    def read(entry):
        start, values = image[entry.table]
        return decode(entry, values[entry.address - start:])
    registers = {table: {"start": start, "values": values} for table, (start, values) in sorted(image.items()) if values}
    return {"registers": registers, "report": report(slave, served, read, sample.get("ts", 0))}, failures


def report(slave, served, read, ts):
    # type: (Dict[str, Any], List[Entry], Any, int) -> Dict[str, Any]
    """What the gateway sends of the served block: the `attributes` and `timeseries`
    entries, each read with `read(entry)`, as `deviceName`'s data at `ts` (ms)."""
    values = {"attributes": {}, "timeseries": {}}  # type: Dict[str, Dict[str, Any]]
    for entry in served:
        if entry.section in values:
            values[entry.section][entry.tag] = read(entry)
    return {"deviceName": slave["deviceName"], "deviceType": slave["deviceType"],
            "telemetry": [{"ts": ts, "values": values["timeseries"]}] if values["timeseries"] else [],
            "attributes": values["attributes"]}

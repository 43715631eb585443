"""ModbusDownlinkConverter: an RPC or attribute update for one tag -> the Modbus requests
that carry it out (pure: the poller sends them)."""
from typing import Any, Dict, List, Tuple

from thingsboard_gateway.connectors.modbus import codec

READS = {1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers", 4: "read_input_registers"}
Request = Tuple[str, int, Any]  # (pymodbus client method, address, count or value(s))


def requests_for(tag, value, slave):
    # type: (Dict[str, Any], Any, Dict[str, Any]) -> List[Request]
    """Function 1-4: one read of the tag's size; 5, 6, 15, 16: the write of `value`
    encoded as the tag's type. ValueError for a value the type cannot hold."""
    code = tag["functionCode"]
    count = tag.get("objectsCount", 1)
    if code in READS:
        return [(READS[code], tag["address"], codec.registers_for(tag["type"], count))]
    encoded = codec.encode(value, tag["type"], count, tag.get("byteOrder") or slave["byteOrder"],
                           tag.get("wordOrder") or slave["wordOrder"])
    if code == 5:
        return [("write_coil", tag["address"], bool(encoded[0]))]
    if code == 15:
        return [("write_coils", tag["address"], [bool(b) for b in encoded])]
    if code == 6 and len(encoded) == 1:
        return [("write_register", tag["address"], encoded[0])]
    return [("write_registers", tag["address"], encoded)]

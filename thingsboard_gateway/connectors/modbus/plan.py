"""Which Modbus requests read a slave's tags: neighbouring addresses with the same
function code merge into one request (pure)."""
from typing import Any, Dict, List, NamedTuple

from thingsboard_gateway.connectors.modbus.codec import registers_for

MAX_REGISTERS = 125   # per read of holding/input registers (Modbus spec)
MAX_BITS = 2000       # per read of coils/discrete inputs

Read = NamedTuple("Read", [("function_code", int), ("address", int), ("count", int), ("tags", List[Dict[str, Any]])])


def plan_reads(tags, merge=True, max_gap=0):
    # type: (List[Dict[str, Any]], bool, int) -> List[Read]
    """Requests covering every tag. Tags of one function code whose address ranges touch
    (or are at most max_gap apart) share a request within the protocol's size limit."""
    reads = []  # type: List[Read]
    by_code = {}  # type: Dict[int, List[Dict[str, Any]]]
    for tag in tags:
        by_code.setdefault(tag["functionCode"], []).append(tag)
    for code in sorted(by_code):
        limit = MAX_BITS if code in (1, 2) else MAX_REGISTERS
        current = None  # type: Any
        for tag in sorted(by_code[code], key=lambda t: t["address"]):
            size = registers_for(tag["type"], tag.get("objectsCount", 1))
            start, end = tag["address"], tag["address"] + size
            if (merge and current is not None and start <= current[1] + max_gap
                    and max(end, current[1]) - current[0] <= limit):
                current[1] = max(current[1], end)
                current[2].append(tag)
                continue
            if current is not None:
                reads.append(Read(code, current[0], current[1] - current[0], current[2]))
            current = [start, end, [tag]]
        if current is not None:
            reads.append(Read(code, current[0], current[1] - current[0], current[2]))
    return reads

"""Register and bit values <-> typed values, by type name, byte order and word order (pure).

A register holds 16 bits. `byteOrder` orders the two bytes inside each register,
`wordOrder` orders the registers of a multi-register value (BIG: most significant
first). Decoding is a table: type -> (registers needed, struct format).
"""
import struct
from typing import Any, List, Optional, Tuple

BIG, LITTLE = "BIG", "LITTLE"

# type -> (struct format of the whole value, registers; None = objectsCount registers)
NUMERIC = {
    "8int": ("b", 1), "8uint": ("B", 1),
    "16int": ("h", 1), "16uint": ("H", 1),
    "32int": ("i", 2), "32uint": ("I", 2),
    "64int": ("q", 4), "64uint": ("Q", 4),
    "16float": ("e", 1), "32float": ("f", 2), "64float": ("d", 4),
}
ALIASES = {"int": "16int", "uint": "16uint", "float": "32float", "double": "64float", "long": "64int",
           "int8": "8int", "int16": "16int", "int32": "32int", "int64": "64int", "uint8": "8uint",
           "uint16": "16uint", "uint32": "32uint", "uint64": "64uint", "float16": "16float",
           "float32": "32float", "float64": "64float", "bit": "bits", "coil": "bits"}
TYPES = sorted(set(NUMERIC) | {"bits", "string", "bytes"})


def canonical(type_name):
    # type: (str) -> str
    return ALIASES.get(type_name, type_name)


def registers_for(type_name, objects_count=1):
    # type: (str, int) -> int
    """How many registers (or bits, for `bits`) a tag reads."""
    type_name = canonical(type_name)
    if type_name in NUMERIC:
        return NUMERIC[type_name][1]
    return max(1, objects_count)


def _to_bytes(registers, byte_order, word_order):
    # type: (List[int], str, str) -> bytes
    """Registers -> big-endian bytes of the value (most significant first)."""
    words = list(registers) if word_order == BIG else list(reversed(registers))
    out = bytearray()
    for word in words:
        hi, lo = (word >> 8) & 0xFF, word & 0xFF
        out += bytes((hi, lo)) if byte_order == BIG else bytes((lo, hi))
    return bytes(out)


def _from_bytes(data, byte_order, word_order):
    # type: (bytes, str, str) -> List[int]
    words = []
    for i in range(0, len(data), 2):
        hi, lo = data[i], data[i + 1]
        words.append((hi << 8 | lo) if byte_order == BIG else (lo << 8 | hi))
    return words if word_order == BIG else list(reversed(words))


def decode(values, type_name, objects_count=1, byte_order=BIG, word_order=BIG, bit_target="bool"):
    # type: (List[Any], str, int, str, str, str) -> Any
    """Registers (or bits) -> the value. ValueError when there are too few."""
    type_name = canonical(type_name)
    if type_name == "bits":
        bits = [bool(b) for b in values[:max(1, objects_count)]]
        if bit_target == "int":
            bits = [int(b) for b in bits]
        return bits[0] if len(bits) == 1 else bits
    needed = registers_for(type_name, objects_count)
    if len(values) < needed:
        raise ValueError("%s needs %d registers, got %d" % (type_name, needed, len(values)))
    registers = list(values[:needed])
    if type_name in ("8int", "8uint"):
        low = registers[0] & 0xFF if byte_order == BIG else (registers[0] >> 8) & 0xFF
        return struct.unpack(">" + NUMERIC[type_name][0], bytes((low,)))[0]
    if type_name in NUMERIC:
        return struct.unpack(">" + NUMERIC[type_name][0], _to_bytes(registers, byte_order, word_order))[0]
    data = _to_bytes(registers, byte_order, BIG)  # text and bytes keep register order
    if type_name == "string":
        return data.split(b"\x00", 1)[0].decode("utf-8", errors="replace")
    return data.hex()


def encode(value, type_name, objects_count=1, byte_order=BIG, word_order=BIG):
    # type: (Any, str, int, str, str) -> List[Any]
    """The value -> registers (or bits) to write. ValueError for a value of the wrong kind."""
    type_name = canonical(type_name)
    if type_name == "bits":
        items = value if isinstance(value, list) else [value]
        return [_truth(v) for v in items]
    if type_name in ("8int", "8uint"):
        byte = struct.pack(">" + NUMERIC[type_name][0], int(value))[0]
        return [byte] if byte_order == BIG else [byte << 8]
    if type_name in NUMERIC:
        fmt = NUMERIC[type_name][0]
        number = float(value) if fmt in "efd" else int(value)
        try:
            data = struct.pack(">" + fmt, number)
        except struct.error as e:
            raise ValueError("%r does not fit %s: %s" % (value, type_name, e))
        return _from_bytes(data, byte_order, word_order)
    size = 2 * max(1, objects_count)
    if type_name == "string":
        data = str(value).encode("utf-8")[:size].ljust(size, b"\x00")
    else:
        data = bytes.fromhex(value) if isinstance(value, str) else bytes(value)
        data = data[:size].ljust(size, b"\x00")
    return _from_bytes(data, byte_order, BIG)


def _truth(value):
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "on", "yes")
    return bool(value)


def scale(value, divider=None, multiplier=None):
    # type: (Any, Optional[float], Optional[float]) -> Any
    """Upstream's divider/multiplier for numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if multiplier not in (None, 1):
        value = value * multiplier
    if divider not in (None, 0, 1):
        value = value / float(divider)
    return value


def compile_decoder(type_name, objects_count=1, byte_order=BIG, word_order=BIG, bit_target="bool",
                    divider=None, multiplier=None):
    # type: (str, int, str, str, str, Optional[float], Optional[float]) -> Any
    """A fast decoder for one tag, made once: values (from its first register/bit) ->
    scaled value. Same results as decode() + scale(); numbers take two struct calls."""
    type_name = canonical(type_name)
    scaled = multiplier not in (None, 1) or divider not in (None, 0, 1)
    if type_name not in NUMERIC or type_name in ("8int", "8uint"):
        def generic(values):
            return scale(decode(values, type_name, objects_count, byte_order, word_order, bit_target),
                         divider, multiplier)
        return generic
    fmt, count = NUMERIC[type_name]
    registers = struct.Struct(("<" if byte_order == LITTLE else ">") + "%dH" % count)
    value_struct = struct.Struct(">" + fmt)
    reverse = word_order == LITTLE and count > 1

    def numeric(values):
        words = values[count - 1::-1] if reverse else values[:count]
        if len(words) < count:
            raise ValueError("%s needs %d registers, got %d" % (type_name, count, len(words)))
        value = value_struct.unpack(registers.pack(*words))[0]
        return scale(value, divider, multiplier) if scaled else value
    return numeric

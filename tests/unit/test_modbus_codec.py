"""Modbus decoding/encoding against pymodbus's own payload builder, and read merging."""
import pytest
from pymodbus.constants import Endian
from pymodbus.payload import BinaryPayloadBuilder

from thingsboard_gateway.connectors.modbus import codec
from thingsboard_gateway.connectors.modbus.plan import plan_reads

ORDERS = [(b, w) for b in ("BIG", "LITTLE") for w in ("BIG", "LITTLE")]
ENDIAN = {"BIG": Endian.Big, "LITTLE": Endian.Little}
NUMBERS = [("16int", -1234, "add_16bit_int"), ("16uint", 54321, "add_16bit_uint"),
           ("32int", -123456789, "add_32bit_int"), ("32uint", 3123456789, "add_32bit_uint"),
           ("64int", -1234567890123, "add_64bit_int"), ("64uint", 12345678901234, "add_64bit_uint"),
           ("16float", 1.5, "add_16bit_float"), ("32float", 3.5, "add_32bit_float"),
           ("64float", -2.25, "add_64bit_float")]


@pytest.mark.parametrize("byte_order,word_order", ORDERS)
@pytest.mark.parametrize("type_name,value,method", NUMBERS)
def test_numbers_match_pymodbus(type_name, value, method, byte_order, word_order):
    builder = BinaryPayloadBuilder(byteorder=ENDIAN[byte_order], wordorder=ENDIAN[word_order])
    getattr(builder, method)(value)
    registers = builder.to_registers()
    assert codec.decode(registers, type_name, 1, byte_order, word_order) == value
    assert codec.compile_decoder(type_name, 1, byte_order, word_order)(registers + [0, 0]) == value
    assert codec.encode(value, type_name, 1, byte_order, word_order) == registers


@pytest.mark.parametrize("byte_order", ["BIG", "LITTLE"])
def test_text_bytes_and_8bit(byte_order):
    regs = codec.encode("HELLO", "string", 4, byte_order)
    assert len(regs) == 4 and codec.decode(regs, "string", 4, byte_order) == "HELLO"
    assert codec.decode(codec.encode("0a0b0c0d", "bytes", 2, byte_order), "bytes", 2, byte_order) == "0a0b0c0d"
    assert codec.decode(codec.encode(-5, "8int", 1, byte_order), "8int", 1, byte_order) == -5
    assert codec.decode(codec.encode(200, "8uint", 1, byte_order), "8uint", 1, byte_order) == 200


def test_bits_and_scaling():
    assert codec.decode([1, 0, 1], "bits", 3) == [True, False, True]
    assert codec.decode([1], "bits", 1, bit_target="int") == 1
    assert codec.encode("true", "bits") == [True]
    assert codec.scale(215, divider=10) == 21.5 and codec.scale(3, multiplier=2) == 6


def test_too_few_registers_is_an_error():
    with pytest.raises(ValueError):
        codec.decode([1], "32int")


def test_neighbouring_tags_merge_into_one_read():
    tags = [{"tag": "a", "type": "16int", "functionCode": 3, "address": 0},
            {"tag": "b", "type": "32int", "functionCode": 3, "address": 1},
            {"tag": "c", "type": "16int", "functionCode": 3, "address": 10},
            {"tag": "d", "type": "bits", "functionCode": 1, "address": 0, "objectsCount": 3},
            {"tag": "e", "type": "16int", "functionCode": 4, "address": 0}]
    reads = plan_reads(tags)
    assert [(r.function_code, r.address, r.count, [t["tag"] for t in r.tags]) for r in reads] == [
        (1, 0, 3, ["d"]), (3, 0, 3, ["a", "b"]), (3, 10, 1, ["c"]), (4, 0, 1, ["e"])]
    assert len(plan_reads(tags, merge=False)) == 5


def test_merged_reads_stay_within_125_registers():
    tags = [{"tag": "t%d" % i, "type": "64int", "functionCode": 3, "address": i * 4} for i in range(100)]
    reads = plan_reads(tags)
    assert all(r.count <= 125 for r in reads) and sum(len(r.tags) for r in reads) == 100

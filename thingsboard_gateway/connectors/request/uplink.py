"""The request uplink: a polled response (and its sub-requests' answers) -> ThingsBoard
data through the shared JSON converter. Pure."""
from typing import Any, Dict, List, Tuple

from thingsboard_gateway.conversion.expression import Template


def unpack(data, expression):
    # type: (Any, Template) -> Any
    """`dataUnpackExpression`: the part of the response that holds the data; ValueError
    when it finds nothing."""
    value, missing = expression.evaluate(data)
    if missing is not None:
        raise ValueError("dataUnpackExpression %s found nothing" % expression.source)
    return value


def items(data):
    # type: (Any) -> List[Any]
    """The response's items: each element of a list, else the response itself."""
    return list(data) if isinstance(data, list) else [data]

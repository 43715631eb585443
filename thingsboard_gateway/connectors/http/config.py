"""Config pieces REST and request share: an outgoing request to a device (attribute
updates and RPCs of both connectors)."""
from thingsboard_gateway.config.schema import Field

OUTGOING = Field("object", extra=True, fields={
    "HTTPMethod": Field("str"),
    "requestUrlExpression": Field("str", required=True),
    "valueExpression": Field("str"),
    "timeout": Field("number", min=0.01),
    "tries": Field("int", min=1),
    "security": Field("object", extra=True, fields={"type": Field("str", choices=["anonymous", "basic", "cert"])}),
})

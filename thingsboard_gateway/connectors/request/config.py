"""Validation of the request connector's file (upstream request.json), with defaults."""
from typing import Any, Dict, List, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.schema import ACCEPTED_VALUE, Field, validate
from thingsboard_gateway.connectors.http.config import OUTGOING

SECURITY = Field("object", default=dict, fields={
    "type": Field("str", choices=["anonymous", "basic", "cert"], default="anonymous"),
    "username": Field("str"), "password": Field("str"), "cert": Field("str"), "key": Field("str"),
})

MAPPING = Field("object", fields={
    "url": Field("str", required=True),
    "httpMethod": Field("str", choices=["GET", "POST", "PUT", "PATCH", "DELETE", "get", "post", "put", "patch",
                                        "delete"], default="GET"),
    "httpHeaders": Field("object", extra=True, default=dict),
    "content": Field("any"),
    "allowRedirects": Field("bool", default=True),
    "timeout": Field("number", min=0.01, default=10),
    "scanPeriod": Field("number", min=0.01, default=60),
    "dataUnpackExpression": Field("str", default=""),
    "subRequests": Field("object", default=dict, extra=True),
    "converter": Field("object", required=True, extra=True, fields={
        "type": Field("str", choices=["json", "custom"], default="json"),
    }),
})

CONNECTOR = Field("object", fields={
    "name": ACCEPTED_VALUE, "id": ACCEPTED_VALUE, "logLevel": ACCEPTED_VALUE, "configuration": ACCEPTED_VALUE,
    "enableRemoteLogging": ACCEPTED_VALUE, "configVersion": ACCEPTED_VALUE,
    "host": Field("str", required=True, check=lambda v: None if v.startswith(("http://", "https://")) else
                  "expected a URL starting with http:// or https://"),
    "SSLVerify": Field("bool", default=True),
    "security": SECURITY,
    "mapping": Field("list", item=MAPPING, default=list),
    "attributeUpdates": Field("list", item=OUTGOING, default=list),
    "serverSideRpc": Field("list", item=OUTGOING, default=list),
})


def load(config, file, warnings=None):
    # type: (Any, str, Optional[List[str]]) -> Dict[str, Any]
    """The validated file with defaults. A subRequest's processingFunction (Python source)
    is never run: one warning each, and the sub-request's JSON goes to the converter under
    its name instead."""
    if not isinstance(config, dict):
        raise ConfigError(file, "", "expected a JSON object")
    config = validate(config, CONNECTOR, file, "", warnings)
    if config["security"]["type"] == "basic" and not config["security"].get("username"):
        raise ConfigError(file, "security.username", "required for security type basic")
    for i, mapping in enumerate(config["mapping"]):
        mapping["httpMethod"] = mapping["httpMethod"].upper()
        for name, sub in mapping["subRequests"].items():
            where = "mapping[%d].subRequests.%s" % (i, name)
            if not isinstance(sub, dict) or not isinstance(sub.get("url"), str):
                raise ConfigError(file, where + ".url", "required: the sub-request's URL template")
            if sub.get("processingFunction") and warnings is not None:
                warnings.append("%s: %s.processingFunction: Python code in a config file is never run; the "
                                "sub-request's JSON is given to the converter as ${%s} instead" % (file, where, name))
    return config

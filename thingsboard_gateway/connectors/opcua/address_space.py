"""The address space of one connected OPC-UA server as the session needs it, in few
requests: each parent node browsed once (BATCH references per Browse, BrowseNext for the
rest) and remembered until forget(); paths resolved from those answers; values read
BATCH nodes per Read request."""
import re
from typing import Any, Callable, Dict, List, Tuple

from thingsboard_gateway.connectors.opcua import config as opcua_config

BATCH = 500  # nodes per Read or CreateMonitoredItems request, references per Browse
MAX_BROWSE_DEPTH = 8
OBJECT_CLASS = 1  # NodeClass.Object: the only nodes a device pattern descends through
LOOKUP = re.compile(r"^\$\{(.*)\}$")


def _inner(expression):
    # type: (str) -> str
    match = LOOKUP.match(expression.strip())
    return match.group(1).strip() if match else expression.strip()


class AddressSpace(object):
    """client: a connected python-opcua Client; stopping() is true when long work should end."""

    def __init__(self, client, stopping):
        # type: (Any, Callable[[], bool]) -> None
        self._client = client
        self._stopping = stopping
        self._children = {}  # type: Dict[Any, Dict[str, Tuple[Any, int]]]  parent -> children

    def forget(self):
        """Drop the remembered browse answers (after a scan: thousands of names)."""
        self._children = {}

    def children(self, parent):
        # type: (Any) -> Dict[str, Tuple[Any, int]]
        """browse name -> (node id, node class) of a node's hierarchical children: one
        Browse of BATCH references, BrowseNext for the rest; remembered during a scan."""
        known = self._children.get(parent)
        if known is not None:
            return known
        from opcua import ua
        description = ua.BrowseDescription()
        description.NodeId = parent
        description.BrowseDirection = ua.BrowseDirection.Forward
        description.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
        description.IncludeSubtypes = True
        description.NodeClassMask = 0
        description.ResultMask = 12  # NodeClass and BrowseName: all we read
        params = ua.BrowseParameters()
        params.NodesToBrowse.append(description)
        params.RequestedMaxReferencesPerNode = BATCH
        uaclient = self._client.uaclient
        result = uaclient.browse(params)[0]
        found = {}  # type: Dict[str, Tuple[Any, int]]
        while True:
            for reference in result.References:
                found.setdefault(reference.BrowseName.Name, (reference.NodeId, int(reference.NodeClass)))
            if not result.ContinuationPoint:
                break
            more = ua.BrowseNextParameters()
            more.ContinuationPoints = [result.ContinuationPoint]
            more.ReleaseContinuationPoints = False
            result = uaclient.browse_next(more)[0]
        self._children[parent] = found
        return found

    def objects(self):
        """(path, node id) of every Object under Objects, paths like Root.Objects.MyObject:
        a Browse per Object, never one per variable."""
        out = []
        objects = self._client.get_objects_node().nodeid
        stack = [(objects, "Root.Objects", 0)]
        while stack:
            node_id, path, depth = stack.pop()
            out.append((path, node_id))
            if depth >= MAX_BROWSE_DEPTH or self._stopping():
                continue
            for name, (child, node_class) in self.children(node_id).items():
                if node_class != OBJECT_CLASS or (depth == 0 and name == "Server"):
                    continue  # values are not devices; the server's own diagnostics are not
                stack.append((child, path + "." + name, depth + 1))
        return out

    def node_id_for(self, device_node_id, expression):
        """A node's id by relative path (`${Temperature}`, `${Sub.Value}`), absolute
        browse path (`Root\\.Objects\\.Obj\\.Var`) or node id (`ns=2;i=5`); None if none."""
        target = _inner(expression)
        if opcua_config.NODE_ID.match(target):
            return self._client.get_node(target).nodeid
        steps = [s for s in re.split(r"\\?\.", target) if s]
        node_id = device_node_id
        if steps[:2] == ["Root", "Objects"]:
            node_id, steps = self._client.get_objects_node().nodeid, steps[2:]
        for step in steps:
            child = self.children(node_id).get(step)
            if child is None:
                return None
            node_id = child[0]
        return node_id

    def read(self, node_ids):
        """Current values of `node_ids`, BATCH per Read request, without timestamps
        (polled values carry the gateway's time); a value with a bad status is None."""
        from opcua import ua
        values = []  # type: List[Any]
        for start in range(0, len(node_ids), BATCH):
            params = ua.ReadParameters()
            params.TimestampsToReturn = ua.TimestampsToReturn.Neither
            for node_id in node_ids[start:start + BATCH]:
                item = ua.ReadValueId()
                item.NodeId = node_id
                item.AttributeId = ua.AttributeIds.Value
                params.NodesToRead.append(item)
            values.extend(r.Value.Value if r.StatusCode.is_good() else None
                          for r in self._client.uaclient.read(params))
            if self._stopping():
                break
        return values

"""The OPC-UA connector (python-opcua, synchronous)."""

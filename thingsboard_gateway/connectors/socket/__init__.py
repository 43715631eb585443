"""TCP/UDP socket connector: upstream socket.json."""

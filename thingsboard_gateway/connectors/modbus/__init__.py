"""The Modbus connector: polls TCP/UDP/serial slaves on a schedule, writes on RPC."""

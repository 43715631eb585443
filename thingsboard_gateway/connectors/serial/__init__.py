"""Serial (pyserial) connector: upstream custom_serial.json."""

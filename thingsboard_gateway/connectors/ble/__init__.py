"""BLE connector on bluepy (upstream ble.json)."""

"""Low-level pieces every layer may use: no imports from the rest of the gateway."""

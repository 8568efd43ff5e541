"""The Graph reader: documented shapes, faults, throttling and credentials, through the real SDK."""

"""Polls end to end: Graph emulator -> normalize -> Azurite -> API."""

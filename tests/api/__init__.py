"""The HTTP API through the real ASGI app over seeded tables."""

"""The HTTP API: a FastAPI app the Functions host serves through its ASGI bridge."""

"""The Functions app's wiring, settings, CLI, cold start and secrets."""

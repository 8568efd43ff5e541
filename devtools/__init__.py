"""Developer tools for Entra Sync Monitor: local stand-ins for the services the app talks to."""

"""The domain: Graph's synchronization data as this app models it. Pure: no I/O."""

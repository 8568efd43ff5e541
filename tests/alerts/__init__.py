"""Alert rules (pure) and the alert step with delivery (Azurite, webhook receiver)."""

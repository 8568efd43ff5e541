"""Alerts: rules over each poll's jobs, their memory, and delivery to webhooks."""

"""Alerts: rules over each poll's jobs, their memory, and delivery to webhooks.

Start at `after_poll.alerts_after_poll` (the step `run_poll` calls) and `rules.evaluate` (the
pure decision it makes); docs/alerts.md lists every module of this package and what it owns.
"""

"""Logging the app's own way: the SDKs log every HTTP request at INFO, which buries the poll's
one-line records and costs Application Insights ingestion."""

from __future__ import annotations

import logging

NOISY_LOGGERS = ("azure", "httpx", "kiota_http", "kiota_abstractions", "msgraph", "uvicorn.access")


def quiet_sdk_loggers(level: int = logging.WARNING) -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(level)

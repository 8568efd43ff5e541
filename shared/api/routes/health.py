"""`GET /api/health`: the monitor's own freshness, for platform health checks. Open without a
key or a signed-in caller, and nothing about the tenant in it; the check itself is
`shared.api.service_health` (function_app.py also serves it as an anonymous function).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from shared.api.http import request_settings
from shared.api.models import MonitorHealth
from shared.api.service_health import monitor_health

router = APIRouter()


@router.get(
    "/api/health",
    response_model=MonitorHealth,
    responses={503: {"model": MonitorHealth, "description": "Polling has stopped keeping up, or cannot run"}},
    tags=["health"],
    operation_id="getHealth",
    summary="The monitor's own health",
)
async def health(request: Request, response: Response) -> dict[str, object]:
    """The monitor's own freshness, for platform health checks: open without a key, and
    nothing about the tenant in it."""
    status, body = await monitor_health(settings=lambda: request_settings(request.scope))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return body

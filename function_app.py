"""The Function app: wiring only. Triggers parse their input and call `shared/`.

Indexing this module imports neither msgraph nor any client: the HTTP API and the poll
create their clients on first use. Telemetry (docs/telemetry.md) is configured by the timers'
and queues' work on their first run, never here and never for an HTTP request.
"""

import json
import logging

import azure.functions as func

from shared.api.app import create_app
from shared.api.service_health import monitor_health
from shared.logs import quiet_sdk_loggers
from shared.poll import run_poll
from shared.retention import run_retention
from shared.work import run_poisoned_work_item, run_work_item

quiet_sdk_loggers()
app = func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.FUNCTION)


@app.timer_trigger(schedule="%POLL_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
async def poll(timer: func.TimerRequest) -> None:
    if timer.past_due:
        logging.warning("poll timer is past due; polling now")
    await run_poll(trigger="timer", past_due=timer.past_due)


@app.timer_trigger(schedule="%DISCOVERY_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
async def discover(timer: func.TimerRequest) -> None:
    if timer.past_due:
        logging.warning("discovery timer is past due; discovering now")
    await run_poll(trigger="discovery", past_due=timer.past_due, discover=True)


# The work queue (shared/work.py): a poll too large for one run is done item by item, spread
# by the platform across instances; host.json's `extensions.queues` sets retries and batch size.
@app.queue_trigger(arg_name="message", queue_name="%WORK_QUEUE_NAME%", connection="AzureWebJobsStorage")
async def work_item(message: func.QueueMessage) -> None:
    await run_work_item(message.get_body())


# Where the host moves an item that failed maxDequeueCount times: recorded in its poll's record.
@app.queue_trigger(arg_name="message", queue_name="%WORK_QUEUE_NAME%-poison", connection="AzureWebJobsStorage")
async def poisoned_work_item(message: func.QueueMessage) -> None:
    await run_poisoned_work_item(message.get_body())


@app.timer_trigger(schedule="%RETENTION_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
async def retention(timer: func.TimerRequest) -> None:
    await run_retention()


# A literal route wins over the ASGI catch-all: platform health checks reach it without a key.
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    status, body = await monitor_health()
    return func.HttpResponse(
        json.dumps(body), status_code=status, mimetype="application/json", headers={"Cache-Control": "no-store"}
    )

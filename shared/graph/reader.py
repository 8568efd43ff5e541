"""Reading provisioning jobs from Microsoft Graph through the Graph SDK.

Imported only by the poll: msgraph-sdk is large and slow to import, and no HTTP request of
the API needs it. Requests are built by the SDK's request builders and sent through its
request adapter and middleware (retries honouring Retry-After, redirects, telemetry), but
responses are read as bytes and parsed here: the SDK's typed models turn enum members they
do not know into None, and its batch response items can come back with empty bodies.

Job reads go 20 to a JSON `$batch` (Graph's limit), a bounded number in flight at once;
an item answered 429/503/504 inside a batch is retried after its own Retry-After, however
long, as long as the retry would start before the poll's deadline.

A bad answer costs only the service principals it was for: a cut-short or unexpected jobs
answer, or a `$batch` that never answered, becomes an error result for those items, never a
"no jobs" answer. Only Graph failing every request, a token that cannot be had, or the
service principal list being refused stops the poll (GraphUnavailableError).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.audit_logs.provisioning.provisioning_request_builder import ProvisioningRequestBuilder
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.service_principals.service_principals_request_builder import (
    ServicePrincipalsRequestBuilder,
)
from msgraph_core import GraphClientFactory

from shared.domain.timestamps import retry_after_seconds
from shared.graph.auth import auth_provider
from shared.graph.counting import CountingHandler, counters
from shared.graph.credentials import build_credential
from shared.graph.errors import (
    BATCH_TRANSPORT_ERROR,
    MALFORMED_RESPONSE,
    TRANSPORT_ERROR,
    AnswerError,
    GraphForbiddenError,
    GraphThrottledError,
    GraphUnauthorizedError,
    GraphUnavailableError,
)
from shared.graph.types import ItemResult, LogPages
from shared.process_cache import ProcessCache
from shared.settings import Settings

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

BATCH_LIMIT = 20  # Graph's maximum sub-requests in one $batch
SERVICE_PRINCIPAL_FIELDS = ["id", "appId", "displayName"]
PAGE_SIZE = 999  # Graph's maximum $top for servicePrincipals
_RETRYABLE_ITEM = frozenset({429, 503, 504})
_ITEM_ATTEMPTS = 5
_TRANSPORT_ATTEMPTS = 3
# Graph error bodies parse as ODataError for any 4xx or 5xx status.
_ERROR_MAP: dict[str, Any] = {"4XX": ODataError, "5XX": ODataError}
_NO_BATCH_STATUSES = frozenset({404, 405, 501})
_NO_ANSWER = frozenset({BATCH_TRANSPORT_ERROR, TRANSPORT_ERROR})
_RETRY_AFTER_CAP = 120.0  # seconds, for a read with no deadline; with one, the deadline bounds it
_sleep = asyncio.sleep  # waits for Retry-After; a test may watch them without sleeping


def _error_from_body(status: int, body: Any) -> ItemResult:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return ItemResult(status, None, str(error.get("code") or ""), str(error.get("message") or ""))
    return ItemResult(status, None, f"HTTP{status}", "Graph answered with an error and no error body")


def _retry_after_seconds(headers: Any) -> float | None:
    if not isinstance(headers, dict):
        return None
    for name, value in headers.items():
        if name.lower() == "retry-after":
            seconds = retry_after_seconds(value, now=datetime.now(UTC))
            return max(0.0, seconds) if seconds is not None else None
    return None


class GraphReader:
    """One Graph client per process: the SDK adapter, its credential and the poll's counters."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._credential = build_credential(settings)
        http_client = KiotaClientFactory.get_default_client()
        http_client.base_url = httpx.URL(settings.graph_base_url + "/")
        middleware = KiotaClientFactory.get_default_middleware(None)
        middleware.append(CountingHandler())
        http_client = GraphClientFactory.create_with_custom_middleware(middleware, client=http_client)
        self._http_client = http_client
        self._adapter = GraphRequestAdapter(auth_provider(settings, self._credential), http_client)
        self._adapter.base_url = settings.graph_base_url
        self._client = GraphServiceClient(request_adapter=self._adapter)
        self._concurrency = asyncio.Semaphore(settings.graph_max_concurrency)
        self._batch_supported = True

    async def close(self) -> None:
        await self._http_client.aclose()
        if self._credential is not None:
            await self._credential.close()

    async def _send(self, request: RequestInformation) -> Any:
        """Send through the SDK and parse the JSON body; transport faults and bodies that are
        not JSON are retried with jitter, then raised as AnswerError."""
        for attempt in range(1, _TRANSPORT_ATTEMPTS + 1):
            try:
                raw = await self._adapter.send_primitive_async(request, "bytes", _ERROR_MAP)
                return json.loads(raw) if raw else None
            except (httpx.TransportError, ValueError) as error:  # JSONDecodeError, UnicodeDecodeError
                if attempt == _TRANSPORT_ATTEMPTS:
                    code = TRANSPORT_ERROR if isinstance(error, httpx.TransportError) else MALFORMED_RESPONSE
                    what = "did not answer" if code == TRANSPORT_ERROR else "answered with a body that is not JSON"
                    raise AnswerError(code, f"Graph {what}: {type(error).__name__}: {error}") from error
                counters().retries += 1
                await asyncio.sleep(min(8.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ discovery

    async def list_service_principals(self) -> list[dict[str, Any]]:
        """Every service principal in the tenant (the raw objects), following nextLink."""
        query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
            select=SERVICE_PRINCIPAL_FIELDS, top=PAGE_SIZE
        )
        builder = self._client.service_principals
        request = builder.to_get_request_information(RequestConfiguration(query_parameters=query))
        found: list[dict[str, Any]] = []
        waited = 0
        while True:
            try:
                page = await self._send(self._bounded(request))
            except APIError as error:
                status = getattr(error, "response_status_code", 0)
                if (wait := self._bounded_wait(error, waited)) is not None:
                    waited += 1
                    counters().retries += 1
                    await _sleep(wait)
                    continue
                if status == 401:
                    raise GraphUnauthorizedError(
                        "Graph refused the app's token (HTTP 401): is the app consented in this tenant?", status=401
                    ) from error
                if status in (429, 503):
                    raise GraphThrottledError(
                        f"Graph throttled the service principal list (HTTP {status}) past its retries", status=status
                    ) from error
                if status != 403:
                    raise
                raise GraphForbiddenError(
                    "Graph refused to list the service principals (HTTP 403): the app needs the "
                    "Microsoft Graph application permission Application.Read.All, with admin consent",
                    status=403,
                ) from error
            if not isinstance(page, dict):
                raise GraphUnavailableError("servicePrincipals page is not a JSON object")
            found.extend(item for item in page.get("value") or [] if isinstance(item, dict))
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str) or not next_link:
                return found
            request = builder.with_url(next_link).to_get_request_information()
            waited = 0

    def _bounded(self, request: RequestInformation) -> RequestInformation:
        """With a bound on throttling waits (a tenant polled among others), the SDK is not left to
        wait out a Retry-After itself, up to three times 180 s: this reader waits, within it."""
        if self.settings.graph_retry_wait_max_seconds is not None:
            request.add_request_options([RetryHandlerOption(max_retries=0)])
        return request

    def _bounded_wait(self, error: APIError, waited: int) -> float | None:
        """How long to wait before asking again (throttled or unavailable, within the bound and
        three tries); None: do not ask again."""
        patience = self.settings.graph_retry_wait_max_seconds
        status = getattr(error, "response_status_code", 0)
        if patience is None or status not in _RETRYABLE_ITEM or waited >= _ITEM_ATTEMPTS - 1:
            return None
        retry_after = _retry_after_seconds(dict(getattr(error, "response_headers", None) or {}))
        wait = retry_after if retry_after is not None else 0.5 * 2 ** (waited + 1)
        return wait if wait <= patience else None

    # ------------------------------------------------------------ provisioning logs

    async def provisioning_events(
        self,
        filter_: str,
        *,
        page_size: int,
        max_pages: int,
        deadline: float | None = None,
        orderby: str | None = None,
    ) -> LogPages:
        """The events of one filtered query, following nextLink (which keeps the query's
        options, `$orderby` included). 429s are waited out by the SDK's retry handler, as for
        every request; other refusals end the read (403: the app lacks AuditLog.Read.All /
        Directory.Read.All)."""
        query = ProvisioningRequestBuilder.ProvisioningRequestBuilderGetQueryParameters(
            filter=filter_, top=page_size, orderby=[orderby] if orderby else None
        )
        builder = self._client.audit_logs.provisioning
        request = builder.to_get_request_information(RequestConfiguration(query_parameters=query))
        read = LogPages([])
        while True:
            if read.pages >= max_pages or (deadline is not None and time.monotonic() >= deadline):
                return read
            try:
                page = await self._send(request)
            except AnswerError as error:
                read.status, read.error_code, read.error_message = 0, error.code, str(error)[:500]
                return read
            except APIError as error:
                result = self._api_error_result(error)
                read.status, read.error_code, read.error_message = (
                    result.status,
                    result.error_code,
                    result.error_message,
                )
                return read
            read.pages += 1
            value = page.get("value") if isinstance(page, dict) else None
            if not isinstance(value, list):
                read.error_code, read.error_message = MALFORMED_RESPONSE, "a provisioning log page has no value list"
                return read
            read.events.extend(value)
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str) or not next_link:
                read.complete = True
                return read
            request = builder.with_url(next_link).to_get_request_information()

    # ------------------------------------------------------------ batched reads

    async def get_service_principals(
        self, ids: Sequence[str], *, deadline: float | None = None
    ) -> dict[str, ItemResult]:
        select = ",".join(SERVICE_PRINCIPAL_FIELDS)
        urls = {sp_id: f"/servicePrincipals/{quote(sp_id, safe='')}?$select={select}" for sp_id in ids}
        return await self.batch_get(urls, deadline=deadline)

    async def get_jobs(self, ids: Sequence[str], *, deadline: float | None = None) -> dict[str, ItemResult]:
        """Each service principal's synchronization jobs (body: the list of raw jobs).
        `deadline` is a time.monotonic() instant: batches not started before it, and items
        whose Retry-After reaches past it, are left out of the answer (for the next poll)."""
        urls = {sp_id: f"/servicePrincipals/{quote(sp_id, safe='')}/synchronization/jobs" for sp_id in ids}
        results = await self.batch_get(urls, deadline=deadline)
        for sp_id, result in list(results.items()):
            if result.ok:
                results[sp_id] = await self._all_jobs(result)
        return results

    async def _all_jobs(self, first: ItemResult) -> ItemResult:
        """The whole jobs list, following nextLink; any page that is not a JSON object with a
        `value` list makes the answer an error, never a shorter list."""
        jobs: list[Any] = []
        page: Any = first.body
        while True:
            value = page.get("value") if isinstance(page, dict) else None
            if not isinstance(value, list):
                found = "no JSON object" if not isinstance(page, dict) else "no value list"
                return ItemResult(200, None, MALFORMED_RESPONSE, f"the jobs answer has {found}")
            jobs.extend(value)
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str) or not next_link:
                return ItemResult(200, jobs)
            # The jobs collection rarely pages; when it does, the SDK follows the link as given.
            request = self._client.service_principals.with_url(next_link).to_get_request_information()
            try:
                page = await self._send(request)
            except AnswerError as error:
                return ItemResult(200 if error.code == MALFORMED_RESPONSE else 0, None, error.code, str(error)[:500])
            except APIError as error:
                return self._api_error_result(error)

    # ------------------------------------------------------------ operator actions

    async def job_action(self, sp_id: str, job_id: str, action: str, body: dict[str, Any] | None) -> ItemResult:
        """POST .../synchronization/jobs/{job}/restart, /pause or /start (shared/actions.py):
        status 204 when Graph took it, else Graph's error (or status 0: no answer). Never
        retried after a lost answer: the caller's request id makes a repeat safe instead."""
        job = self._client.service_principals.by_service_principal_id(sp_id).synchronization.jobs
        builder = job.by_synchronization_job_id(job_id)
        action_builder = {"restart": builder.restart, "pause": builder.pause, "start": builder.start}[action]
        request = RequestInformation(Method.POST, action_builder.url_template, action_builder.path_parameters)
        request.headers.try_add("Accept", "application/json")
        if body is not None:
            request.set_stream_content(json.dumps(body).encode(), "application/json")
        try:
            await self._adapter.send_no_response_content_async(request, _ERROR_MAP)
        except APIError as error:
            return self._api_error_result(error)
        except httpx.TransportError as error:
            return ItemResult(0, None, TRANSPORT_ERROR, f"Graph did not answer: {type(error).__name__}")
        return ItemResult(204, None)

    async def batch_get(self, urls: dict[str, str], *, deadline: float | None = None) -> dict[str, ItemResult]:
        """GET every URL (relative to the version root) in $batch calls of 20. A batch that
        gets no answer fails its own items; if no request got any answer, Graph is down."""
        keys = list(urls)
        chunks = [keys[i : i + BATCH_LIMIT] for i in range(0, len(keys), BATCH_LIMIT)]
        results: dict[str, ItemResult] = {}

        async def run(chunk: list[str]) -> None:
            async with self._concurrency:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                results.update(await self._batch_with_item_retries({k: urls[k] for k in chunk}, deadline))

        await asyncio.gather(*(run(chunk) for chunk in chunks))
        if results and all(result.error_code in _NO_ANSWER for result in results.values()):
            first = next(iter(results.values()))
            raise GraphUnavailableError(f"Graph did not answer any request: {first.error_message}")
        return results

    async def _batch_with_item_retries(self, urls: dict[str, str], deadline: float | None) -> dict[str, ItemResult]:
        pending = dict(urls)
        results: dict[str, ItemResult] = {}
        for attempt in range(1, _ITEM_ATTEMPTS + 1):
            answered = await self._post_batch(pending)
            retry: dict[str, str] = {}
            waits: list[float] = []
            for key, (result, retry_after) in answered.items():
                if result.status in _RETRYABLE_ITEM and attempt < _ITEM_ATTEMPTS:
                    retry[key] = pending[key]
                    if result.status in (429, 503):
                        counters().throttled += 1
                    waits.append(retry_after if retry_after is not None else 0.5 * 2**attempt)
                else:
                    results[key] = result
            if not retry:
                break
            # Honour the longest Retry-After among the items, however long, unless the retry
            # would start after the deadline; jitter spreads concurrent batches.
            wait = max(waits) + random.uniform(0, 0.25)
            if deadline is None:
                wait = min(wait, _RETRY_AFTER_CAP)  # no deadline to bound it (a pinned lookup)
            patience = self.settings.graph_retry_wait_max_seconds
            if (deadline is not None and time.monotonic() + wait >= deadline) or (
                patience is not None and wait > patience
            ):
                log.warning("%d items asked to retry after %.0f s, past the poll's deadline", len(retry), wait)
                counters().throttled_past_deadline += len(retry)
                break  # left out of the answer: unfinished, their stored jobs untouched
            counters().retries += len(retry)
            await _sleep(wait)
            pending = retry
        return results

    async def _post_batch(self, urls: dict[str, str]) -> dict[str, tuple[ItemResult, float | None]]:
        if not self._batch_supported:
            return await self._get_each(urls)
        ids = {str(index): key for index, key in enumerate(urls, start=1)}
        payload = {"requests": [{"id": item_id, "method": "GET", "url": urls[key]} for item_id, key in ids.items()]}
        request = RequestInformation(Method.POST, "{+baseurl}/$batch")
        request.headers.try_add("Accept", "application/json")
        request.set_stream_content(json.dumps(payload).encode(), "application/json")
        try:
            body = await self._send(self._bounded(request))
        except AnswerError as error:
            # This batch never answered usably: its items fail, the other batches go on. An
            # answer that is not JSON is still an answer (Graph is up): malformed, per item.
            if error.code == MALFORMED_RESPONSE:
                failed = ItemResult(200, None, MALFORMED_RESPONSE, str(error)[:500])
            else:
                failed = ItemResult(0, None, BATCH_TRANSPORT_ERROR, str(error)[:500])
            return {key: (failed, None) for key in urls}
        except APIError as error:
            if self._batch_supported and getattr(error, "response_status_code", 0) in _NO_BATCH_STATUSES:
                # An endpoint without JSON batching (a proxy, a sovereign cloud gap): read one by one.
                log.warning("$batch answered HTTP %s; reading without batching", error.response_status_code)
                self._batch_supported = False
            if not self._batch_supported:
                return await self._get_each(urls)
            # The whole batch throttled (429/503): each item waits as long as the batch was told.
            retry_after = _retry_after_seconds(dict(getattr(error, "response_headers", None) or {}))
            failed = self._api_error_result(error)
            return {key: (failed, retry_after) for key in urls}
        answered: dict[str, tuple[ItemResult, float | None]] = {}
        responses = body.get("responses") if isinstance(body, dict) else None
        for item in responses if isinstance(responses, list) else []:
            key = ids.get(str(item.get("id"))) if isinstance(item, dict) else None
            if key is None:
                continue
            try:
                status = int(item.get("status") or 0)
            except (TypeError, ValueError):
                status = 0
            item_body = item.get("body")
            result = ItemResult(status, item_body) if 200 <= status < 300 else _error_from_body(status, item_body)
            answered[key] = (result, _retry_after_seconds(item.get("headers")))
        for key in urls:
            answered.setdefault(key, (ItemResult(0, None, "MissingBatchItem", "batch answer left this item out"), None))
        return answered

    async def _get_each(self, urls: dict[str, str]) -> dict[str, tuple[ItemResult, float | None]]:
        answered: dict[str, tuple[ItemResult, float | None]] = {}
        for key, url in urls.items():
            request = RequestInformation(Method.GET)
            request.url = self.settings.graph_base_url + url
            request.headers.try_add("Accept", "application/json")
            try:
                answered[key] = (ItemResult(200, await self._send(request)), None)
            except AnswerError as error:
                status = 200 if error.code == MALFORMED_RESPONSE else 0
                answered[key] = (ItemResult(status, None, error.code, str(error)[:500]), None)
            except APIError as error:
                retry_after = _retry_after_seconds(dict(getattr(error, "response_headers", None) or {}))
                answered[key] = (self._api_error_result(error), retry_after)
        return answered

    @staticmethod
    def _api_error_result(error: APIError) -> ItemResult:
        status = int(getattr(error, "response_status_code", 0) or 0)
        odata = getattr(error, "error", None)
        code = getattr(odata, "code", None) or f"HTTP{status}"
        message = getattr(odata, "message", None) or str(error.message or "")
        return ItemResult(status, None, code, message[:500])


_readers = ProcessCache[GraphReader]()


def graph_reader(settings: Settings) -> GraphReader:
    """The process's Graph reader, created on first use inside the running event loop."""
    return _readers.get(settings, lambda: GraphReader(settings))


async def close_graph_reader() -> None:
    await _readers.close()

"""The Microsoft Graph surface, transport-free: one request in, one Graph-shaped answer out.

Standalone requests and `$batch` items go through the same `handle()`, so faults, per-id
errors and paging behave identically in both. Paths are relative to the version root
(`/servicePrincipals/...`), ids arrive percent-decoded segment by segment.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from . import provisioning as plog
from .actions import ACTIONS, ResetScopeError, parse_reset_scope
from .clock import error_date
from .faults import FaultOutcome
from .state import EmulatorState
from .tenant import TenantView

GRAPH_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
MAX_BATCH = 20
MAX_TOP = 999
DEFAULT_TOP = 100

LIST_SPS = "/servicePrincipals"
GET_SP = "/servicePrincipals/{id}"
LIST_JOBS = "/servicePrincipals/{id}/synchronization/jobs"
GET_JOB = "/servicePrincipals/{id}/synchronization/jobs/{id}"
JOB_ACTION = "/servicePrincipals/{id}/synchronization/jobs/{id}/{action}"  # restart, pause, start
BATCH = "/$batch"
LIST_PROVISIONING = "/auditLogs/provisioning"

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token is empty."),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: (
        "Request_ResourceNotFound",
        "Resource '{id}' does not exist or one of its queried reference-property objects are not present.",
    ),
    405: ("Request_BadRequest", "Specified HTTP method is not allowed for the request target."),
    409: ("Conflict", "The request conflicts with the current state of the resource."),
    424: ("FailedDependency", "The request depends on a request that failed."),
    429: ("TooManyRequests", "Too many requests."),
    500: ("generalException", "General exception while processing."),
    502: ("BadGateway", "The gateway received an invalid response."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
    504: ("GatewayTimeout", "The request timed out."),
}
# Graph's 401 for a request without a valid token: code InvalidAuthenticationToken in the error
# resource shape of https://learn.microsoft.com/graph/errors ("Required authentication
# information is either missing or not valid"; see also /graph/resolve-auth-errors). The message
# names the cause: "Access token is empty." when there is none; for a token it cannot accept it
# varies (expired, invalid audience, "CompactToken parsing failed ..."). The WWW-Authenticate
# challenge is the one Graph sends (MSAL's "extract authentication parameters" page shows it).
_NO_TOKEN = "Access token is empty."
_BAD_TOKEN = "Access token validation failure."
_CHALLENGE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)
_ABSOLUTE_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_KEY_SEGMENT = re.compile(r"^serviceprincipals\((?:(?P<prop>appid)\s*=\s*)?'?(?P<key>[^')]*)'?\)$", re.IGNORECASE)


@dataclass
class GraphRequest:
    method: str
    target: str  # path relative to the version root, with an optional ?query
    headers: Mapping[str, str]  # lower-case names
    base_url: str  # absolute version root, e.g. http://127.0.0.1:5000/v1.0
    in_batch: bool = False
    body: bytes = b""


@dataclass
class GraphResponse:
    status: int
    body: Any
    path: str  # normalised, for stats
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False
    drop: bool = False
    delay_ms: int = 0
    faulted: bool = False


@dataclass
class _Context:
    state: EmulatorState
    request: GraphRequest
    path: str  # decoded, e.g. /servicePrincipals/abc/synchronization/jobs
    raw_query: str
    query: dict[str, str]
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def client_request_id(self) -> str:
        return self.request.headers.get("client-request-id") or self.request_id


def _error(
    ctx: _Context,
    status: int,
    path: str,
    message: str | None = None,
    code: str | None = None,
    retry_after: int | None = None,
    ref: str = "",
) -> GraphResponse:
    default_code, default_message = _ERRORS.get(status, ("UnknownError", "An error occurred."))
    body = {
        "error": {
            "code": code or default_code,
            "message": message or default_message.replace("{id}", ref or ctx.path),
            "innerError": {
                "date": error_date(ctx.state.clock.now()),
                "request-id": ctx.request_id,
                "client-request-id": ctx.client_request_id,
            },
        }
    }
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return GraphResponse(status, body, path, headers)


def _ok(body: Any, path: str) -> GraphResponse:
    return GraphResponse(
        200, body, path, {"Content-Type": GRAPH_CONTENT_TYPE, "OData-Version": "4.0", "Cache-Control": "no-cache"}
    )


def _split(target: str) -> tuple[list[str], str]:
    path, _, query = target.partition("?")
    path = path.partition("#")[0]
    return [unquote(s) for s in path.strip("/").split("/") if s != ""], query


def _route(segments: list[str]) -> tuple[str | None, list[str], str]:
    """(route, ids, first unknown segment): ids are the decoded path keys in order."""
    if not segments:
        return None, [], ""
    head = segments[0]
    if head.lower() == "$batch" and len(segments) == 1:
        return BATCH, [], ""
    if head.lower() == "auditlogs":
        if len(segments) == 2 and segments[1].lower() == "provisioning":
            return LIST_PROVISIONING, [], ""
        return None, [], segments[1] if len(segments) > 1 else head
    ids: list[str] = []
    keyed = _KEY_SEGMENT.match(head)
    if keyed:
        ids.append(("appId=" if keyed.group("prop") else "") + keyed.group("key"))
        rest = segments[1:]
    elif head.lower() == "serviceprincipals":
        if len(segments) == 1:
            return LIST_SPS, [], ""
        ids.append(segments[1])
        rest = segments[2:]
    else:
        return None, [], head
    if not rest:
        return GET_SP, ids, ""
    if len(rest) >= 2 and rest[0].lower() == "synchronization" and rest[1].lower() == "jobs":
        if len(rest) == 2:
            return LIST_JOBS, ids, ""
        if len(rest) == 3:
            return GET_JOB, [*ids, rest[2]], ""
        if len(rest) == 4 and rest[3].lower() in ACTIONS:
            return JOB_ACTION, [*ids, rest[2], rest[3].lower()], ""
        return None, ids, rest[3]
    bad = rest[1] if rest[0].lower() == "synchronization" and len(rest) > 1 else rest[0]
    return None, ids, bad


def handle(state: EmulatorState, request: GraphRequest) -> GraphResponse:
    """Answer one Graph request (a top-level request or a batch item) as Graph would."""
    segments, raw_query = _split(request.target)
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(name.lower(), value)
    path = "/" + "/".join(segments)
    ctx = _Context(state, request, path, raw_query, query)
    route, ids, unknown = _route(segments)
    norm = route or path
    if not request.in_batch and state.token is not None:
        refused = _authenticate(ctx, state.token, norm)
        if refused is not None:  # before any fault: Graph checks the token first
            return _finish(ctx, refused, FaultOutcome())
    outcome = state.faults.evaluate(path, request.in_batch, request.body)
    if outcome.status is not None:
        response = _error(ctx, outcome.status, norm, retry_after=outcome.retry_after)
        response.faulted = True
    elif outcome.replace:
        response = _ok(outcome.body, norm)
        response.faulted = True
    else:
        response = _dispatch(ctx, route, ids, unknown, norm)
    return _finish(ctx, response, outcome)


def _authenticate(ctx: _Context, token: str, norm: str) -> GraphResponse | None:
    """None when the request carries `Bearer <token>`; Graph's 401 otherwise. A batch's items
    are covered by the batch request's own header."""
    sent = ctx.request.headers.get("authorization")
    if sent == f"Bearer {token}":
        return None
    bearer = (sent or "").partition(" ")[2].strip() if (sent or "").lower().startswith("bearer ") else ""
    response = _error(ctx, 401, norm, _BAD_TOKEN if bearer else _NO_TOKEN, code="InvalidAuthenticationToken")
    response.headers["WWW-Authenticate"] = _CHALLENGE
    return response


def _finish(ctx: _Context, response: GraphResponse, outcome: FaultOutcome) -> GraphResponse:
    response.headers.setdefault("request-id", ctx.request_id)
    response.headers.setdefault("client-request-id", ctx.client_request_id)
    response.delay_ms += outcome.delay_ms
    if outcome.truncate and response.status < 300:
        response.truncate = response.faulted = True
    if outcome.drop:
        response.drop = response.faulted = True
    return response


def _dispatch(ctx: _Context, route: str | None, ids: list[str], unknown: str, norm: str) -> GraphResponse:
    request = ctx.request
    if route is None:
        return _error(ctx, 400, norm, f"Resource not found for the segment '{unknown}'.", code="BadRequest")
    if route == BATCH:
        if request.in_batch:
            return _error(ctx, 400, norm, "Nested batch requests are not supported.")
        if request.method != "POST":
            return _error(ctx, 405, norm)
        return handle_batch(ctx)
    if request.method != ("POST" if route == JOB_ACTION else "GET"):
        return _error(ctx, 405, norm)
    tenant = ctx.state.tenant
    if route == LIST_SPS:
        return _list_service_principals(ctx, tenant)
    if route == LIST_PROVISIONING:
        return _list_provisioning(ctx)
    index = _find(tenant, ids[0])
    denied = ctx.state.faults.status_for(ids[0])
    if denied is None and index is not None:
        denied = ctx.state.faults.status_for(str(tenant.service_principals()[index]["id"]))
    if denied is not None:
        return _error(ctx, denied, norm, ref=ids[0])
    if index is None:
        return _error(ctx, 404, norm, ref=ids[0])
    sp = tenant.service_principals()[index]
    base = ctx.request.base_url
    if route == GET_SP:
        select = _select(ctx, tenant)
        if isinstance(select, GraphResponse):
            return select
        context = f"{base}/$metadata#servicePrincipals{_select_suffix(select)}/$entity"
        return _ok({"@odata.context": context, **_project(sp, select)}, norm)
    jobs = tenant.jobs(index, ctx.state.clock.now())
    if isinstance(jobs, list):
        jobs = [ctx.state.actions.apply(str(sp["id"]), job) for job in jobs]
    if route == JOB_ACTION:
        return _job_action(ctx, str(sp["id"]), jobs, ids[1], ids[2], norm)
    sp_context = f"{base}/$metadata#servicePrincipals('{sp['id']}')/synchronization/jobs"
    if route == LIST_JOBS:
        return _ok({"@odata.context": sp_context, "value": jobs}, norm)
    for job in jobs if isinstance(jobs, list) else []:
        if isinstance(job, Mapping) and str(job.get("id", "")).lower() == ids[1].lower():
            return _ok({"@odata.context": f"{sp_context}/$entity", **job}, norm)
    return _error(ctx, 404, norm, ref=ids[1])


def _job_action(ctx: _Context, sp_id: str, jobs: Any, job_id: str, action: str, norm: str) -> GraphResponse:
    """POST .../jobs/{id}/restart|pause|start: 204 No Content, the effect kept in state.actions."""
    path = norm.replace("{action}", action)
    found = [job for job in jobs if isinstance(job, Mapping) and str(job.get("id", "")).lower() == job_id.lower()]
    if not found:
        return _error(ctx, 404, path, ref=job_id)
    scopes: frozenset[str] = frozenset()
    if action == "restart":
        try:
            body = json.loads(ctx.request.body or b"{}")
            criteria = body.get("criteria") if isinstance(body, dict) else None
            if criteria is not None and not isinstance(criteria, dict):
                raise ResetScopeError("criteria must be an object")
            scopes = parse_reset_scope((criteria or {}).get("resetScope"))
        except (ValueError, ResetScopeError) as error:
            return _error(ctx, 400, path, str(error), code="BadRequest")
    ctx.state.actions.take(sp_id, str(found[0]["id"]), action, ctx.state.clock.now(), scopes)
    return GraphResponse(204, None, path, {"Cache-Control": "no-cache"})


def _find(tenant: TenantView, key: str) -> int | None:
    if key.lower().startswith("appid="):
        app_id = key[6:].lower()
        for i, sp in enumerate(tenant.service_principals()):
            if str(sp.get("appId", "")).lower() == app_id:
                return i
        return None
    return tenant.find(key)


def _select(ctx: _Context, tenant: TenantView) -> list[str] | GraphResponse | None:
    raw = ctx.query.get("$select")
    if raw is None:
        return None
    names = tenant.property_names()
    selected: list[str] = []
    for item in raw.split(","):
        name = item.strip()
        if not name:
            continue
        canonical = names.get(name.lower())
        if canonical is None:
            return _error(
                ctx,
                400,
                LIST_SPS,
                code="Request_BadRequest",
                message=(f"Could not find a property named '{name}' on type 'microsoft.graph.servicePrincipal'."),
            )
        if canonical not in selected:
            selected.append(canonical)
    return selected


def _select_suffix(select: list[str] | None) -> str:
    return f"({','.join(select)})" if select else ""


def _project(sp: Mapping[str, Any], select: list[str] | None) -> dict[str, Any]:
    if select is None:
        return dict(sp)
    # Graph always returns the key, even when it was not selected.
    body = {"id": sp.get("id")}
    for name in select:
        body[name] = sp.get(name)
    return body


def _next_link(ctx: _Context, path: str, skiptoken: str) -> str:
    """Graph's nextLink: absolute, the request's own query options kept, a new $skiptoken."""
    kept = [
        part for part in ctx.raw_query.split("&") if part and unquote(part.partition("=")[0]).lower() != "$skiptoken"
    ]
    return f"{ctx.request.base_url}{path}?{'&'.join([*kept, f'$skiptoken={skiptoken}'])}"


def _encode_skiptoken(offset: int) -> str:
    raw = json.dumps({"offset": offset}).encode()
    return "RFNwdA" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_skiptoken(token: str) -> int | None:
    if not token.startswith("RFNwdA"):
        return None
    body = token[6:]
    try:
        raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        offset = raw["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
    return offset if isinstance(offset, int) and offset >= 0 else None


def _list_service_principals(ctx: _Context, tenant: TenantView) -> GraphResponse:
    top_raw = ctx.query.get("$top")
    top = DEFAULT_TOP
    if top_raw is not None:
        try:
            top = int(top_raw)
        except ValueError:
            return _error(
                ctx,
                400,
                LIST_SPS,
                code="Request_BadRequest",
                message=f"Invalid value '{top_raw}' for query option $top.",
            )
        if not 1 <= top <= MAX_TOP:
            return _error(
                ctx,
                400,
                LIST_SPS,
                code="Request_UnsupportedQuery",
                message=(f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_TOP} inclusive."),
            )
    select = _select(ctx, tenant)
    if isinstance(select, GraphResponse):
        return select
    offset = 0
    token = ctx.query.get("$skiptoken")
    if token is not None:
        decoded = _decode_skiptoken(token)
        if decoded is None:
            return _error(
                ctx,
                400,
                LIST_SPS,
                code="Directory_ExpiredPageToken",
                message=("The specified page token value has expired and can no longer be included in your request."),
            )
        offset = decoded
    sps = tenant.service_principals()
    response_headers: dict[str, str] = {}
    raw_filter = ctx.query.get("$filter")
    if raw_filter:
        predicate = parse_filter(raw_filter, tenant.property_names())
        if predicate is None:
            response_headers["x-emulator-ignored-filter"] = "true"  # a superset, never a loss
        else:
            sps = [sp for sp in sps if predicate(sp)]
    base = ctx.request.base_url
    body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#servicePrincipals{_select_suffix(select)}"}
    if ctx.query.get("$count", "").lower() == "true":
        body["@odata.count"] = len(sps)
    if offset + top < len(sps):
        body["@odata.nextLink"] = _next_link(ctx, "/servicePrincipals", _encode_skiptoken(offset + top))
    body["value"] = [_project(sp, select) for sp in sps[offset : offset + top]]
    response = _ok(body, LIST_SPS)
    response.headers.update(response_headers)
    return response


def _list_provisioning(ctx: _Context) -> GraphResponse:
    """provisioningObjectSummary events: $filter, $orderby=activityDateTime, $top, $skiptoken."""

    def bad(message: str, code: str = "BadRequest") -> GraphResponse:
        return _error(ctx, 400, LIST_PROVISIONING, message, code=code)

    top = plog.DEFAULT_TOP
    top_raw = ctx.query.get("$top")
    if top_raw is not None:
        try:
            top = int(top_raw)
        except ValueError:
            return bad(f"Invalid value '{top_raw}' for query option $top.")
        if not 1 <= top <= plog.MAX_TOP:
            return bad(f"Invalid page size specified: '{top}'. Must be between 1 and {plog.MAX_TOP} inclusive.")
    order = " ".join(ctx.query.get("$orderby", "activityDateTime desc").split()).lower()
    if order not in ("activitydatetime", "activitydatetime asc", "activitydatetime desc"):
        return bad(f"Invalid $orderby '{ctx.query.get('$orderby')}': only activityDateTime asc|desc is supported.")
    descending = order.endswith("desc")
    now = int(ctx.state.clock.now())
    as_of, after = now, None
    token = ctx.query.get("$skiptoken")
    if token is not None:
        decoded = plog.decode_skiptoken(token)
        if decoded is None:
            return bad("The specified page token value has expired and can no longer be included in your request.")
        as_of, at, event_id = decoded
        after = (at, event_id)
    wanted = None
    raw_filter = ctx.query.get("$filter")
    if raw_filter:
        try:
            wanted = plog.parse_filter(raw_filter)
        except plog.FilterError as exc:
            return bad(str(exc))
    log = ctx.state.provisioning
    # A continuation serves what existed when the first page was asked for (`as_of`), minus
    # what has since left the retention window.
    events = [
        e
        for e in log.events(as_of, wanted.job_id if wanted else None, wanted.sp_id if wanted else None)
        if e.at >= now - plog.RETENTION and (wanted is None or wanted.predicate(e))
    ]
    chunk, last = plog.page(events, descending, top, after)
    base = ctx.request.base_url
    body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#auditLogs/provisioning"}
    if last is not None:
        body["@odata.nextLink"] = _next_link(ctx, LIST_PROVISIONING, plog.encode_skiptoken(as_of, last.at, last.id))
    body["value"] = [log.materialise(e) for e in chunk]
    return _ok(body, LIST_PROVISIONING)


_FILTER_TOKEN = re.compile(
    r"""\s*(?:
    (?P<any>(?P<coll>\w+)/any\(\s*(?P<var>\w+)\s*:\s*(?P=var)\s+eq\s+'(?P<anyval>(?:[^']|'')*)'\s*\))
    |(?P<sw>startswith\(\s*(?P<swprop>\w+)\s*,\s*'(?P<swval>(?:[^']|'')*)'\s*\))
    |(?P<cmp>(?P<prop>\w+)\s+(?P<op>eq|ne)\s+(?:'(?P<val>(?:[^']|'')*)'|(?P<lit>true|false|null)))
    |(?P<conj>and|or)(?=\s)
    )\s*""",
    re.VERBOSE | re.IGNORECASE,
)
Predicate = Callable[[Mapping[str, Any]], bool]


def _fold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _clause(match: re.Match[str], names: Mapping[str, str]) -> Predicate | None:
    def prop(name: str) -> str | None:
        return names.get(name.lower())

    if match.group("any"):
        coll, wanted = prop(match.group("coll")), match.group("anyval").replace("''", "'").lower()
        if coll is None:
            return None
        return lambda sp: any(_fold(v) == wanted for v in (sp.get(coll) or []))
    if match.group("sw"):
        field_name, prefix = prop(match.group("swprop")), match.group("swval").replace("''", "'").lower()
        if field_name is None:
            return None
        return lambda sp: str(sp.get(field_name) or "").lower().startswith(prefix)
    name = prop(match.group("prop"))
    if name is None:
        return None
    literal = match.group("lit")
    expected: Any = (
        {"true": True, "false": False, "null": None}[literal.lower()]
        if literal
        else match.group("val").replace("''", "'").lower()
    )
    negate = match.group("op").lower() == "ne"
    return lambda sp: (_fold(sp.get(name)) == expected) != negate


def parse_filter(text: str, names: Mapping[str, str]) -> Predicate | None:
    """A predicate for simple filters (`tags/any(t:t eq 'X')`, `p eq 'v'`, `startswith(p,'v')`
    joined by and/or, `and` binding tighter), or None when the filter is beyond that."""
    groups: list[list[Predicate]] = [[]]
    pos, expect_clause = 0, True
    while pos < len(text):
        match = _FILTER_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            return None
        pos = match.end()
        conj = match.group("conj")
        if expect_clause == bool(conj):
            return None
        if conj:
            if conj.lower() == "or":
                groups.append([])
        else:
            clause = _clause(match, names)
            if clause is None:
                return None
            groups[-1].append(clause)
        expect_clause = bool(conj)
    if expect_clause:
        return None
    return lambda sp: any(all(clause(sp) for clause in group) for group in groups)


def handle_batch(ctx: _Context) -> GraphResponse:
    """JSON batching: at most 20 GET items, relative URLs, unique ids, optional dependsOn."""
    try:
        payload = json.loads(ctx.request.body or b"null")
    except (UnicodeDecodeError, ValueError):
        return _error(
            ctx,
            400,
            BATCH,
            "Unable to read JSON request payload. Please ensure "
            "Content-Type header is set and payload is of valid JSON format.",
        )
    items = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        return _error(ctx, 400, BATCH, "Invalid batch payload format.")
    if len(items) > MAX_BATCH:
        return _error(
            ctx, 400, BATCH, f"Number of requests in the batch ({len(items)}) exceeds the limit of {MAX_BATCH}."
        )
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(key), str) and item.get(key) for key in ("id", "method", "url")
        ):
            return _error(
                ctx, 400, BATCH, "Invalid batch payload format: every request needs string id, method and url."
            )
        if item["id"] in seen:
            return _error(ctx, 400, BATCH, f"Batch request contains duplicate request id '{item['id']}'.")
        seen.add(item["id"])
    for item in items:
        depends_on = item.get("dependsOn") or []
        if not isinstance(depends_on, list) or not all(isinstance(dep, str) for dep in depends_on):
            return _error(ctx, 400, BATCH, f"dependsOn of request '{item['id']}' must be a list of ids.")
        for dep in depends_on:
            if dep not in seen:
                return _error(ctx, 400, BATCH, f"Request '{item['id']}' depends on unknown request id '{dep}'.")
    statuses: dict[str, int] = {}
    responses: list[dict[str, Any]] = []
    delay = 0
    for item in items:
        sub = _batch_item(ctx, item, statuses)
        statuses[item["id"]] = sub.status
        delay = max(delay, sub.delay_ms)  # Graph runs independent items in parallel
        headers = {k: v for k, v in sub.headers.items() if k not in ("request-id", "client-request-id")}
        body = sub.body
        if sub.truncate:
            # A body that is not JSON cannot be embedded as JSON: Graph base64-encodes it.
            cut = json.dumps(body, separators=(",", ":")).encode()
            body = base64.b64encode(cut[: len(cut) // 2]).decode()
        responses.append({"id": item["id"], "status": sub.status, "headers": headers, "body": body})
    if ctx.state.faults.shuffle_batch:
        random.shuffle(responses)
    response = _ok({"responses": responses}, BATCH)
    response.headers["Content-Type"] = "application/json"
    response.delay_ms = delay
    return response


def _batch_item(ctx: _Context, item: dict[str, Any], statuses: dict[str, int]) -> GraphResponse:
    raw_headers = item.get("headers") if isinstance(item.get("headers"), dict) else {}
    headers = {str(k).lower(): str(v) for k, v in (raw_headers or {}).items()}
    url, method = item["url"], item["method"].upper()
    sub_ctx = _Context(ctx.state, GraphRequest(method, url, headers, ctx.request.base_url, True), url, "", {})
    if _ABSOLUTE_URL.match(url):
        # Graph wants URLs relative to the version root; our client must not send absolute ones.
        response = _error(sub_ctx, 400, "(absolute url)", "Invalid request URL", code="BadRequest")
    elif any(statuses.get(dep, 200) >= 400 for dep in item.get("dependsOn") or []):
        response = _error(sub_ctx, 424, _route(_split(url)[0])[0] or url)
    elif method != "GET":
        response = _error(sub_ctx, 405, _route(_split(url)[0])[0] or url)
    else:
        return _record(ctx, handle(ctx.state, sub_ctx.request), headers, method)
    return _record(ctx, response, headers, method)


def _record(ctx: _Context, response: GraphResponse, headers: Mapping[str, str], method: str) -> GraphResponse:
    ctx.state.stats.record(
        method,
        response.path,
        response.status,
        in_batch=True,
        authorized="authorization" in headers,
        faulted=response.faulted,
    )
    return response

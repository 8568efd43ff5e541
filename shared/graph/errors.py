"""What can go wrong reading Graph, named: the errors that stop a poll, and the codes of a
single request's answer that never came or could not be read. No msgraph import."""

from __future__ import annotations

from typing import Any

# Item error codes for answers that never came (after the transport retries).
BATCH_TRANSPORT_ERROR = "BatchTransportError"
TRANSPORT_ERROR = "TransportError"
MALFORMED_RESPONSE = "MalformedResponse"


class GraphUnavailableError(RuntimeError):
    """Graph could not be read at all (network down, every request failing).

    `kind` names it in the poll record's errors; `where` adds fields to that entry."""

    kind = "graphUnavailable"

    def __init__(self, message: str, **where: Any) -> None:
        super().__init__(message)
        self.where = where

    @property
    def failure(self) -> str:
        return f"Graph unavailable: {self}"


class GraphTokenError(GraphUnavailableError):
    """The credential could not get a token for Graph: nothing can be read."""

    kind = "graphToken"

    @property
    def failure(self) -> str:
        return str(self)


class GraphForbiddenError(GraphUnavailableError):
    """Graph refused to list the service principals (403): the app lacks Application.Read.All."""

    kind = "servicePrincipalsForbidden"

    @property
    def failure(self) -> str:
        return str(self)


class GraphUnauthorizedError(GraphUnavailableError):
    """Graph refused the app's token (401): in a tenant other than the app's own, most often
    consent that was never given or was revoked."""

    kind = "graphUnauthorized"

    @property
    def failure(self) -> str:
        return str(self)


class GraphThrottledError(GraphUnavailableError):
    """Graph kept answering 429 (or 503) to the service principal list, past the SDK's retries:
    this tenant is throttled for now (Graph counts per app and tenant); its next poll goes on."""

    kind = "graphThrottled"


class AnswerError(GraphUnavailableError):
    """One request got no usable answer after its retries: `code` says whether it never came
    (TransportError) or came cut short or not JSON (MalformedResponse)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

"""What one HTTP request was, for its access line, metrics and span: id, operation, outcome."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from graphql import GraphQLError
from starlette.types import Scope
from strawberry.extensions import SchemaExtension

from core.errors import ErrorCode
from core.masking import mask_ids
from core.roles import ANONYMOUS, Caller
from gateway.last_resort import MESSAGE as INTERNAL_MESSAGE
from gateway.tracing import OperationSpan, Tracing

# Labels that no GraphQL name can be (a Name is [_A-Za-z][_0-9A-Za-z]*), so no client can
# pose as them: an operation without a name, and one whose name is not kept.
UNNAMED = "(none)"
OTHER = "(other)"
# Distinct operation names kept as labels; the rest are OTHER. 100 names × 11 latency
# buckets stays near a thousand series, which one Prometheus holds without effort.
MAX_OPERATION_NAMES = 100
MAX_NAME_LENGTH = 64
_NAME = re.compile(rf"[_A-Za-z][_0-9A-Za-z]{{0,{MAX_NAME_LENGTH - 1}}}")
# Six digits in a row: every USCC has them (its region code), every ID number many more. A
# name like that may carry a subject or a person, so it is never a label.
_DIGIT_RUN = re.compile(r"[0-9]{6}")
# An incoming X-Request-Id is kept when it is this plain (a proxy's UUID or hex id).
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# GraphiQL's schema query; kept by name from the start.
KNOWN_OPERATIONS = ("IntrospectionQuery",)


class OperationNames:
    """The operation names used as labels: bounded, and chosen by configured clients only.

    A name is client text. It becomes a label (metrics, the access log's operation field,
    span names) only when it is a plain GraphQL name without a digit run, and only when a
    configured client (an API key) used it before MAX_OPERATION_NAMES distinct names were
    kept; anonymous callers are labelled with names already kept, else OTHER. So anonymous
    traffic cannot fill the set with junk, and no label ever holds a code or an ID number.
    """

    def __init__(self, known: Iterable[str] = KNOWN_OPERATIONS, limit: int = MAX_OPERATION_NAMES):
        self._kept = {name for name in known if _plain(name)}
        self._limit = len(self._kept) + limit
        # Requests run on one event loop; the lock only matters for a threaded caller.
        self._lock = threading.Lock()

    def label(self, name: str | None, caller: Caller | None) -> str:
        """The label of an operation named `name` asked by `caller` (None: anonymous)."""
        if name is None:
            return UNNAMED
        if name in self._kept:
            return name
        if caller is None or caller == ANONYMOUS or not _plain(name):
            return OTHER
        with self._lock:
            if len(self._kept) >= self._limit:
                return OTHER
            self._kept.add(name)
        return name


def _plain(name: str) -> bool:
    return _NAME.fullmatch(name) is not None and _DIGIT_RUN.search(name) is None


def request_id(incoming: str | None) -> str:
    """The id of a request: a plain X-Request-Id a proxy sent, else a new random one."""
    # A proxy's id ties the gateway's lines to its own; anything odd (too long, other
    # characters, an ID number's shape) is replaced rather than logged.
    if (
        incoming is not None
        and _REQUEST_ID.fullmatch(incoming)
        and mask_ids(incoming, decode=False, glued=True) == incoming
    ):
        return incoming
    return uuid.uuid4().hex


@dataclass(slots=True)
class RequestRecord:
    """Made by the access log for every request; the GraphQL extension fills in the rest."""

    request_id: str
    # The operation's label (OperationNames) and outcome, once GraphQL has run it.
    operation: str | None = None
    outcome: str | None = None
    # The trace the request's span belongs to, when it was sampled (hex).
    trace_id: str | None = None

    @staticmethod
    def of(scope: Scope) -> RequestRecord | None:
        """The record the access log put in the request's scope, if any."""
        record: RequestRecord | None = scope.get("state", {}).get("record")
        return record

    def put(self, scope: Scope) -> None:
        """Used by the access log before the request goes on."""
        scope.setdefault("state", {})["record"] = self


def graphql_outcome(errors: list[GraphQLError] | None) -> str:
    """The outcome label of an executed operation: ok, or the class of its worst error."""
    if not errors:
        return "ok"
    codes: list[str] = []
    invalid = False
    for error in errors:
        code = (error.extensions or {}).get("code")
        if isinstance(code, str) and code in ErrorCode.__members__:
            codes.append(code)
        elif error.path is not None or error.message == INTERNAL_MESSAGE:
            # Masked faults of ours (MaskErrors) carry no code: resolver errors have a path.
            return "internal"
        else:
            invalid = True  # syntax, validation, variable values: the request's own fault
    # A department's failure comes with a (partial) answer; any other code says more.
    refused = [c for c in codes if c != ErrorCode.SOURCE_UNAVAILABLE]
    if refused:
        return refused[0].lower()
    if invalid:
        return "invalid_query"
    return ErrorCode.SOURCE_UNAVAILABLE.lower()


# Requests refused before GraphQL ran, by their HTTP status (gateway/refusals.py's codes).
_STATUS_OUTCOMES = {
    400: ErrorCode.INVALID_ARGUMENT.lower(),
    401: ErrorCode.UNAUTHENTICATED.lower(),
    404: ErrorCode.NOT_FOUND.lower(),
    405: ErrorCode.INVALID_ARGUMENT.lower(),
    408: "body_timeout",
    413: ErrorCode.REQUEST_TOO_LARGE.lower(),
    414: ErrorCode.REQUEST_TOO_LARGE.lower(),
    415: ErrorCode.INVALID_ARGUMENT.lower(),
    429: ErrorCode.RATE_LIMITED.lower(),
    500: "internal",
    503: ErrorCode.OVERLOADED.lower(),
}


def refusal_outcome(status: int | None) -> str | None:
    """The outcome of a /graphql request GraphQL never ran; None for a page that is no query."""
    if status is None:
        return "abandoned"  # the client left before an answer started
    if status < 400:
        return None  # GraphiQL's page: not a GraphQL request
    return _STATUS_OUTCOMES.get(status, "http_error")


class ObserveOperation(SchemaExtension):
    """Outermost schema extension: names the operation, classes its outcome, spans it."""

    def __init__(self, names: OperationNames, tracing: Tracing | None) -> None:
        self._names = names
        self._tracing = tracing

    def on_operation(self) -> Iterator[None]:
        """Runs around parsing, validation and execution, once per request."""
        span: OperationSpan | None = None
        if self._tracing is not None:
            # Current while the operation runs: department calls become its children.
            span = self._tracing.operation_span()
        outcome = "internal"
        label = UNNAMED
        context = self.execution_context.context
        request = getattr(context, "request", None)
        record = RequestRecord.of(request.scope) if request is not None else None
        try:
            yield
            result = self.execution_context.result
            outcome = graphql_outcome(result.errors if result is not None else None)
        finally:
            caller: Caller | None = getattr(context, "caller", None)
            # Anonymous callers may only use names a configured client brought.
            label = self._names.label(self.execution_context.operation_name, caller)
            if record is not None:
                record.operation = label
                record.outcome = outcome
            if span is not None:
                kind = _operation_type(self.execution_context)
                trace_id = span.finish(kind, label, outcome, record, caller)
                if record is not None:
                    record.trace_id = trace_id


def _operation_type(execution_context: object) -> str:
    try:
        return str(execution_context.operation_type.value)  # type: ignore[attr-defined]
    except (RuntimeError, AttributeError):
        return "query"  # the document did not parse: nothing else could have been asked

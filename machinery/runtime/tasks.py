"""Calling task resources over HTTP: registered services, URLs, the HTTP task and Lambda.

Every call carries an ``Idempotency-Key`` that is the same when the same attempt is repeated after a
crash, ``X-Machinery-Execution-Id`` and a W3C ``traceparent``. Failures become the ASL errors of
DESIGN.md: ``States.Http.StatusCode.<code>`` (or the ``error`` the JSON reply names),
``States.Http.Socket``, ``States.Timeout``; and machinery's own: ``States.Permissions`` for a target the
allow/deny lists refuse, ``States.Runtime`` for a request that cannot be sent as asked (a header with a
CR, LF or NUL, a bad URL), ``States.DataLimitExceeded`` for a reply past the data limit.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from machinery.engine.types import InvokeTask
from machinery.jsontext import dumps_compact, dumps_compact_bytes
from machinery.jsontext import loads as json_loads
from machinery.runtime import spans
from machinery.runtime.httpclient import HttpClient, Reply
from machinery.runtime.outbound import (
    CallTimedOut,
    ConnectionFailed,
    OutboundError,
    OutboundPolicy,
    ProtocolError,
)
from machinery.storage.base import Storage
from machinery.telemetry import metrics
from machinery.telemetry.traceparent import TraceParent, derived_trace_id, span_id

if TYPE_CHECKING:
    from machinery.runtime.worker import WorkerSettings

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 60.0
#: MACHINERY_DATA_LIMIT's default: what Step Functions allows a state's input or output.
DEFAULT_DATA_LIMIT = 256 * 1024
#: With a time scale below 1 a state's ``TimeoutSeconds`` shrinks, but never below this: a call needs
#: some real time to answer, even when Wait states and back-off are instantaneous.
MIN_SCALED_TIMEOUT_SECONDS = 1.0
_LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
_HTTP_INVOKE = "arn:aws:states:::http:invoke"


@dataclass(frozen=True)
class TaskOutcome:
    """A task's result, or the error it failed with."""

    output: Any = None
    error: str | None = None
    cause: str = ""

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class CallIdentity:
    """Who makes a call. ``trace``: the span of the state making it (None: the execution's own trace,
    derived from its id, and tracing is off)."""

    execution_id: str
    branch_id: str
    callback_url: str | None = None
    worker: str | None = None
    trace: TraceParent | None = None

    def idempotency_key(self, effect: InvokeTask) -> str:
        return f"{self.execution_id}:{self.branch_id}:{effect.state_name}:{effect.attempt}"

    def call_span(self, effect: InvokeTask) -> TraceParent:
        """The call's span: its id is derived from the idempotency key, so a repeated attempt sends the
        same ``traceparent``."""
        parent = self.trace or TraceParent(derived_trace_id(self.execution_id), "")
        return parent.child(span_id(self.idempotency_key(effect)))

    def traceparent(self, effect: InvokeTask) -> str:
        return self.call_span(effect).header()


class TaskInvoker:
    """Resolves a Task's ``Resource`` and performs the call with the pooled outbound client.

    :param data_limit: bytes of a reply body read at most (``MACHINERY_DATA_LIMIT``); a 2xx reply past it
        fails the state with ``States.DataLimitExceeded`` without the rest being read.
    :param policy: the allow/deny lists every call is checked against.
    """

    def __init__(
        self,
        storage: Storage,
        lambda_endpoint: str | None = None,
        time_scale: float = 1.0,
        *,
        data_limit: int = DEFAULT_DATA_LIMIT,
        policy: OutboundPolicy | None = None,
        client: HttpClient | None = None,
    ) -> None:
        self.storage = storage
        self.lambda_endpoint = lambda_endpoint
        self.time_scale = time_scale
        self.data_limit = data_limit
        self.client = client or HttpClient(policy)

    @classmethod
    def for_settings(cls, storage: Storage, settings: WorkerSettings) -> TaskInvoker:
        """The invoker a worker (or the express runner) with these settings uses."""
        return cls(
            storage,
            settings.lambda_endpoint,
            settings.time_scale,
            data_limit=settings.data_limit,
            policy=settings.outbound,
        )

    def scaled_timeout(self, timeout: float | None) -> float | None:
        """A state's ``TimeoutSeconds`` under ``MACHINERY_TIME_SCALE`` (floored, see above)."""
        if timeout is None or self.time_scale >= 1.0:
            return timeout
        return min(timeout, max(timeout * self.time_scale, MIN_SCALED_TIMEOUT_SECONDS))

    async def close(self) -> None:
        await self.client.close()

    async def invoke(self, effect: InvokeTask, identity: CallIdentity) -> TaskOutcome:
        """Call the task's resource; the call's latency and outcome go to ``/metrics``."""
        base = effect.resource.removesuffix(".waitForTaskToken").removesuffix(".sync")
        started = time.perf_counter()
        wall = time.time() if identity.trace is not None else 0.0
        outcome = await self._invoke(effect, identity, base)
        seconds = time.perf_counter() - started
        service = _service_label(base)
        metrics.task_called(service, outcome.error, seconds)
        if identity.trace is not None:
            attributes = {
                "machinery.execution.id": identity.execution_id,
                "machinery.state.name": effect.state_name,
                "machinery.task.resource": service,
                "machinery.task.attempt": effect.attempt,
                "machinery.task.outcome": metrics.task_outcome(outcome.error),
            }
            spans.record_call(
                identity.trace,
                identity.call_span(effect),
                service,
                attributes,
                wall,
                wall + seconds,
                outcome.error,
            )
        return outcome

    async def _invoke(self, effect: InvokeTask, identity: CallIdentity, base: str) -> TaskOutcome:
        resource = effect.resource
        headers = {
            "Idempotency-Key": identity.idempotency_key(effect),
            "X-Machinery-Execution-Id": identity.execution_id,
            "traceparent": identity.traceparent(effect),
        }
        if identity.worker:
            headers["X-Machinery-Worker"] = identity.worker
        if effect.wait_for_token and effect.task_token:
            headers["X-Machinery-Task-Token"] = effect.task_token
            if identity.callback_url:
                headers["X-Machinery-Callback-Url"] = identity.callback_url
        timeout = self.scaled_timeout(effect.timeout_seconds)
        if base.startswith(("http://", "https://")):
            return await self._http("POST", base, effect.payload, headers, timeout or DEFAULT_TIMEOUT_SECONDS)
        if base == _HTTP_INVOKE:
            return await self._http_task(effect.payload, headers, timeout or DEFAULT_TIMEOUT_SECONDS)
        if base == _LAMBDA_INVOKE or base.startswith("arn:aws:lambda:"):
            return await self._lambda(base, effect.payload, headers, timeout or DEFAULT_TIMEOUT_SECONDS)
        service = self.storage.get_service(base)
        if service is None:
            return TaskOutcome(error="States.Runtime", cause=f"Unknown task resource '{resource}'")
        settings = service.settings
        method = str(settings.get("method", "POST")).upper()
        headers.update({str(k): str(v) for k, v in (settings.get("headers") or {}).items()})
        service_timeout = settings.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS
        return await self._http(method, service.address, effect.payload, headers, timeout or service_timeout)

    async def _http(
        self, method: str, url: str, payload: Any, headers: dict[str, str], timeout: float
    ) -> TaskOutcome:
        reply = await self._request(method, url, payload, headers, timeout)
        if isinstance(reply, TaskOutcome):
            return reply
        return _outcome_from_reply(reply.status, reply.body)

    async def _request(
        self, method: str, url: str, payload: Any, headers: dict[str, str], timeout: float
    ) -> Reply | TaskOutcome:
        """The reply, or the failure (refused, timeout, socket, too large) as an outcome."""
        body = None if method in ("GET", "DELETE", "HEAD") else dumps_compact_bytes(payload)
        try:
            reply = await self.client.request(method, url, body, headers, timeout, self.data_limit)
        except OutboundError as exc:
            return TaskOutcome(error=exc.asl_error, cause=exc.message)
        if reply.truncated and 200 <= reply.status < 300:
            return TaskOutcome(error="States.DataLimitExceeded", cause=self._too_large(method, url))
        return reply

    def _too_large(self, method: str, url: str) -> str:
        return (
            f"The reply of {method} {url} exceeds the data limit of {self.data_limit} bytes "
            "(MACHINERY_DATA_LIMIT); the rest of it was not read"
        )

    async def _http_task(self, params: Any, headers: dict[str, str], timeout: float) -> TaskOutcome:
        """Step Functions' HTTP task: the result carries the reply's status, as AWS reports it."""
        if not isinstance(params, dict) or "ApiEndpoint" not in params:
            return TaskOutcome(error="States.Runtime", cause="http:invoke needs Parameters with ApiEndpoint")
        url = str(params["ApiEndpoint"])
        query = params.get("QueryParameters") or {}
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query, doseq=True)
        headers = {**headers, **{str(k): str(v) for k, v in (params.get("Headers") or {}).items()}}
        method = str(params.get("Method", "GET")).upper()
        reply = await self._request(method, url, params.get("RequestBody"), headers, timeout)
        if isinstance(reply, TaskOutcome):
            return reply
        status, body = reply.status, reply.body
        if not 200 <= status < 300:
            return TaskOutcome(
                error=f"States.Http.StatusCode.{status}", cause=body.decode("utf-8", "replace")[:32768]
            )
        outcome = _outcome_from_reply(status, body)
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        return TaskOutcome(
            output={"ResponseBody": outcome.output, "StatusCode": status, "StatusText": phrase}
        )

    async def _lambda(
        self, resource: str, payload: Any, headers: dict[str, str], timeout: float
    ) -> TaskOutcome:
        """Call a function through the Lambda Invoke API; shape results and errors as Step Functions does.

        ``arn:aws:lambda:...:function:NAME`` gives the function's result itself and, on a function error,
        the error body as the function wrote it as cause; ``arn:aws:states:::lambda:invoke`` wraps the result
        in ``{ExecutedVersion, Payload, StatusCode}`` and gives compact JSON causes.
        """
        if not self.lambda_endpoint:
            return TaskOutcome(error="States.Runtime", cause="MACHINERY_LAMBDA_ENDPOINT is not set")
        envelope = resource == _LAMBDA_INVOKE
        if envelope:
            if not isinstance(payload, dict) or "FunctionName" not in payload:
                return TaskOutcome(
                    error="States.Runtime", cause="lambda:invoke needs Parameters.FunctionName"
                )
            function = str(payload["FunctionName"])
            body = _invoke_body(payload.get("Payload"))
        else:
            function, body = resource, dumps_compact_bytes(payload)
        name = function.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in function else function
        url = f"{self.lambda_endpoint.rstrip('/')}/2015-03-31/functions/{name}/invocations"
        try:
            reply = await self.client.request("POST", url, body, headers, timeout, self.data_limit)
        except CallTimedOut:
            # Step Functions reports a task timeout with an empty cause.
            return TaskOutcome(error="States.Timeout", cause="")
        except (ConnectionFailed, ProtocolError) as exc:
            return TaskOutcome(error="Lambda.ServiceException", cause=f"Lambda {name}: {exc.message}")
        except OutboundError as exc:
            return TaskOutcome(error=exc.asl_error, cause=exc.message)
        if reply.truncated and reply.status < 400:
            return TaskOutcome(error="States.DataLimitExceeded", cause=self._too_large("POST", url))
        raw, status = reply.body, reply.status
        function_error = reply.headers.get("x-amz-function-error")
        error_code = reply.headers.get("x-amzn-errortype", "")
        request_id = reply.headers.get("x-amzn-requestid") or str(uuid.uuid4())
        text = raw.decode("utf-8", "replace")
        try:
            result = json_loads(raw) if raw else None
        except ValueError:
            result = text
        if function_error:
            error_type = result.get("errorType") if isinstance(result, dict) else None
            cause = dumps_compact(result) if envelope else text
            return TaskOutcome(error=str(error_type or "Exception"), cause=cause)
        if status >= 400:
            return _lambda_service_error(status, error_code, request_id, result, name)
        if envelope:
            return TaskOutcome(output={"ExecutedVersion": "$LATEST", "Payload": result, "StatusCode": status})
        return TaskOutcome(output=result)


def _invoke_body(payload: Any) -> bytes:
    """The request body of ``lambda:invoke``: a string Payload is sent as it is (the SDK sends its bytes)."""
    if payload is None:
        return b"{}"
    if isinstance(payload, str):
        return payload.encode()
    return dumps_compact_bytes(payload)


def _lambda_service_error(status: int, code: str, request_id: str, body: Any, name: str) -> TaskOutcome:
    """An error of the Lambda service itself (no such function, throttling ...) as ``Lambda.<Code>``."""
    message = ""
    if isinstance(body, dict):
        code = code or str(body.get("__type") or body.get("Type") or "")
        message = str(body.get("message") or body.get("Message") or "")
    code = code.split(":", 1)[0] or "ServiceException"
    if not message:
        message = f"Lambda function {name} could not be invoked"
    cause = (
        f"{message} (Service: AWSLambda; Status Code: {status}; Error Code: {code}; "
        f"Request ID: {request_id}; Proxy: null)"
    )
    return TaskOutcome(error=f"Lambda.{code}", cause=cause)


def _outcome_from_reply(status: int, body: bytes) -> TaskOutcome:
    try:
        parsed: Any = json_loads(body) if body else None
    except ValueError:
        parsed = body.decode("utf-8", "replace")
    if 200 <= status < 300:
        return TaskOutcome(output=parsed)
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        cause = parsed.get("cause", parsed.get("message", ""))
        return TaskOutcome(
            error=parsed["error"], cause=cause if isinstance(cause, str) else dumps_compact(cause)
        )
    text = parsed if isinstance(parsed, str) else dumps_compact(parsed)
    return TaskOutcome(error=f"States.Http.StatusCode.{status}", cause=text[:32768])


@functools.lru_cache(maxsize=1024)
def _service_label(base: str) -> str:
    """The ``service`` label of a resource: a registered service's name, ``url:<scheme://host:port>`` of a
    URL (its path and query are left out: they may carry ids), ``http:invoke`` or ``lambda:<function>``."""
    if base.startswith(("http://", "https://")):
        parts = urlsplit(base)
        return f"url:{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    if base.startswith("arn:aws:lambda:") and ":function:" in base:
        return "lambda:" + base.split(":function:", 1)[1].split(":", 1)[0]
    if base.startswith("arn:aws:states:::"):
        return base.removeprefix("arn:aws:states:::")
    return base


async def sleep_until(deadline: float, now: float) -> None:
    await asyncio.sleep(max(0.0, deadline - now))

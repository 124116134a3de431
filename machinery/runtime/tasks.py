"""Calling task resources over HTTP: registered services, URLs, the HTTP task and Lambda.

Every call carries an ``Idempotency-Key`` that is the same when the same attempt is repeated after a
crash, ``X-Machinery-Execution-Id`` and a W3C ``traceparent``. Failures become the ASL errors of
DESIGN.md: ``States.Http.StatusCode.<code>`` (or the ``error`` the JSON reply names),
``States.Http.Socket``, ``States.Timeout``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from machinery.engine.types import InvokeTask
from machinery.storage.base import Storage

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 60.0
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
    execution_id: str
    branch_id: str
    callback_url: str | None = None

    def idempotency_key(self, effect: InvokeTask) -> str:
        return f"{self.execution_id}:{self.branch_id}:{effect.state_name}:{effect.attempt}"

    def traceparent(self, effect: InvokeTask) -> str:
        trace_id = hashlib.sha256(self.execution_id.encode()).hexdigest()[:32]
        span_id = hashlib.sha256(self.idempotency_key(effect).encode()).hexdigest()[:16]
        return f"00-{trace_id}-{span_id}-01"


class TaskInvoker:
    """Resolves a Task's ``Resource`` and performs the call with a pooled keep-alive client."""

    def __init__(self, storage: Storage, lambda_endpoint: str | None = None) -> None:
        self.storage = storage
        self.lambda_endpoint = lambda_endpoint
        self._session: aiohttp.ClientSession | None = None

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, json_serialize=_dumps)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def invoke(self, effect: InvokeTask, identity: CallIdentity) -> TaskOutcome:
        resource = effect.resource
        base = resource.removesuffix(".waitForTaskToken").removesuffix(".sync")
        headers = {
            "Idempotency-Key": identity.idempotency_key(effect),
            "X-Machinery-Execution-Id": identity.execution_id,
            "traceparent": identity.traceparent(effect),
        }
        if effect.wait_for_token and effect.task_token:
            headers["X-Machinery-Task-Token"] = effect.task_token
            if identity.callback_url:
                headers["X-Machinery-Callback-Url"] = identity.callback_url
        timeout = effect.timeout_seconds
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
        session = await self.session()
        try:
            async with session.request(
                method,
                url,
                json=payload if method not in ("GET", "DELETE") else None,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                body = await response.read()
                status = response.status
        except TimeoutError:
            return TaskOutcome(error="States.Timeout", cause=f"{method} {url} did not answer within {timeout}s")
        except aiohttp.ClientError as exc:
            return TaskOutcome(error="States.Http.Socket", cause=f"{method} {url}: {exc}")
        return _outcome_from_reply(status, body)

    async def _http_task(self, params: Any, headers: dict[str, str], timeout: float) -> TaskOutcome:
        if not isinstance(params, dict) or "ApiEndpoint" not in params:
            return TaskOutcome(error="States.Runtime", cause="http:invoke needs Parameters with ApiEndpoint")
        url = str(params["ApiEndpoint"])
        query = params.get("QueryParameters") or {}
        if query:
            from urllib.parse import urlencode

            url += ("&" if "?" in url else "?") + urlencode(query, doseq=True)
        headers = {**headers, **{str(k): str(v) for k, v in (params.get("Headers") or {}).items()}}
        method = str(params.get("Method", "GET")).upper()
        outcome = await self._http(method, url, params.get("RequestBody"), headers, timeout)
        if outcome.failed:
            return outcome
        return TaskOutcome(output={"ResponseBody": outcome.output, "StatusCode": 200, "StatusText": "OK"})

    async def _lambda(self, resource: str, payload: Any, headers: dict[str, str], timeout: float) -> TaskOutcome:
        if not self.lambda_endpoint:
            return TaskOutcome(error="States.Runtime", cause="MACHINERY_LAMBDA_ENDPOINT is not set")
        if resource == _LAMBDA_INVOKE:
            if not isinstance(payload, dict) or "FunctionName" not in payload:
                return TaskOutcome(error="States.Runtime", cause="lambda:invoke needs Parameters.FunctionName")
            function = str(payload["FunctionName"])
            body = payload.get("Payload")
            envelope = True
        else:
            function, body, envelope = resource, payload, False
        name = function.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in function else function
        url = f"{self.lambda_endpoint.rstrip('/')}/2015-03-31/functions/{name}/invocations"
        session = await self.session()
        try:
            async with session.post(
                url, data=_dumps(body), headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                raw = await response.read()
                function_error = response.headers.get("X-Amz-Function-Error")
                status = response.status
        except TimeoutError:
            return TaskOutcome(error="States.Timeout", cause=f"Lambda {name} did not answer within {timeout}s")
        except aiohttp.ClientError as exc:
            return TaskOutcome(error="Lambda.ServiceException", cause=f"Lambda {name}: {exc}")
        try:
            result = json.loads(raw) if raw else None
        except ValueError:
            result = raw.decode("utf-8", "replace")
        if function_error or status >= 400:
            error_type = result.get("errorType", "Exception") if isinstance(result, dict) else "Exception"
            return TaskOutcome(error=str(error_type), cause=_dumps(result))
        if envelope:
            return TaskOutcome(
                output={
                    "ExecutedVersion": "$LATEST",
                    "Payload": result,
                    "StatusCode": 200,
                }
            )
        return TaskOutcome(output=result)


def _outcome_from_reply(status: int, body: bytes) -> TaskOutcome:
    try:
        parsed: Any = json.loads(body) if body else None
    except ValueError:
        parsed = body.decode("utf-8", "replace")
    if 200 <= status < 300:
        return TaskOutcome(output=parsed)
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        cause = parsed.get("cause", parsed.get("message", ""))
        return TaskOutcome(error=parsed["error"], cause=cause if isinstance(cause, str) else _dumps(cause))
    text = parsed if isinstance(parsed, str) else _dumps(parsed)
    return TaskOutcome(error=f"States.Http.StatusCode.{status}", cause=text[:32768])


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def sleep_until(deadline: float, now: float) -> None:
    await asyncio.sleep(max(0.0, deadline - now))

"""Webhook deliveries: back-off with jitter, giving up, the outcome in the history and the event record
(an injected clock: no attempt waits for real), and the signature against a known answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from flask import Flask

from machinery.api import orchestrator_of
from machinery.engine.types import HistoryEvent
from machinery.runtime.outbound import OutboundPolicy, parse_rules
from machinery.runtime.webhooks import FIRST_DELAY_SECONDS, MAX_DELAY_SECONDS, retry_delay, sign
from machinery.runtime.worker import Worker, WorkerSettings
from machinery.storage.base import WORK_WEBHOOK, ExecutionRecord, Storage
from tests.unit.rawhttp import RawServer, answering, raw_server, read_request

NOW = 1_700_000_000.0
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
OK = b"HTTP/1.1 204 No Content\r\n\r\n"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def test_the_signature_matches_a_known_answer() -> None:
    # printf '1700000000.{"event_id":"e-1","status":"SUCCEEDED"}' | openssl dgst -sha256 -hmac whsec-test
    body = b'{"event_id":"e-1","status":"SUCCEEDED"}'
    expected = "sha256=81534faf2186db490b3baf0900819a39e8b0969171872078c87f0b946607c1d2"
    assert sign(body, "whsec-test", "1700000000") == expected


def test_delays_double_up_to_the_cap_with_jitter_between_half_and_all() -> None:
    assert [retry_delay(n, lambda: 1.0) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert [retry_delay(n, lambda: 0.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert retry_delay(30, lambda: 1.0) == MAX_DELAY_SECONDS
    assert FIRST_DELAY_SECONDS == 2.0


def _finished_execution(storage: Storage, callback_url: str) -> str:
    workflow, _ = storage.save_workflow("wf", {"name": "wf"}, {"StartAt": "A", "States": {}}, [], False, NOW)
    record = ExecutionRecord(
        execution_id="exec-hooked",
        workflow_id=workflow.workflow_id,
        workflow_name="wf",
        workflow_version=workflow.version,
        name="hooked",
        status="SUCCEEDED",
        input={},
        started_at=NOW - 1,
        output={"done": True},
        finished_at=NOW,
        callback_url=callback_url,
    )
    storage.store_finished_execution(record, [HistoryEvent("ExecutionSucceeded", {"output": "{}"}, NOW)])
    return record.execution_id


def _attempts(
    app: Flask, handler: Any, attempts: int, settings: dict[str, Any] | None = None
) -> tuple[list[float], RawServer, str]:
    """Run every due webhook attempt, moving the clock to each next due time; the delays seen."""
    storage = orchestrator_of(app).storage
    clock = Clock()
    worker = Worker(storage, WorkerSettings(webhook_secret="s3cret", **(settings or {})), clock=clock)
    delays: list[float] = []

    async def main() -> tuple[RawServer, str]:
        async with raw_server(handler) as raw:
            execution_id = _finished_execution(storage, raw.url)
            for _ in range(attempts):
                items = storage.claim_work("test", clock(), 10, 30)
                assert [item.kind for item in items] == [WORK_WEBHOOK]
                await worker._send_webhook(items[0])
                due = storage.next_due()
                if due is None:
                    break
                delays.append(due - clock())
                assert storage.claim_work("test", due - 0.001, 10, 30) == []  # not before its time
                clock.now = due
            await worker.invoker.close()
            return raw, execution_id

    raw, execution_id = asyncio.run(main())
    return delays, raw, execution_id


def _webhook_history(app: Flask, execution_id: str) -> list[tuple[str, dict[str, Any]]]:
    history = orchestrator_of(app).storage.get_history(execution_id)
    return [(e.type, e.details) for e in history if e.type.startswith("Webhook")]


def test_a_receiver_that_stays_down_is_retried_with_back_off_then_given_up(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()
    delays, raw, execution_id = _attempts(app, answering(BUSY), attempts=10, settings={"webhook_attempts": 4})
    assert len(raw.requests) == 4
    for number, delay in enumerate(delays, start=1):
        full = FIRST_DELAY_SECONDS * 2 ** (number - 1)
        assert full / 2 <= delay <= full
    assert len(delays) == 3  # nothing is due after the fourth attempt
    events = _webhook_history(app, execution_id)
    assert [kind for kind, _ in events] == ["WebhookAttemptFailed"] * 3 + ["WebhookFailed"]
    assert [details["attempts"] for _, details in events] == [1, 2, 3, 4]
    assert events[-1][1]["error"] == "the receiver answered 503 Service Unavailable"
    record = app.test_client().get(f"/e/{execution_id}").get_json()
    assert record["webhook"] == {
        "status": "failed",
        "attempts": 4,
        "last_error": "the receiver answered 503 Service Unavailable",
    }


def test_a_delivery_that_succeeds_on_a_later_attempt(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    replies = iter([BUSY, BUSY, OK])

    async def flaky(raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            raw.requests.append(await read_request(reader))
            writer.write(next(replies))
            await writer.drain()

    client = app.test_client()
    delays, raw, execution_id = _attempts(app, flaky, attempts=10)
    assert len(raw.requests) == 3 and len(delays) == 2
    # every attempt sends the same signed record
    assert len({request.split(b"\r\n\r\n", 1)[1] for request in raw.requests}) == 1
    assert [kind for kind, _ in _webhook_history(app, execution_id)] == [
        "WebhookAttemptFailed",
        "WebhookAttemptFailed",
        "WebhookDelivered",
    ]
    record = client.get(f"/e/{execution_id}").get_json()
    assert record["webhook"] == {"status": "delivered", "attempts": 3, "last_error": None}


def test_a_pending_retry_shows_in_the_event_record(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    _delays, _raw, execution_id = _attempts(app, answering(BUSY), attempts=1)
    webhook = app.test_client().get(f"/e/{execution_id}").get_json()["webhook"]
    assert (webhook["status"], webhook["attempts"]) == ("pending", 1)
    assert webhook["last_error"].startswith("the receiver answered 503")
    assert webhook["next_attempt_at"].startswith("2023-11-14T22:13:2")


def test_a_refused_callback_target_is_given_up_at_once(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    policy = OutboundPolicy(denied=parse_rules("127.0.0.0/8"))
    delays, raw, execution_id = _attempts(app, answering(OK), attempts=5, settings={"outbound": policy})
    assert (delays, raw.connections) == ([], 0)
    ((kind, details),) = _webhook_history(app, execution_id)
    assert kind == "WebhookFailed" and "MACHINERY_DENIED_TARGETS (127.0.0.0/8)" in details["error"]

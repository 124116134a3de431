"""Regression tests of issue 8's task-call findings, through the task invoker against raw loopback servers.

Each test failed on the hand-written client this replaced (header injection, request-line corruption,
1xx replies, credentials in Host, a doubled Content-Type, unbounded replies and header blocks, a POST
repeated after its reply had begun).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from machinery.engine.types import InvokeTask
from machinery.runtime.tasks import CallIdentity, TaskInvoker, TaskOutcome
from machinery.storage.memory import MemoryStorage
from tests.unit.rawhttp import RawServer, answering, header_lines, raw_server, read_request

OK = b'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{"n":1}'
HTTP_INVOKE = "arn:aws:states:::http:invoke"


async def _invoke(invoker: TaskInvoker, resource: str, payload: Any, timeout: float = 5.0) -> TaskOutcome:
    effect = InvokeTask("Call", resource, payload, attempt=0, timeout_seconds=timeout)
    return await invoker.invoke(effect, CallIdentity("exec-1", "exec-1"))


def _calls(
    handler: Any, *payloads: tuple[str, Any], **invoker_options: Any
) -> tuple[list[TaskOutcome], RawServer]:
    """Run the calls in turn on one invoker (so one connection pool); ``{url}`` in a resource or an
    ApiEndpoint is the server's URL."""

    async def main() -> tuple[list[TaskOutcome], RawServer]:
        async with raw_server(handler) as raw:
            invoker = TaskInvoker(MemoryStorage(), **invoker_options)
            try:
                outcomes = []
                for resource, payload in payloads:
                    if isinstance(payload, dict) and "ApiEndpoint" in payload:
                        payload = {**payload, "ApiEndpoint": payload["ApiEndpoint"].format(url=raw.url)}
                    outcomes.append(await _invoke(invoker, resource.format(url=raw.url), payload, 2.0))
                return outcomes, raw
            finally:
                await invoker.close()

    return asyncio.run(main())


def _http_task(**params: Any) -> tuple[str, dict[str, Any]]:
    return HTTP_INVOKE, {"ApiEndpoint": "{url}", "Method": "POST", "RequestBody": {"a": 1}, **params}


class TestHeaderInjection:
    def test_a_header_value_with_cr_lf_fails_the_state_naming_the_header(self) -> None:
        outcomes, raw = _calls(answering(OK), _http_task(Headers={"X-Test": "a\r\nInjected: yes"}))
        assert outcomes[0].error == "States.Runtime"
        assert "X-Test" in outcomes[0].cause and "CR, LF" in outcomes[0].cause
        assert raw.requests == []  # nothing reached the wire

    def test_lf_nul_and_bad_names_are_refused_too(self) -> None:
        for headers, named in (
            ({"X-A": "a\nInjected: yes"}, "X-A"),
            ({"X-B": "a\x00b"}, "X-B"),
            ({"X-C\r\nInjected": "yes"}, "X-C"),
            ({"X D": "1"}, "X D"),
        ):
            outcomes, raw = _calls(answering(OK), _http_task(Headers=headers))
            assert outcomes[0].error == "States.Runtime", headers
            assert named in outcomes[0].cause
            assert raw.requests == []

    def test_an_api_endpoint_with_spaces_and_cr_lf_cannot_corrupt_the_request_line(self) -> None:
        endpoint = "{url}/x HTTP/1.1\r\nEvil: 1\r\n\r\nGET /y"
        outcomes, raw = _calls(answering(OK), _http_task(ApiEndpoint=endpoint, Method="GET"))
        assert outcomes[0].output["StatusCode"] == 200
        (request,) = raw.requests
        request_line = request.split(b"\r\n", 1)[0]
        assert request_line == b"GET /call/x%20HTTP/1.1%0D%0AEvil:%201%0D%0A%0D%0AGET%20/y HTTP/1.1"
        assert not any(line.lower().startswith(b"evil") for line in header_lines(request))

    def test_query_parameters_and_non_ascii_paths_are_encoded(self) -> None:
        outcomes, raw = _calls(
            answering(OK),
            _http_task(ApiEndpoint="{url}/é ü?q=a b", Method="GET", QueryParameters={"k": "v w\r\n"}),
        )
        assert outcomes[0].output["StatusCode"] == 200
        assert (
            raw.requests[0].split(b"\r\n", 1)[0] == b"GET /call/%C3%A9%20%C3%BC?q=a%20b&k=v+w%0D%0A HTTP/1.1"
        )


class TestRequestHeaders:
    def test_credentials_in_the_url_are_never_put_into_host(self) -> None:
        async def handler(raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            raw.requests.append(await read_request(reader))
            writer.write(OK)
            await writer.drain()

        async def main() -> tuple[TaskOutcome, RawServer]:
            async with raw_server(handler) as raw:
                invoker = TaskInvoker(MemoryStorage())
                url = f"http://us%20er:p%40w@127.0.0.1:{raw.port}/call"
                outcome = await _invoke(invoker, url, {"a": 1})
                await invoker.close()
                return outcome, raw

        outcome, raw = asyncio.run(main())
        assert outcome.output == {"n": 1}
        lines = header_lines(raw.requests[0])
        assert f"Host: 127.0.0.1:{raw.port}".encode() in lines
        assert b"Authorization: Basic " + base64.b64encode(b"us er:p@w") in lines
        assert not any(b"p@w" in line or b"us%20er" in line for line in lines)

    def test_content_type_is_sent_once_when_the_caller_sets_one(self) -> None:
        outcomes, raw = _calls(answering(OK), _http_task(Headers={"content-type": "application/vnd.x+json"}))
        assert outcomes[0].output["StatusCode"] == 200
        types = [line for line in header_lines(raw.requests[0]) if line.lower().startswith(b"content-type:")]
        assert types == [b"content-type: application/vnd.x+json"]

    def test_framing_headers_of_the_caller_are_dropped(self) -> None:
        smuggle = {
            "Content-Length": "0",
            "Transfer-Encoding": "chunked",
            "Host": "evil",
            "Connection": "close",
        }
        outcomes, raw = _calls(answering(OK), _http_task(Headers=smuggle))
        assert outcomes[0].output["StatusCode"] == 200
        lines = [line.lower() for line in header_lines(raw.requests[0])]
        assert b"content-length: 7" in lines and b"content-length: 0" not in lines
        assert not any(line.startswith((b"transfer-encoding", b"connection")) for line in lines)
        assert f"host: 127.0.0.1:{raw.port}".encode() in lines
        assert raw.requests[0].endswith(b'{"a":1}')


class TestReplies:
    def test_1xx_interim_replies_are_skipped_and_the_connection_stays_in_step(self) -> None:
        interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        second = b'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{"n":2}'
        outcomes, raw = _calls(answering(interim + OK, second), ("{url}", {}), ("{url}", {}))
        assert [o.output for o in outcomes] == [{"n": 1}, {"n": 2}]
        assert raw.connections == 1

    def test_a_reply_past_the_data_limit_is_not_read_and_fails_the_state(self) -> None:
        sent = [0]

        async def endless(raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
            chunk = b" " * (1 << 20)
            while sent[0] < 1 << 30:
                writer.write(chunk)
                await writer.drain()
                sent[0] += len(chunk)

        outcomes, _raw = _calls(endless, ("{url}", {}), data_limit=64 * 1024)
        assert outcomes[0].error == "States.DataLimitExceeded"
        assert "65536" in outcomes[0].cause and "MACHINERY_DATA_LIMIT" in outcomes[0].cause
        # The client stopped reading at the limit: what the server got out is socket buffers' worth.
        assert sent[0] < 64 << 20

    def test_an_error_reply_past_the_limit_keeps_its_status(self) -> None:
        big = b"HTTP/1.1 500 Oops\r\nContent-Length: 200000\r\n\r\n" + b"x" * 200000
        outcomes, _raw = _calls(answering(big), _http_task(), data_limit=1000)
        assert outcomes[0].error == "States.Http.StatusCode.500"
        assert outcomes[0].cause == "x" * 1000

    def test_too_many_header_fields_fail_the_call(self) -> None:
        many = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(1000)) + b"\r\n"
        outcomes, _raw = _calls(answering(many), ("{url}", {}))
        assert outcomes[0].error == "States.Http.Socket"
        assert "header fields" in outcomes[0].cause

    def test_an_oversized_header_block_fails_the_call(self) -> None:
        huge = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\nok"
        outcomes, _raw = _calls(answering(huge), ("{url}", {}))
        assert outcomes[0].error == "States.Http.Socket"
        assert "header block" in outcomes[0].cause

    def test_connection_close_is_honoured(self) -> None:
        closing = b'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 7\r\n\r\n{"n":1}'
        # The server says close but keeps the socket open: reusing it would hang.
        outcomes, raw = _calls(answering(closing), ("{url}", {}), ("{url}", {}))
        assert [o.output for o in outcomes] == [{"n": 1}, {"n": 1}]
        assert raw.connections == 2

    def test_a_timeout_in_the_middle_of_a_body(self) -> None:
        async def stalls_once(
            raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await read_request(reader)
            if raw.connections == 1:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                await writer.drain()
                await asyncio.Event().wait()
            writer.write(OK)
            await writer.drain()

        async def main() -> tuple[list[TaskOutcome], RawServer]:
            async with raw_server(stalls_once) as raw:
                invoker = TaskInvoker(MemoryStorage())
                first = await _invoke(invoker, raw.url, {}, timeout=0.2)
                second = await _invoke(invoker, raw.url, {})
                await invoker.close()
                return [first, second], raw

        (first, second), raw = asyncio.run(main())
        assert first.error == "States.Timeout"
        assert second.output == {"n": 1}
        assert raw.connections == 2  # the half-read connection was not pooled


class TestStalePooledConnections:
    def test_a_post_on_a_connection_closed_while_idle_goes_on_a_fresh_one(self) -> None:
        outcomes, raw = _calls(answering(OK, close=True), ("{url}", {"a": 1}), ("{url}", {"a": 2}))
        assert [o.output for o in outcomes] == [{"n": 1}, {"n": 1}]
        assert [r.endswith(b'{"a":%d}' % n) for n, r in enumerate(raw.requests, 1)] == [True, True]

    def test_a_post_the_server_drops_unanswered_is_sent_again(self) -> None:
        async def drops_second(
            raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            while True:
                raw.requests.append(await read_request(reader))
                if len(raw.requests) == 2:
                    writer.close()  # keep-alive race: closed after reading, before answering
                    return
                writer.write(OK)
                await writer.drain()

        outcomes, raw = _calls(drops_second, ("{url}", {"a": 1}), ("{url}", {"a": 2}))
        assert [o.output for o in outcomes] == [{"n": 1}, {"n": 1}]
        assert raw.connections == 2 and raw.requests[2].endswith(b'{"a":2}')

    def test_a_post_whose_reply_had_begun_is_not_repeated(self) -> None:
        async def breaks_midway(
            raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            while True:
                raw.requests.append(await read_request(reader))
                if len(raw.requests) == 2:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                    await writer.drain()
                    writer.close()
                    return
                writer.write(OK)
                await writer.drain()

        outcomes, raw = _calls(breaks_midway, ("{url}", {"a": 1}), ("{url}", {"a": 2}))
        assert outcomes[0].output == {"n": 1}
        assert outcomes[1].error == "States.Http.Socket"
        assert len(raw.requests) == 2  # the service saw the second POST once

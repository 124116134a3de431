"""The task calls' HTTP/1.1 client against raw loopback servers that answer in every framing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from machinery.runtime.httpclient import FastHttpClient, HttpProtocolError

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


_server_writers: list[asyncio.StreamWriter] = []


async def _serve(reply: Reply) -> tuple[asyncio.Server, str]:
    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _server_writers.append(writer)  # closed by the test at the end, whatever the handler did
        await reply(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/event?x=1"


async def _close(server: asyncio.Server) -> None:
    while _server_writers:
        _server_writers.pop().close()
    server.close()
    await server.wait_closed()


def _run(reply: Reply, calls: int = 1, timeout: float = 5.0) -> list[tuple[int, bytes]]:
    async def main() -> list[tuple[int, bytes]]:
        server, url = await _serve(reply)
        client = FastHttpClient()
        try:
            return [
                await client.request("POST", url, b'{"a":1}', {"X-Test": "1"}, timeout) for _ in range(calls)
            ]
        finally:
            await client.close()
            await _close(server)

    return asyncio.run(main())


def test_content_length_replies_reuse_one_connection() -> None:
    connections = []

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while True:
            try:
                request = await _read_request(reader)
            except asyncio.IncompleteReadError:
                break
            assert request.startswith(b"POST /event?x=1 HTTP/1.1\r\n")
            assert b"X-Test: 1\r\n" in request and request.endswith(b'{"a":1}')
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{"b":2}')
        writer.close()

    assert _run(reply, calls=3) == [(200, b'{"b":2}')] * 3
    assert len(connections) == 1


def test_chunked_and_read_to_close_replies() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.0 500 Oops\r\n\r\nplain text")
        await writer.drain()
        writer.close()

    assert _run(chunked) == [(201, b"abcde")]
    assert _run(until_close, calls=2) == [(500, b"plain text")] * 2


def test_a_pooled_connection_the_server_closed_is_replaced() -> None:
    served = []

    async def once_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        served.append(1)
        # Advertises keep-alive, then closes: the next call meets a dead pooled connection.
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    assert _run(once_per_connection, calls=3) == [(200, b"ok")] * 3
    assert len(served) == 3


def test_a_silent_server_times_out() -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _read_request(reader)

        server, url = await _serve(silent)
        try:
            with pytest.raises(TimeoutError):
                await FastHttpClient().request("POST", url, b"{}", {}, 0.05)
        finally:
            await _close(server)

    asyncio.run(main())


def test_garbage_is_a_protocol_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        writer.close()

    with pytest.raises(HttpProtocolError):
        _run(garbage)


def test_a_closed_port_is_a_connection_error() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await FastHttpClient().request("GET", f"http://127.0.0.1:{port}/", None, {}, 5)

    with pytest.raises(OSError):
        asyncio.run(main())

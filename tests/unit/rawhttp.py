"""Raw loopback servers for outbound-call tests: a handler gets the connection's streams and writes any
bytes it likes (wrong framing, 1xx replies, endless bodies); the test sees every request received."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

Handler = Callable[["RawServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request (head and Content-Length body), as received."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def header_lines(request: bytes) -> list[bytes]:
    """The header lines of a request (without the request line)."""
    return request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]


@dataclass
class RawServer:
    url: str
    port: int
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


@asynccontextmanager
async def raw_server(handler: Handler, path: str = "/call") -> AsyncIterator[RawServer]:
    """Serve ``handler`` on a free loopback port; every writer is closed at the end."""
    writers: list[asyncio.StreamWriter] = []
    server_ref: list[RawServer] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        server_ref[0].connections += 1
        with suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            await handler(server_ref[0], reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    raw = RawServer(f"http://127.0.0.1:{port}{path}", port)
    server_ref.append(raw)
    try:
        yield raw
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


def answering(*replies: bytes, close: bool = False) -> Handler:
    """A handler that answers the requests of each connection with ``replies`` in turn (the last one
    repeated), recording each request in ``raw.requests``; ``close``: after the first reply."""

    async def handler(raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = 0
        while True:
            try:
                request = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            raw.requests.append(request)
            writer.write(replies[min(index, len(replies) - 1)])
            await writer.drain()
            index += 1
            if close:
                writer.close()
                return

    return handler

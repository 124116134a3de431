"""A small keep-alive HTTP/1.1 client on asyncio streams, for plain ``http://`` task calls.

Task calls are the hot path of every execution; a general client (aiohttp) spends about twice the time of
the call itself on machinery of its own. This client does just what a task call needs: one request, a
``Content-Length`` or chunked or read-to-close reply, pooled connections per host. ``https://`` and
anything unusual go through aiohttp (:mod:`machinery.runtime.tasks`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from urllib.parse import urlsplit

_MAX_HEADER_LINES = 200
_MAX_IDLE_PER_HOST = 256


class HttpProtocolError(ConnectionError):
    """The peer answered something that is not HTTP/1.x."""


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class FastHttpClient:
    """Pooled keep-alive connections per ``(host, port)``; one request at a time per connection."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = defaultdict(list)

    async def request(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes]:
        """Send one request; the reply's status and body. Raises ``TimeoutError`` or ``ConnectionError``."""
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 80
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if body is not None:
            lines.append("Content-Type: application/json")
            lines.append(f"Content-Length: {len(body)}")
        elif method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        async with asyncio.timeout(timeout):
            pooled = self._take(host, port)
            if pooled is not None:
                try:
                    return await self._exchange(pooled, host, port, head, body)
                except (ConnectionError, asyncio.IncompleteReadError, HttpProtocolError):
                    # The peer closed the idle connection; a fresh one is the usual remedy.
                    pooled.close()
            reader, writer = await asyncio.open_connection(host, port)
            return await self._exchange(_Connection(reader, writer), host, port, head, body)

    def _take(self, host: str, port: int) -> _Connection | None:
        idle = self._idle.get((host, port))
        while idle:
            connection = idle.pop()
            if not connection.reader.at_eof() and not connection.writer.is_closing():
                return connection
            connection.close()
        return None

    async def _exchange(
        self, connection: _Connection, host: str, port: int, head: bytes, body: bytes | None
    ) -> tuple[int, bytes]:
        writer, reader = connection.writer, connection.reader
        writer.write(head + body if body else head)
        try:
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionResetError("the connection closed before a reply")
            version, _, rest = status_line.decode("latin-1").partition(" ")
            if not version.startswith("HTTP/1."):
                raise HttpProtocolError(f"not an HTTP/1.x reply: {status_line[:80]!r}")
            status = int(rest[:3])
            length: int | None = None
            chunked = False
            keep_alive = version == "HTTP/1.1"
            for _ in range(_MAX_HEADER_LINES):
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                value = value.strip()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
                elif name == "connection":
                    keep_alive = value.lower() == "keep-alive" or (keep_alive and value.lower() != "close")
            if chunked:
                payload = await _read_chunked(reader)
            elif length is not None:
                payload = await reader.readexactly(length)
            elif status in (204, 304) or 100 <= status < 200:
                payload = b""
            else:
                payload = await reader.read()
                keep_alive = False
        except BaseException:
            connection.close()
            raise
        idle = self._idle[(host, port)]
        if keep_alive and len(idle) < _MAX_IDLE_PER_HOST:
            idle.append(connection)
        else:
            connection.close()
        return status, payload

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readline()
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)

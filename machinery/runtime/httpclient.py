"""The one outbound HTTP/1.1 client: task calls, HTTP ItemReaders and webhooks, over http and https.

Requests are written by :mod:`machinery.runtime.outbound` (validated headers, percent-encoded targets);
replies are parsed by httptools (llhttp, Node's parser) through :class:`ReplyParser`, which skips 1xx
interim replies and bounds what it keeps: the header block, the number of header fields and the body
(read up to the caller's limit and no further: the rest is never received). Connections are asyncio
streams (TLS through an :class:`ssl.SSLContext`), opened to an address that
:class:`~machinery.runtime.outbound.OutboundPolicy` allowed, after resolving the name once, so a name
cannot be re-resolved elsewhere between the check and the connect; they are pooled per (scheme, host,
port) and kept alive while the peer allows it.

httptools rather than h11: parsing one typical reply costs about 12 µs with httptools and 280 µs with
h11 (pure Python), more than a whole task call costs otherwise (``bench/http_client.py``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections import defaultdict
from dataclasses import dataclass

import httptools

from machinery.runtime.outbound import (
    CallTimedOut,
    ConnectionFailed,
    IPAddress,
    OutboundError,
    OutboundPolicy,
    ProtocolError,
    Url,
    check_method,
    parse_url,
    request_headers,
)

logger = logging.getLogger(__name__)

#: Bytes of status lines and header fields a reply may send before its body (1xx replies included).
MAX_HEADER_BYTES = 64 * 1024
#: Header fields of one reply.
MAX_HEADER_FIELDS = 100
_MAX_IDLE_PER_HOST = 256
#: A pooled connection idle for longer is closed rather than reused (servers drop idle ones).
_IDLE_SECONDS = 30.0
_READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Reply:
    """A final reply. ``truncated``: the body went past the caller's limit; ``body`` holds the first
    ``limit`` bytes and the rest was not read."""

    status: int
    reason: str
    headers: dict[str, str]  # names in lower case; a repeated field's values joined with ", "
    body: bytes
    truncated: bool = False


class ReplyParser:
    """Feed it the bytes of a connection; it tells when the final reply is complete.

    Pure (no I/O) so that it can be fuzzed. Never raises anything but :class:`ProtocolError`.
    """

    __slots__ = (
        "_body",
        "_body_bytes",
        "_framed",
        "_head_bytes",
        "_head_size",
        "_interim",
        "_parser",
        "body_limit",
        "complete",
        "fields",
        "head_only",
        "headers",
        "headers_done",
        "keep_alive",
        "reason",
        "status",
        "truncated",
    )

    def __init__(self, body_limit: int, head_only: bool = False) -> None:
        self.body_limit = body_limit
        self.head_only = head_only  # a reply to HEAD has no body, whatever its Content-Length says
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._head_bytes = 0
        self._head_size = 0
        self._interim = False
        self._framed = False
        self.fields = 0
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.complete = False
        self.truncated = False
        self.keep_alive = False

    def feed(self, data: bytes) -> None:
        """Parse more bytes; ``data == b""`` means the peer closed the connection.

        :raises ProtocolError: not HTTP/1.x, a bounded part too big, or a reply cut short.
        """
        if self.complete:
            return
        if not data:
            self._eof()
            return
        heading = not self.headers_done
        if heading:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise ProtocolError("the peer switched protocols (101), which no call asks for") from None
        except httptools.HttpParserError as exc:  # _ExtraBytes arrives as HttpParserCallbackError
            if self.complete:
                return  # bytes after the reply (a server's stray data): the connection is not reused
            raise ProtocolError(f"invalid HTTP reply: {exc}") from None
        if heading:
            self._check_head()

    def _check_head(self) -> None:
        # Until the header block is complete every byte fed is part of it; once it is, the fields'
        # own sizes tell (the same read may have brought body bytes too).
        size = self._head_size if self.headers_done else self._head_bytes
        if size > MAX_HEADER_BYTES:
            raise ProtocolError(f"the reply's header block exceeds {MAX_HEADER_BYTES} bytes")
        if self.fields > MAX_HEADER_FIELDS:
            raise ProtocolError(f"the reply has more than {MAX_HEADER_FIELDS} header fields")

    def _eof(self) -> None:
        if self.headers_done and not self._framed and not self._interim:
            # Neither Content-Length nor chunked: the body ends when the connection does.
            self.keep_alive = False
            self.complete = True
            return
        if self.truncated:
            self.complete = True
            return
        raise ProtocolError(
            "the connection closed before the reply was complete"
            if self.status
            else "the connection closed before a reply"
        )

    @property
    def started(self) -> bool:
        """Whether any byte of a reply has arrived."""
        return self._head_bytes > 0

    @property
    def body(self) -> bytes:
        return b"".join(self._body)

    # httptools callbacks (they never raise: an exception there would lose its type) ---------------

    def on_message_begin(self) -> None:
        if self.complete:
            # More bytes after the final reply: keep the reply, drop the connection.
            self.keep_alive = False
            raise _ExtraBytes()
        self._interim = False
        self.headers = {}
        self.status = 0

    def on_status(self, status: bytes) -> None:
        self._head_size += len(status) + 15
        self.reason = status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        self.fields += 1
        if self.fields > MAX_HEADER_FIELDS:
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"
        if key in ("content-length", "transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        """The parser read a reply's head: an interim one (1xx) is skipped, the final one is kept."""
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # An interim reply (100 Continue, 103 Early Hints): the final one follows.
            self._interim = True
            self.fields = 0
            self._framed = False
            return
        self.status = status
        self.headers_done = True
        self.keep_alive = self._parser.should_keep_alive()
        if self.head_only:
            self.keep_alive = False  # its body framing is the GET's: the connection is not reused
            self.complete = True

    def on_body(self, body: bytes) -> None:
        """A chunk of the body, kept up to the size limit (past it the reply is truncated and complete)."""
        if self.truncated or self.head_only:
            return
        room = self.body_limit - self._body_bytes
        if len(body) > room:
            if room > 0:
                self._body.append(body[:room])
            self._body_bytes = self.body_limit
            self.truncated = True
            self.complete = True
            self.keep_alive = False
            return
        self._body.append(body)
        self._body_bytes += len(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.keep_alive = self.keep_alive and self._parser.should_keep_alive()
        self.complete = True

    def reply(self) -> Reply:
        return Reply(self.status, self.reason, self.headers, self.body, self.truncated)


class _ExtraBytes(Exception):
    """Stops the parser at bytes that follow the final reply."""


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and now - self.idle_since < _IDLE_SECONDS
            # Bytes that arrived while it was idle answer no request of ours: never take them as one.
            and not getattr(self.reader, "_buffer", b"")
        )

    def close(self) -> None:
        self.writer.close()


class _Stale(Exception):
    """A pooled connection failed before any byte of a reply: the request can go on a fresh one."""


class HttpClient:
    """Pooled keep-alive HTTP/1.1 connections; one request at a time per connection.

    :param policy: which targets may be called (checked on the resolved address, at connect time).
    :param ssl_context: for ``https://`` (default: the system's trust store, hostnames verified).
    """

    def __init__(
        self, policy: OutboundPolicy | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.policy = policy or OutboundPolicy()
        self._ssl_context = ssl_context
        self._idle: defaultdict[tuple[str, str, int], list[_Connection]] = defaultdict(list)

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        timeout: float,
        body_limit: int,
        content_type: str = "application/json",
    ) -> Reply:
        """Send one request and read its final reply (its body up to ``body_limit`` bytes).

        ``Content-Type`` is ``content_type`` unless ``headers`` set one. A pooled connection that
        turns out closed before any byte of the reply arrived is replaced once (the request had not
        been read: the Idempotency-Key covers the rare server that read it and died).

        :raises OutboundError: :class:`~machinery.runtime.outbound.InvalidRequest`,
            :class:`~machinery.runtime.outbound.TargetRefused`, :class:`CallTimedOut`,
            :class:`ConnectionFailed` or :class:`ProtocolError`, each naming the call.
        """
        method = check_method(method)
        parsed = parse_url(url)
        head = _request_head(method, parsed, headers, body, content_type)
        payload = head + body if body else head
        try:
            async with asyncio.timeout(timeout):
                connection = self._take(parsed)
                if connection is not None:
                    try:
                        return await self._exchange(connection, parsed, payload, body_limit, method, True)
                    except _Stale:
                        pass
                connection = await self._connect(parsed)
                return await self._exchange(connection, parsed, payload, body_limit, method, False)
        except TimeoutError:
            raise CallTimedOut(f"{method} {url} did not answer within {timeout}s") from None
        except OutboundError as exc:
            exc.message = f"{method} {url}: {exc.message}"
            exc.args = (exc.message,)
            raise

    def _take(self, url: Url) -> _Connection | None:
        idle = self._idle.get((url.scheme, url.host, url.port))
        if not idle:
            return None
        now = asyncio.get_running_loop().time()
        while idle:
            connection = idle.pop()
            if connection.usable(now):
                return connection
            connection.close()
        return None

    async def _connect(self, url: Url) -> _Connection:
        addresses = await self._addresses(url)
        # Only the addresses checked here are connected to: no second resolution can swap them.
        allowed = [address for address in addresses if self._allowed(url.host, address)]
        if not allowed:
            self.policy.check_address(url.host, addresses[0])  # raises, naming the rule
        failure: OSError | None = None
        for address in allowed:
            try:
                if url.scheme == "https":
                    reader, writer = await asyncio.open_connection(
                        str(address), url.port, ssl=self.ssl_context, server_hostname=url.host
                    )
                else:
                    reader, writer = await asyncio.open_connection(str(address), url.port)
            except OSError as exc:  # ssl.SSLError included
                failure = exc
                continue
            return _Connection(reader, writer)
        assert failure is not None
        raise ConnectionFailed(f"cannot connect to {url.host}:{url.port}: {failure}") from None

    def _allowed(self, host: str, address: IPAddress) -> bool:
        try:
            self.policy.check_address(host, address)
        except OutboundError:
            return False
        return True

    async def _addresses(self, url: Url) -> list[IPAddress]:
        literal = url.address
        if literal is not None:
            return [literal]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConnectionFailed(f"cannot resolve {url.host}: {exc}") from None
        found: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in found:
                found.append(address)
        if not found:
            raise ConnectionFailed(f"cannot resolve {url.host}: no address")
        return found

    async def _exchange(
        self, connection: _Connection, url: Url, payload: bytes, body_limit: int, method: str, pooled: bool
    ) -> Reply:
        parser = ReplyParser(body_limit, head_only=method == "HEAD")
        reader, writer = connection.reader, connection.writer
        try:
            writer.write(payload)
            if writer.transport.get_write_buffer_size() > _READ_SIZE:
                await writer.drain()  # a large body: wait for the socket (small ones are sent at once)
            while not parser.complete:
                data = await reader.read(_READ_SIZE)
                parser.feed(data)
        except (OSError, ProtocolError) as exc:
            connection.close()
            if pooled and not parser.started:
                raise _Stale() from None
            if isinstance(exc, ProtocolError):
                raise
            raise ConnectionFailed(f"the connection broke: {exc or type(exc).__name__}") from None
        except BaseException:
            connection.close()  # a timeout or a cancellation in the middle: the reply is unread
            raise
        if parser.keep_alive and not reader.at_eof():
            idle = self._idle[(url.scheme, url.host, url.port)]
            if len(idle) < _MAX_IDLE_PER_HOST:
                connection.idle_since = asyncio.get_running_loop().time()
                idle.append(connection)
            else:
                connection.close()
        else:
            connection.close()
        return parser.reply()

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


def _request_head(
    method: str, url: Url, headers: dict[str, str], body: bytes | None, content_type: str
) -> bytes:
    lines = [f"{method} {url.target} HTTP/1.1", f"Host: {url.host_header}"]
    fields = request_headers(headers)
    names = {name.lower() for name, _ in fields}
    lines.extend(f"{name}: {value}" for name, value in fields)
    if url.authorization is not None and "authorization" not in names:
        lines.append(f"Authorization: {url.authorization}")
    if body is not None:
        if "content-type" not in names:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    elif method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

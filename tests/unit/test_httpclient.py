"""The outbound client against raw loopback servers: framings, pooling, TLS, and the outbound policy
applied to the address it connects to."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from machinery.runtime.httpclient import HttpClient, Reply
from machinery.runtime.outbound import (
    CallTimedOut,
    ConnectionFailed,
    OutboundPolicy,
    ProtocolError,
    TargetRefused,
    parse_rules,
)
from tests.unit.rawhttp import RawServer, answering, raw_server, read_request


def _run(
    handler: Any, calls: int = 1, client: HttpClient | None = None, url: str | None = None
) -> list[Reply]:
    async def main() -> list[Reply]:
        async with raw_server(handler) as raw:
            http = client or HttpClient()
            try:
                return [
                    await http.request("POST", url or raw.url, b'{"a":1}', {"X-Test": "1"}, 5.0, 1 << 20)
                    for _ in range(calls)
                ]
            finally:
                await http.close()

    return asyncio.run(main())


def test_content_length_replies_reuse_one_connection() -> None:
    connections = []

    async def handler(raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await answering(b'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{"b":2}')(raw, reader, writer)

    replies = _run(handler, calls=3)
    assert [(r.status, r.reason, r.body) for r in replies] == [(200, "OK", b'{"b":2}')] * 3
    assert len(connections) == 1


def test_chunked_and_read_to_close_replies() -> None:
    chunked = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    )
    until_close = b"HTTP/1.0 500 Oops\r\nX-Two: a\r\nx-two: b\r\n\r\nplain text"
    assert [(r.status, r.body) for r in _run(answering(chunked, close=True))] == [(201, b"abcde")]
    replies = _run(answering(until_close, close=True), calls=2)
    assert [(r.status, r.body) for r in replies] == [(500, b"plain text")] * 2
    assert replies[0].headers["x-two"] == "a, b"


def test_a_chunked_body_past_the_limit_is_cut_there() -> None:
    async def endless(raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            writer.write(b"10000\r\n" + b"z" * 0x10000 + b"\r\n")
            await writer.drain()

    async def main() -> Reply:
        async with raw_server(endless) as raw:
            http = HttpClient()
            reply = await http.request("GET", raw.url, None, {}, 5.0, 100_000)
            await http.close()
            return reply

    reply = asyncio.run(main())
    assert reply.truncated and reply.body == b"z" * 100_000


def test_a_silent_server_times_out() -> None:
    async def silent(raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.Event().wait()

    async def main() -> None:
        async with raw_server(silent) as raw:
            with pytest.raises(CallTimedOut, match=r"did not answer within 0\.05s"):
                await HttpClient().request("POST", raw.url, b"{}", {}, 0.05, 100)

    asyncio.run(main())


def test_garbage_and_switching_protocols_are_protocol_errors() -> None:
    for reply in (
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 101 Switching\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    ):
        with pytest.raises(ProtocolError):
            _run(answering(reply, close=True))


def test_a_closed_port_is_a_connection_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionFailed, match="cannot connect"):
        asyncio.run(HttpClient().request("GET", f"http://127.0.0.1:{port}/", None, {}, 5, 100))


def test_head_replies_have_no_body() -> None:
    async def main() -> Reply:
        async with raw_server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")) as raw:
            return await _once(HttpClient(), "HEAD", raw.url)

    assert asyncio.run(main()).body == b""


async def _once(client: HttpClient, method: str, url: str) -> Reply:
    try:
        return await client.request(method, url, None, {}, 5, 100)
    finally:
        await client.close()


# TLS -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[ssl.SSLContext]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    yield context


def _tls_calls(server_context: ssl.SSLContext, client_context: ssl.SSLContext, host: str) -> list[Reply]:
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                requests.append(await read_request(reader))
                writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{"tls":1}')
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()

    async def main() -> list[Reply]:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        http = HttpClient(ssl_context=client_context)
        try:
            return [
                await http.request("POST", f"https://{host}:{port}/x", b"{}", {}, 5, 100) for _ in range(2)
            ]
        finally:
            await http.close()
            server.close()
            await server.wait_closed()

    replies = asyncio.run(main())
    assert len(requests) == 2 and requests[0].startswith(b"POST /x HTTP/1.1\r\n")
    return replies


def test_https_with_a_trusted_certificate_keeps_its_connection(
    ca: trustme.CA, tls_server: ssl.SSLContext
) -> None:
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    replies = _tls_calls(tls_server, client_context, "localhost")
    assert [(r.status, r.body) for r in replies] == [(200, b'{"tls":1}')] * 2


def test_https_refuses_an_untrusted_certificate(tls_server: ssl.SSLContext) -> None:
    with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
        _tls_calls(tls_server, ssl.create_default_context(), "localhost")


# the outbound policy at connect time ---------------------------------------------------------------


def test_a_name_resolving_to_a_denied_address_is_refused_before_connecting() -> None:
    policy = OutboundPolicy(denied=parse_rules("127.0.0.0/8,::1"))
    client = HttpClient(policy)

    async def main() -> RawServer:
        async with raw_server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as raw:
            with pytest.raises(TargetRefused, match=r"localhost \(127.0.0.1\).*MACHINERY_DENIED_TARGETS"):
                await client.request("GET", f"http://localhost:{raw.port}/", None, {}, 5, 100)
            return raw

    assert asyncio.run(main()).connections == 0


def test_the_metadata_address_is_refused_by_default_also_ipv4_mapped() -> None:
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
    ):
        with pytest.raises(TargetRefused, match="MACHINERY_DENIED_TARGETS"):
            asyncio.run(HttpClient().request("GET", url, None, {}, 5, 100))


def test_the_client_connects_to_the_address_it_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DNS rebinding: the name is resolved once, the addresses checked, and the connection made to a
    checked address itself (a second resolution could answer something else)."""
    resolutions: list[str] = []
    connected: list[str] = []

    async def main() -> Reply:
        async with raw_server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) as raw:
            loop = asyncio.get_running_loop()

            async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
                resolutions.append(host)
                # the rebinding answer: a denied address first, then an allowed one
                return [
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
                ]

            real_open = asyncio.open_connection

            async def open_connection(host: str, port: int, **kwargs: Any) -> Any:
                connected.append(host)
                return await real_open(host, port, **kwargs)

            monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
            monkeypatch.setattr(asyncio, "open_connection", open_connection)
            return await _once(HttpClient(), "GET", f"http://rebind.test:{raw.port}/")

    assert asyncio.run(main()).body == b"ok"
    assert resolutions == ["rebind.test"] and connected == ["127.0.0.1"]


def test_allow_list_by_name_and_by_range() -> None:
    policy = OutboundPolicy(allowed=parse_rules("*.internal.example,10.0.0.0/8"), denied=())
    loopback = ipaddress.ip_address("127.0.0.1")
    policy.check_address("api.internal.example", loopback)
    policy.check_address("anything", ipaddress.ip_address("10.1.2.3"))
    with pytest.raises(TargetRefused, match="not in MACHINERY_ALLOWED_TARGETS"):
        policy.check_address("elsewhere.example", loopback)
    assert policy.refusal("http://api.internal.example/x") is None
    assert policy.refusal("http://10.9.9.9/") is None
    assert "not in MACHINERY_ALLOWED_TARGETS" in str(policy.refusal("http://192.168.1.1/"))
    # a name may resolve into an allowed range: only the connect-time check can tell
    assert policy.refusal("http://elsewhere.example/") is None
    names_only = OutboundPolicy(allowed=parse_rules("api.example"), denied=())
    assert "not in MACHINERY_ALLOWED_TARGETS" in str(names_only.refusal("http://other.example/"))


def test_deny_wins_over_allow_and_only_http_schemes() -> None:
    policy = OutboundPolicy(allowed=parse_rules("10.0.0.0/8"), denied=parse_rules("10.0.0.1,bad.example"))
    assert "MACHINERY_DENIED_TARGETS (10.0.0.1)" in str(policy.refusal("http://10.0.0.1/"))
    assert "bad.example is in MACHINERY_DENIED_TARGETS" in str(policy.refusal("https://bad.example/"))
    assert "only http:// and https://" in str(OutboundPolicy().refusal("file:///etc/passwd"))
    assert "only http:// and https://" in str(OutboundPolicy().refusal("gopher://127.0.0.1/"))
    assert OutboundPolicy().refusal("http://127.0.0.1:8000/") is None  # loopback stays allowed


def test_bad_rules_are_reported() -> None:
    with pytest.raises(ValueError, match="neither an IP address"):
        parse_rules("10.0.0.0/8, not a host!")

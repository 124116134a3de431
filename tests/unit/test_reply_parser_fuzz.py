"""Hypothesis over the reply parser: whatever bytes arrive, in whatever pieces, it either completes a
reply or raises ProtocolError, and what it keeps stays within its bounds."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.runtime.httpclient import MAX_HEADER_BYTES, HttpClient, ReplyParser
from machinery.runtime.outbound import CallTimedOut, ProtocolError
from tests.unit.rawhttp import RawServer, raw_server, read_request

LIMIT = 1000

_STATUS = st.sampled_from(
    [b"HTTP/1.1 200 OK", b"HTTP/1.0 404 Nope", b"HTTP/1.1 100 Continue", b"HTTP/1.1 204 x"]
)
_HEADER = st.tuples(
    st.sampled_from([b"Content-Length", b"Transfer-Encoding", b"Connection", b"X-A", b"Bad Name", b""]),
    st.one_of(st.sampled_from([b"5", b"chunked", b"close", b"-1", b"99999999999"]), st.binary(max_size=40)),
).map(lambda pair: pair[0] + b": " + pair[1])
_REPLY = st.one_of(
    st.binary(max_size=400),
    st.tuples(_STATUS, st.lists(_HEADER, max_size=8), st.binary(max_size=300)).map(
        lambda parts: parts[0] + b"\r\n" + b"".join(h + b"\r\n" for h in parts[1]) + b"\r\n" + parts[2]
    ),
)


def _feed(data: bytes, cuts: list[int], eof: bool) -> ReplyParser:
    parser = ReplyParser(LIMIT)
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    try:
        for piece in pieces:
            if piece:
                parser.feed(piece)
            if parser.complete:
                break
        if eof and not parser.complete:
            parser.feed(b"")
    except ProtocolError:
        return parser
    return parser


@settings(max_examples=400, deadline=None)
@given(_REPLY, st.lists(st.integers(min_value=0), max_size=6), st.booleans())
def test_any_bytes_in_any_pieces_end_in_a_reply_or_a_protocol_error(
    data: bytes, cuts: list[int], eof: bool
) -> None:
    parser = _feed(data, cuts, eof)
    assert len(parser.body) <= LIMIT
    if parser.complete:
        assert parser.status >= 200  # an interim 1xx reply is never taken as the final one


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=8), st.sampled_from([b"X-Long: ", b"HTTP/1.1 200 OK\r\nX: "]))
def test_oversized_header_blocks_are_refused_without_keeping_them(pieces: int, prefix: bytes) -> None:
    parser = ReplyParser(LIMIT)
    chunk = b"a" * (MAX_HEADER_BYTES // pieces + 1)
    raised = False
    try:
        parser.feed(prefix)
        for _ in range(pieces + 1):
            parser.feed(chunk)
    except ProtocolError:
        raised = True
    assert raised


def test_a_reply_that_drips_one_byte_at_a_time_times_out() -> None:
    async def drip(raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000
        for byte in reply:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.01)  # the server's pace: the client's timeout is what is tested

    async def main() -> None:
        async with raw_server(drip) as raw:
            client = HttpClient()
            try:
                await client.request("POST", raw.url, b"{}", {}, 0.3, LIMIT)
            except CallTimedOut:
                return
            finally:
                await client.close()
            raise AssertionError("the dripping reply did not time out")

    asyncio.run(main())

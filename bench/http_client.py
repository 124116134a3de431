"""Per-call cost of the outbound client against a fast loopback server, as a ratio to a direct client.

The server (a child process, so that it does not share the benchmark's GIL) answers every request on a
keep-alive connection with a fixed 48-byte JSON reply. Three clients make the same POSTs, one at a time
per connection, ``--concurrency`` connections at once, in the same run:

- ``direct``: the floor: a pre-encoded request written to an asyncio stream, the reply read with
  ``readuntil`` and ``readexactly`` (no validation, no parsing beyond the Content-Length);
- ``client``: :class:`machinery.runtime.httpclient.HttpClient` (``request``: URL, headers, parser, pool);
- ``invoker``: :meth:`machinery.runtime.tasks.TaskInvoker.invoke` on a URL resource (what a task call
  costs: identity headers, JSON in and out).

::

    python -m bench.http_client [--seconds 3] [--concurrency 1,32] [--scheme http]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPLY = b'{"message":"HELLO WORLD","n":12345,"ok":true}  '
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(REPLY)
SERVER = r"""
import asyncio, ssl, sys
REPLY = HEAD_AND_BODY
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            writer.write(REPLY)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    context = None
    if len(sys.argv) > 1:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[1], sys.argv[2])
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""

Call = Callable[[], Awaitable[None]]


async def _direct(host: str, port: int, context: ssl.SSLContext | None) -> tuple[Call, Callable[[], None]]:
    reader, writer = await asyncio.open_connection(
        host, port, ssl=context, server_hostname="localhost" if context else None
    )
    body = b'{"message":"hello world"}'
    request = (
        b"POST /upper HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        % (host.encode(), port, len(body))
    ) + body

    async def call() -> None:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.rsplit(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0])
        await reader.readexactly(length)

    return call, writer.close


async def _measure(make: Callable[[], Awaitable[Call]], concurrency: int, seconds: float) -> dict[str, float]:
    calls = [await make() for _ in range(concurrency)]
    for call in calls:  # warm up: connections open, caches filled
        await call()
    count = 0
    deadline = time.perf_counter() + seconds
    cpu_start, start = time.process_time(), time.perf_counter()

    async def loop(call: Call) -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await call()
            count += 1

    await asyncio.gather(*(loop(call) for call in calls))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "calls_per_s": count / elapsed,
        "us_per_call": elapsed / count * 1e6,
        "cpu_us_per_call": cpu / count * 1e6,
    }


async def _run(
    port: int, args: argparse.Namespace, cafile: str | None
) -> dict[str, dict[str, dict[str, float]]]:
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    host = "localhost" if context else "127.0.0.1"
    return {str(n): await _row(host, port, args, context, n) for n in args.concurrency}


async def _row(
    host: str, port: int, args: argparse.Namespace, context: ssl.SSLContext | None, concurrency: int
) -> dict[str, dict[str, float]]:
    from machinery.engine.types import InvokeTask
    from machinery.runtime import httpclient
    from machinery.runtime.tasks import CallIdentity, TaskInvoker
    from machinery.storage.memory import MemoryStorage

    url = f"{args.scheme}://{host}:{port}/upper"
    body = b'{"message":"hello world"}'
    closers: list[Callable[[], None]] = []
    if hasattr(httpclient, "HttpClient"):
        client = httpclient.HttpClient(ssl_context=context)
        invoker = TaskInvoker(MemoryStorage(), client=httpclient.HttpClient(ssl_context=context))

        async def request() -> None:
            await client.request("POST", url, body, {}, 10.0, 1 << 20)
    else:  # the hand-written client this replaced (http only), for the "before" figure
        client = httpclient.FastHttpClient()  # type: ignore[attr-defined]
        invoker = TaskInvoker(MemoryStorage())

        async def request() -> None:
            await client.request("POST", url, body, {}, 10.0)

    effect = InvokeTask("Upper", url, {"message": "hello world"}, attempt=0, timeout_seconds=10)
    identity = CallIdentity("0e0a7c1e-bench", "0e0a7c1e-bench", worker="bench:1:abc")

    async def invoke() -> None:
        outcome = await invoker.invoke(effect, identity)
        assert outcome.output is not None, outcome

    async def direct() -> Call:
        call, close = await _direct(host, port, context)
        closers.append(close)
        return call

    async def pooled() -> Call:
        return request

    async def invoked() -> Call:
        return invoke

    row = {}
    for name, make in (("direct", direct), ("client", pooled), ("invoker", invoked)):
        row[name] = await _measure(make, concurrency, args.seconds)
    await client.close()
    await invoker.close()
    for close in closers:
        close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_client", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 32])
    parser.add_argument("--scheme", choices=("http", "https"), default="http")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    code = SERVER.replace("HEAD_AND_BODY", repr(HEAD + REPLY))
    with tempfile.TemporaryDirectory() as tmp:
        server_args: list[str] = []
        cafile = None
        if args.scheme == "https":
            import trustme

            ca = trustme.CA()
            cert = ca.issue_cert("localhost")
            key_file, cert_file, cafile = (str(Path(tmp) / n) for n in ("key.pem", "cert.pem", "ca.pem"))
            cert.private_key_pem.write_to_path(key_file)
            cert.cert_chain_pems[0].write_to_path(cert_file)
            ca.cert_pem.write_to_path(cafile)
            server_args = [cert_file, key_file]
        server = subprocess.Popen(
            [sys.executable, "-c", code, *server_args], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            results = asyncio.run(_run(port, args, cafile))
        finally:
            server.terminate()
            server.wait()
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"scheme": args.scheme, "load_average": load, "results": results}, indent=2))
        return
    print(f"{args.scheme}, {args.seconds:g} s per cell, load average {load:.2f}")
    print(f"{'conc':>5} {'client':>8} {'calls/s':>9} {'µs/call':>8} {'cpu µs':>7} {'x direct':>9}")
    for concurrency, row in results.items():
        base = row["direct"]["us_per_call"]
        for name, figures in row.items():
            print(
                f"{concurrency:>5} {name:>8} {figures['calls_per_s']:>9.0f} {figures['us_per_call']:>8.1f}"
                f" {figures['cpu_us_per_call']:>7.1f} {figures['us_per_call'] / base:>9.2f}"
            )


if __name__ == "__main__":
    main()

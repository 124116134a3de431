"""A TCP proxy on loopback that delays every chunk it forwards: a distant database, on one machine.

Each chunk is forwarded ``--rtt-ms / 2`` after it arrived, in both directions, so that a request and
its answer take about ``--rtt-ms`` more (more in practice: the standard library's loop wakes up late
for sub-millisecond timers; ``SELECT 1`` through ``--rtt-ms 0.5`` took 2.6 ms on a 2-core machine).
Used to measure machinery against a PostgreSQL server that is not on the same host::

    python -m bench.delay_proxy --listen 55432 --target 127.0.0.1:5432 --rtt-ms 0.5 &
    python -m bench.seed_workflow --database-url postgresql://postgres@127.0.0.1:55432/DB --clients 32
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

HOST = "127.0.0.1"


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds late, until the end of the stream."""
    loop = asyncio.get_running_loop()
    try:
        while chunk := await reader.read(65536):
            loop.call_later(delay, writer.write, chunk)
    except ConnectionError:
        pass
    finally:
        await asyncio.sleep(delay)  # what was read before the end still goes out
        writer.close()


async def serve(listen: int, target: tuple[str, int], delay: float) -> None:
    async def connection(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            forward(client_reader, server_writer, delay), forward(server_reader, client_writer, delay)
        )

    server = await asyncio.start_server(connection, HOST, listen)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.delay_proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True, help="port to listen on (loopback)")
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--rtt-ms", type=float, default=0.5, help="delay added per round trip")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    with contextlib.suppress(KeyboardInterrupt):
        # The standard library's loop: uvloop rounds timers to whole milliseconds.
        asyncio.run(serve(args.listen, (host or HOST, int(port)), args.rtt_ms / 2000.0))


if __name__ == "__main__":
    main()

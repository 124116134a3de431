"""``machinery``: serve the API (with a worker), run workers alone, migrate storage."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from machinery.config import SETTINGS


def _settings_help() -> str:
    lines = ["settings (environment variables):"]
    for name, (default, text) in SETTINGS.items():
        lines.append(f"  MACHINERY_{name:<24} {text} (default: {default!r})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="machinery",
        description="A durable workflow orchestrator for HTTP services.",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default=os.environ.get("MACHINERY_LOG_LEVEL", "INFO"))
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the API and a worker",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default=os.environ.get("MACHINERY_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("MACHINERY_PORT", "5000")))
    serve.add_argument("--database-url", help="overrides MACHINERY_DATABASE_URL")
    serve.add_argument("--threads", type=int, default=int(os.environ.get("MACHINERY_THREADS", "48")))
    serve.add_argument("--no-worker", action="store_true", help="serve the API only")
    worker = commands.add_parser(
        "worker",
        help="run a worker only (scale-out: any number share one PostgreSQL database)",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument("--database-url", help="overrides MACHINERY_DATABASE_URL")
    worker.add_argument(
        "--concurrency", type=int, help="work items run at once (overrides MACHINERY_MAX_IN_FLIGHT)"
    )
    migrate = commands.add_parser("migrate", help="create or upgrade the storage schema")
    migrate.add_argument("--database-url")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if getattr(args, "database_url", None):
        os.environ["MACHINERY_DATABASE_URL"] = args.database_url
    if args.command == "migrate":
        from machinery.storage import open_storage

        open_storage(os.environ.get("MACHINERY_DATABASE_URL", SETTINGS["DATABASE_URL"][0])).close()
        print("schema is up to date")
        return 0
    if args.command == "worker":
        return _work(args)
    return _serve(args)


def _work(args: argparse.Namespace) -> int:
    """Run a worker in the foreground until SIGTERM or SIGINT, then release its leases."""
    import asyncio

    from flask import Config

    from machinery.config import DEFAULTS, worker_settings
    from machinery.runtime.worker import Worker
    from machinery.storage import open_storage

    # The same settings, read the same way, as the server's app factory.
    config = Config(os.getcwd())
    config.from_mapping(DEFAULTS)
    config.from_prefixed_env("MACHINERY")
    if args.concurrency is not None:
        if args.concurrency < 1:
            raise SystemExit("machinery worker: --concurrency must be at least 1")
        config["MAX_IN_FLIGHT"] = args.concurrency
    storage = open_storage(
        str(config["DATABASE_URL"]),
        pool_min_size=int(config["PG_POOL_MIN"]),
        pool_max_size=int(config["PG_POOL_MAX"]),
    )
    worker = Worker(storage, worker_settings(config))

    def shut_down(signum: int, _frame: object) -> None:
        logging.getLogger("machinery").info("signal %s: stopping the worker", signum)
        worker.stop(timeout=0)

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    logging.getLogger("machinery").info("worker %s running", worker.owner)
    try:
        asyncio.run(worker.run())
    finally:
        storage.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    from waitress.server import create_server

    from machinery.api import create_app, orchestrator_of

    overrides = {"RUN_WORKER": False} if args.no_worker else {}
    app = create_app(overrides or None)
    server = create_server(
        app, host=args.host, port=args.port, threads=args.threads, ident="machinery", channel_timeout=3600
    )
    logging.getLogger("machinery").info("serving on http://%s:%s", args.host, args.port)

    def shut_down(signum: int, _frame: object) -> None:
        # Leave the serving loop from the main thread at a safe point; closing the server from inside
        # the handler would pull its file descriptors from under the loop.
        raise _Stopping

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    try:
        server.run()
    except _Stopping:
        pass
    finally:
        server.close()
        orchestrator_of(app).stop()
    return 0


class _Stopping(SystemExit):
    """Raised by the SIGTERM/SIGINT handler to end ``machinery serve``.

    A ``SystemExit`` because waitress's loop re-raises only those (and ``KeyboardInterrupt``): any other
    exception raised while a connection's handler runs would be logged and swallowed.
    """

"""The server commands: ``machinery serve`` (the API with a worker), ``worker``, ``migrate``.

They import the server's modules inside their functions, so that the client commands start without them.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
from typing import Any

import click

from machinery.cli.base import SettingsCommand

logger = logging.getLogger(__name__)

database_url_option = click.option(
    "--database-url", metavar="URL", help="storage to use (overrides MACHINERY_DATABASE_URL)"
)


def _use_database_url(database_url: str | None) -> None:
    # The app factory and the worker read their settings from the environment, as a deployment sets them.
    if database_url:
        os.environ["MACHINERY_DATABASE_URL"] = database_url


@click.command(cls=SettingsCommand)
@click.option("--host", envvar="MACHINERY_HOST", show_envvar=True, default="127.0.0.1", show_default=True)
@click.option(
    "--port", envvar="MACHINERY_PORT", show_envvar=True, type=click.IntRange(0, 65535), default=5000,
    show_default=True,
)  # fmt: skip
@database_url_option
@click.option(
    "--threads", envvar="MACHINERY_THREADS", show_envvar=True, type=click.IntRange(min=1), default=48,
    show_default=True, help="HTTP request threads",
)  # fmt: skip
@click.option("--no-worker", is_flag=True, help="serve the API only (workers run as `machinery worker`)")
@click.option(
    "--insecure", is_flag=True,
    help="serve beyond loopback without any API token (anyone who reaches the port can do anything)",
)  # fmt: skip
@click.option(
    "--processes", envvar="MACHINERY_PROCESSES", show_envvar=True, type=click.IntRange(min=1),
    help="server processes, each with the API and a worker, sharing the port and the database "
    "[default: the number of cores; 1 for memory://]",
)  # fmt: skip
@click.option(
    "--dev", is_flag=True,
    help="Flask's development server, in debug mode (one process): restarts when the code changes",
)  # fmt: skip
def serve(
    host: str,
    port: int,
    database_url: str | None,
    threads: int,
    no_worker: bool,
    insecure: bool,
    processes: int | None,
    dev: bool,
) -> None:
    """Run the API and a worker.

    Without any API token (machinery tokens create) the API admits loopback callers only, so serving on
    another address (--host 0.0.0.0) is refused unless --insecure is given.
    """
    _use_database_url(database_url)
    count = 1 if dev else _process_count(processes, os.environ.get("MACHINERY_DATABASE_URL", ""))
    if count > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every process records its metrics into one directory that a scrape of any of them sums
        # (prometheus_client's multiprocess mode): chosen before prometheus_client is first imported. A
        # directory set by the user may be shared with other servers of the host: it is used as it is.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="machinery-metrics-")

    from machinery.api import create_app, orchestrator_of
    from machinery.api.http_server import create_http_server
    from machinery.telemetry import metrics, tracing

    if count == 1:
        # Tracing may start an exporter thread, which a fork would not carry: children configure their own.
        tracing.configure_from_environment()
    overrides: dict[str, object] = {"START_WORKER": False}
    if no_worker:
        overrides["RUN_WORKER"] = False
    if insecure:
        overrides["INSECURE"] = True
    if dev:
        _serve_development(host, port, overrides)
        return
    try:
        app = create_app(overrides)
    except ValueError as exc:  # a setting that is not one (config.worker_settings names it)
        raise click.ClickException(str(exc)) from None
    _refuse_an_open_network(app, host)
    if count == 1:
        server = create_http_server(
            app, host=host, port=port, threads=threads, ident="machinery", channel_timeout=3600
        )
        logging.getLogger("machinery").info("serving on http://%s:%s", host, port)
        _run_server(app, server)
        return
    from machinery.cli import supervisor

    # The supervisor's app voided the leases of a killed predecessor (create_app); the children must not
    # void each other's, and start nothing of theirs before fork.
    orchestrator_of(app).storage.close()
    del app
    listener = supervisor.listen(host, port)
    logging.getLogger("machinery").info("serving on http://%s:%s", host, listener.getsockname()[1])
    overrides["RELEASE_LEASES_ON_START"] = False

    def child(_index: int) -> None:
        tracing.configure_from_environment()
        served = create_app(overrides)
        server = create_http_server(
            served, sockets=[listener], threads=threads, ident="machinery", channel_timeout=3600
        )
        _run_server(served, server)

    status = supervisor.supervise(count, child, on_exit=metrics.process_exited)
    if status:
        raise SystemExit(status)


def _refuse_an_open_network(app: Any, host: str) -> None:
    """Refuse to serve beyond loopback while no API token exists, unless ``--insecure``."""
    from machinery.api import orchestrator_of
    from machinery.auth import gate_of
    from machinery.auth.check import binds_loopback_only

    gate = gate_of(app)
    if not binds_loopback_only(host) and not gate.has_tokens():
        if not gate.settings.insecure:
            orchestrator_of(app).storage.close()
            raise click.ClickException(
                f"refusing to serve on {host} without an API token: anyone who can reach the port could "
                "register services and run workflows. Create a token first (machinery tokens create --name "
                "NAME --scope admin), or pass --insecure to serve unauthenticated on a network you trust."
            )
        logger.warning("serving on %s with no API token (--insecure): every caller can do anything", host)


def _serve_development(host: str, port: int, overrides: dict[str, object]) -> None:
    """``serve --dev`` (what ``./run_app`` runs): Werkzeug's development server with its reloader.

    The reloader's first process only watches the source files and starts the serving process again when
    one changes; only that serving process creates the app (and its worker), so that one worker, not two,
    owns the database. Werkzeug's interactive debugger stays off: the API answers every error as JSON
    (the traceback goes to the log), so it would never show, and it would run code for whoever reaches it.
    """
    import atexit

    from flask.cli import show_server_banner
    from werkzeug.serving import is_running_from_reloader, run_simple

    from machinery.api import create_app, orchestrator_of

    if not is_running_from_reloader():
        show_server_banner(True, "machinery.api:create_app")
        run_simple(host, port, _watcher_only, use_reloader=True, use_debugger=False, threaded=True)
        return
    app = create_app({**overrides, "DEBUG": True})
    _refuse_an_open_network(app, host)
    orchestrator_of(app).start()
    atexit.register(orchestrator_of(app).stop)
    logging.getLogger("machinery").info("serving on http://%s:%s (development server)", host, port)
    run_simple(host, port, app, use_reloader=True, use_debugger=False, threaded=True)


def _watcher_only(_environ: object, _start_response: object) -> list[bytes]:
    raise RuntimeError("the reloader's watching process serves no request")


def _process_count(requested: int | None, database_url: str) -> int:
    """``--processes``, or one per core; a ``memory://`` database lives in one process only."""
    if database_url.startswith(("memory:", "mongomock:")):
        if requested not in (None, 1):
            logger.warning("%s lives in one process: serving with one, not %s", database_url, requested)
        return 1
    return requested or os.cpu_count() or 1


def _run_server(app: Any, server: Any) -> None:
    """Start the app's worker, serve until SIGTERM or SIGINT, then stop both."""
    from machinery.api import orchestrator_of
    from machinery.telemetry import tracing

    orchestrator_of(app).start()

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
        tracing.uninstall()


class _Stopping(SystemExit):
    """Raised by the SIGTERM/SIGINT handler to end ``machinery serve``.

    A ``SystemExit`` because waitress's loop re-raises only those (and ``KeyboardInterrupt``): any other
    exception raised while a connection's handler runs would be logged and swallowed.
    """


@click.command(cls=SettingsCommand)
@database_url_option
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="work items run at once (overrides MACHINERY_MAX_IN_FLIGHT)",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="serve this worker's /metrics on this port (overrides MACHINERY_METRICS_PORT; 0: none)",
)
def worker(database_url: str | None, concurrency: int | None, metrics_port: int | None) -> None:
    """Run a worker only (scale-out: any number share one PostgreSQL database).

    It runs in the foreground until SIGTERM or SIGINT, then releases its leases. With
    ``--metrics-port`` it serves its own metrics (task calls, commits, executions it finished) for
    Prometheus to scrape; the database's gauges come from the API servers' ``/metrics``.
    """
    from flask import Config

    from machinery.config import DEFAULTS, worker_settings
    from machinery.runtime import loops
    from machinery.runtime.worker import Worker
    from machinery.storage import open_storage
    from machinery.telemetry import metrics, tracing

    _use_database_url(database_url)
    tracing.configure_from_environment()
    # The same settings, read the same way, as the server's app factory.
    config = Config(os.getcwd())
    config.from_mapping(DEFAULTS)
    config.from_prefixed_env("MACHINERY")
    if concurrency is not None:
        config["MAX_IN_FLIGHT"] = concurrency
    try:
        settings = worker_settings(config)
    except ValueError as exc:  # a setting that is not one (worker_settings names it)
        raise click.ClickException(str(exc)) from None
    storage = open_storage(
        str(config["DATABASE_URL"]),
        pool_min_size=int(config["PG_POOL_MIN"]),
        pool_max_size=int(config["PG_POOL_MAX"]),
    )
    running = Worker(storage, settings)
    metrics.configure(int(config["METRICS_MAX_LABEL_VALUES"]))
    port = int(config["METRICS_PORT"]) if metrics_port is None else metrics_port
    listener = None
    if port:
        host = str(config["METRICS_HOST"])
        listener = metrics.serve_metrics(host, port)
        logging.getLogger("machinery").info("metrics on http://%s:%s/metrics", host, port)

    def shut_down(signum: int, _frame: object) -> None:
        logging.getLogger("machinery").info("signal %s: stopping the worker", signum)
        running.stop(timeout=0)

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    logging.getLogger("machinery").info("worker %s running", running.owner)
    try:
        loops.run(running.run(), settings.event_loop)
    finally:
        if listener is not None:
            listener.shutdown()
        storage.close()
        tracing.uninstall()


@click.command()
@database_url_option
def migrate(database_url: str | None) -> None:
    """Create or upgrade the storage schema."""
    from machinery.config import SETTINGS
    from machinery.storage import open_storage

    _use_database_url(database_url)
    open_storage(os.environ.get("MACHINERY_DATABASE_URL", SETTINGS["DATABASE_URL"][0])).close()
    click.echo("schema is up to date")

"""Run the README's example end to end with one command.

``python examples/demo.py`` starts the three example services on free loopback ports, starts a machinery
server on a throw-away SQLite database, registers the services and the ``process-text`` workflow, sends
``event-text.json`` and prints the event's output::

    {"message": "! GNINROM EHT NI ESIR LLIW NUS EHT", "space_count": 7}

With ``--server URL`` it talks to an already running server instead (the services still run in this
process, and registering them updates any existing services of the same names). Only the standard library
is used for HTTP, so the demo doubles as an example of a plain client.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, TextIO

REPOSITORY = Path(__file__).resolve().parent.parent
DEFINITIONS = REPOSITORY / "examples" / "definitions"

if __package__ in (None, ""):
    # Run as a script: make `examples` importable the way it is from the repository root.
    sys.path.insert(0, str(REPOSITORY))

from examples.services.textservices import KINDS, serve, stop  # noqa: E402

#: How long a request to machinery may take; the event is processed while the request waits.
REQUEST_TIMEOUT_SECONDS = 60.0
#: How long the server has to answer its health check after being started.
STARTUP_DEADLINE_SECONDS = 30.0
#: Pause between two health checks while the server starts.
STARTUP_POLL_SECONDS = 0.05


class DemoError(Exception):
    """A step of the demo failed; the message says which and what the server answered."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def request(method: str, url: str, document: Any = None) -> tuple[int, Any]:
    """Send ``document`` as JSON and return the status and the decoded JSON reply (``None`` if empty).

    Error statuses are returned, not raised, so that callers can report the server's error body.
    """
    data = None if document is None else json.dumps(document).encode()
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    prepared = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(prepared, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            status, body = error.code, error.read()
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, body.decode(errors="replace")


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``GET /healthcheck`` until it answers 204.

    :param base_url: the server, e.g. ``http://127.0.0.1:5000``.
    :param process: the server's process, if we started it: its early exit ends the wait.
    :raises DemoError: when the deadline passes or the process exits first.
    """
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while True:
        if process is not None and process.poll() is not None:
            raise DemoError(f"machinery exited with status {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{base_url}/healthcheck", timeout=1.0) as response:
                if response.status == 204:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise DemoError(f"{base_url}/healthcheck did not answer 204 within {STARTUP_DEADLINE_SECONDS}s")
        time.sleep(STARTUP_POLL_SECONDS)


def spawn_machinery(
    database_url: str,
    log: IO[Any],
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    settings: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m machinery serve`` and wait until it is healthy; the caller stops it.

    :param database_url: passed as ``--database-url``.
    :param log: receives the server's stdout and stderr.
    :param port: the port to serve on (default: a free one).
    :param settings: extra environment (``MACHINERY_*`` settings) for the server.
    :param args: more ``serve`` options (``--processes 1``...).
    :returns: the process and the server's base URL.
    """
    port = free_port(host) if port is None else port
    command = [
        sys.executable,
        "-m",
        "machinery",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--database-url",
        database_url,
        *args,
    ]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(settings or {})}
    process = subprocess.Popen(command, cwd=REPOSITORY, stdout=log, stderr=subprocess.STDOUT, env=environment)
    base_url = f"http://{host}:{port}"
    try:
        wait_until_healthy(base_url, process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process, base_url


@contextmanager
def machinery_process(
    database_url: str, log: TextIO, host: str = "127.0.0.1", settings: Mapping[str, str] | None = None
) -> Iterator[str]:
    """:func:`spawn_machinery` on a free port, stopped on exit; yields the server's base URL."""
    process, base_url = spawn_machinery(database_url, log, host=host, settings=settings)
    try:
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def text_services(host: str = "127.0.0.1") -> Iterator[dict[str, str]]:
    """Run the three example services on free ports; yields their base URLs by name."""
    with ExitStack() as stack:
        urls: dict[str, str] = {}
        for kind in KINDS:
            server = serve(kind, host, 0)
            stack.callback(stop, server)
            urls[kind] = server.url
        yield urls


def load_definition(name: str) -> Any:
    """Read one file of ``examples/definitions``."""
    return json.loads((DEFINITIONS / name).read_text())


def expect(status: int, body: Any, wanted: int, step: str) -> Any:
    """Return ``body`` if ``status`` is ``wanted``; otherwise fail the demo naming ``step``."""
    if status != wanted:
        raise DemoError(f"{step}: expected HTTP {wanted}, got {status}: {json.dumps(body)}")
    return body


def run_example(server: str, service_urls: dict[str, str], *, asl: bool = False) -> dict[str, Any]:
    """Register the services and the workflow on ``server``, send the example event, return its output.

    :param server: machinery's base URL.
    :param service_urls: base URL of each example service by name.
    :param asl: use the Amazon States Language form of the workflow.
    :returns: the event's output, keys in the order of the workflow's declared outputs.
    """
    for kind, url in service_urls.items():
        service = load_definition(f"service-{kind}.json")
        service["address"] = f"{url}/event"
        expect(*request("POST", f"{server}/s", service), 201, f"registering the service {kind}")

    simple = load_definition("workflow-process-text.json")
    workflow = load_definition("workflow-process-text-asl.json") if asl else simple
    expect(*request("POST", f"{server}/w", workflow), 201, f"creating the workflow {workflow['name']}")

    event = load_definition("event-text.json")
    record = expect(*request("POST", f"{server}/e/{workflow['name']}", event), 201, "sending the event")
    if record.get("status") != "SUCCEEDED":
        raise DemoError(f"the event did not succeed: {json.dumps(record)}")
    output = record["output"]
    return {declared["name"]: output[declared["name"]] for declared in simple["outputs"]}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; print the output, or the failing step on standard error."""
    parser = argparse.ArgumentParser(prog="python examples/demo.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        metavar="URL",
        help="use this running machinery (e.g. http://127.0.0.1:5000) instead of starting one",
    )
    parser.add_argument("--asl", action="store_true", help="use the Amazon States Language workflow")
    args = parser.parse_args(argv)

    log_path: Path | None = None
    with ExitStack() as stack:
        try:
            service_urls = stack.enter_context(text_services())
            if args.server:
                server = args.server.rstrip("/")
                wait_until_healthy(server)
            else:
                directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="machinery-demo-")))
                log_path = directory / "server.log"
                log = stack.enter_context(log_path.open("w"))
                database_url = f"sqlite:///{directory / 'demo.db'}"
                server = stack.enter_context(machinery_process(database_url, log))
            output = run_example(server, service_urls, asl=args.asl)
        except DemoError as error:
            print(f"demo failed: {error}", file=sys.stderr)
            if log_path is not None:
                # Read before the temporary directory goes away with the stack.
                print(f"--- server log\n{log_path.read_text()[-4000:]}", file=sys.stderr)
            return 1
    print(json.dumps(output), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

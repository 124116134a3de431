"""The example text services: ``upper``, ``reverse`` and ``space-counter``.

They behave like the services of the original proof of concept: each answers ``POST /event`` with a JSON
document ``{"message": str}`` and replies with its outputs only (machinery merges the reply over the
document). They are built on :class:`http.server.ThreadingHTTPServer` rather than Flask because the
benchmarks drive them with many concurrent keep-alive clients: HTTP/1.1, ``Content-Length`` on every
response, one ``send`` per response and Nagle disabled, so that no request waits on a delayed ACK.

Run all three from the repository root::

    python -m examples.services.textservices --host 127.0.0.1 --base-port 5001
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

#: Largest request body accepted, in bytes; the examples only ever see short texts.
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class TextService:
    """What one example service is called, what it promises and how it computes its reply.

    :param name: the name the service is registered under in machinery.
    :param description: a sentence for ``GET /infos``.
    :param input_description: the description of the ``message`` input.
    :param output_name: the single key of the reply.
    :param output_type: the type of that key, as written in the definitions (``string``, ``int``).
    :param output_description: the description of that output.
    :param transform: computes the output value from the ``message``.
    """

    name: str
    description: str
    input_description: str
    output_name: str
    output_type: str
    output_description: str
    transform: Callable[[str], Any]

    def infos(self) -> dict[str, Any]:
        """Describe the service the way its definition in ``examples/definitions`` does."""
        return {
            "name": self.name,
            "description": self.description,
            "inputs": [{"name": "message", "type": "string", "description": self.input_description}],
            "outputs": [
                {"name": self.output_name, "type": self.output_type, "description": self.output_description}
            ],
        }

    def reply(self, message: str) -> dict[str, Any]:
        """Compute the reply document for ``message``."""
        return {self.output_name: self.transform(message)}


SERVICES: dict[str, TextService] = {
    service.name: service
    for service in (
        TextService(
            name="upper",
            description="Transforms a text into uppercase.",
            input_description="The text to transform",
            output_name="message",
            output_type="string",
            output_description="The transformed text, in uppercase",
            transform=str.upper,
        ),
        TextService(
            name="reverse",
            description="Reverses a text.",
            input_description="The text to transform",
            output_name="message",
            output_type="string",
            output_description="The reversed text",
            transform=lambda message: message[::-1],
        ),
        TextService(
            name="space-counter",
            description="Counts the spaces in a text.",
            input_description="The text to analyze",
            output_name="space_count",
            output_type="int",
            output_description="The number of spaces in the text",
            transform=lambda message: message.count(" "),
        ),
    )
}

#: The order in which the CLI assigns consecutive ports.
KINDS: tuple[str, ...] = ("upper", "reverse", "space-counter")


class _BadRequest(Exception):
    """A request this service refuses; carries the status and the JSON error body."""

    def __init__(self, status: HTTPStatus, body: dict[str, Any], *, close: bool = False) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body
        self.close = close


def _error(status: HTTPStatus, code: str, message: str, *, field: str | None = None) -> _BadRequest:
    body: dict[str, Any] = {"error": code, "message": message}
    if field is not None:
        body["errors"] = [{"field": field, "message": message}]
    return _BadRequest(status, body)


def _too_large() -> _BadRequest:
    message = f"the body must be at most {MAX_BODY_BYTES} bytes"
    return _BadRequest(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "payload_too_large", "message": message}, close=True
    )


def _is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class TextServiceHandler(BaseHTTPRequestHandler):
    """Serves one :class:`TextService`; subclassed per server with ``service`` set."""

    service: ClassVar[TextService]
    protocol_version = "HTTP/1.1"
    server_version = "machinery-example"
    sys_version = ""
    # Buffer the status line, headers and body so they leave in one segment when the base class flushes
    # at the end of each request; with Nagle off this keeps keep-alive latency at a round trip.
    wbufsize = io.DEFAULT_BUFFER_SIZE
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        """Name the server without the Python version."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: a line per request would dominate the benchmarks."""

    def do_GET(self) -> None:
        """``GET /healthcheck`` and ``GET /infos``."""
        if self.path == "/healthcheck":
            self._send(HTTPStatus.NO_CONTENT, None)
        elif self.path == "/infos":
            self._send(HTTPStatus.OK, self.service.infos())
        elif self.path == "/event":
            self._method_not_allowed("POST")
        else:
            self._not_found()

    def do_POST(self) -> None:
        """``POST /event``: validate ``{"message": str}`` and reply with the service's output."""
        try:
            body = self._read_body()
            if self.path != "/event":
                if self.path in ("/healthcheck", "/infos"):
                    self._method_not_allowed("GET")
                else:
                    self._not_found()
                return
            message = self._parse_message(body)
        except _BadRequest as refused:
            if refused.close:
                self.close_connection = True
            self._send(refused.status, refused.body)
            return
        self._send(HTTPStatus.OK, self.service.reply(message))

    def do_PUT(self) -> None:
        """Refuse other methods with a JSON body, keeping the connection usable."""
        self._refuse_method()

    do_DELETE = do_PATCH = do_PUT

    def _refuse_method(self) -> None:
        try:
            self._read_body()
        except _BadRequest as refused:
            self.close_connection = True
            self._send(refused.status, refused.body)
            return
        allowed = {"/event": "POST", "/healthcheck": "GET", "/infos": "GET"}.get(self.path)
        if allowed is None:
            self._not_found()
        else:
            self._method_not_allowed(allowed)

    def _read_body(self) -> bytes:
        # The body is always drained, even for a request about to be refused, so that the next request
        # on this keep-alive connection starts at the right byte.
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            raise _BadRequest(
                HTTPStatus.BAD_REQUEST,
                {"error": "bad_request", "message": "Content-Length is not an integer"},
                close=True,
            ) from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise _too_large()
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(
                    HTTPStatus.BAD_REQUEST,
                    {"error": "bad_request", "message": "malformed chunked body"},
                    close=True,
                ) from None
            if size == 0:
                # Skip the trailers up to the blank line that ends the body.
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _too_large()
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _parse_message(self, body: bytes) -> str:
        if not _is_json_media_type(self.headers.get("Content-Type")):
            raise _error(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            )
        try:
            document = json.loads(body)
        except ValueError:
            raise _error(HTTPStatus.BAD_REQUEST, "bad_request", "the body is not valid JSON") from None
        if not isinstance(document, dict):
            raise _error(HTTPStatus.BAD_REQUEST, "bad_request", "the body must be a JSON object", field="")
        message = document.get("message")
        if not isinstance(message, str):
            problem = "is required" if "message" not in document else "must be a string"
            raise _error(HTTPStatus.BAD_REQUEST, "bad_request", f"message {problem}", field="message")
        return message

    def _not_found(self) -> None:
        self._send(HTTPStatus.NOT_FOUND, {"error": "not_found", "message": f"no route {self.path}"})

    def _method_not_allowed(self, allowed: str) -> None:
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED,
            {"error": "method_not_allowed", "message": f"{self.path} only answers {allowed}"},
            extra_headers={"Allow": allowed},
        )

    def _send(
        self,
        status: HTTPStatus,
        document: dict[str, Any] | None,
        *,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        payload = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        if document is not None:
            self.send_header("Content-Type", "application/json")
        if status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Length", str(len(payload)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if payload:
            self.wfile.write(payload)


class TextServiceServer(ThreadingHTTPServer):
    """A threading HTTP server with a backlog sized for the benchmarks' concurrent clients."""

    daemon_threads = True
    request_queue_size = 128

    @property
    def url(self) -> str:
        """The base URL of the server, e.g. ``http://127.0.0.1:5001``."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def serve(kind: str, host: str, port: int) -> TextServiceServer:
    """Start the service ``kind`` on ``host:port`` in a background daemon thread.

    :param kind: ``upper``, ``reverse`` or ``space-counter``.
    :param host: the address to bind.
    :param port: the port to bind; ``0`` picks a free one (read it back from ``server.server_address``).
    :returns: the running server; stop it with ``shutdown()`` then ``server_close()``.
    :raises KeyError: for an unknown ``kind``.
    """
    service = SERVICES[kind]
    handler_name = f"{service.name.title().replace('-', '')}Handler"
    handler = type(handler_name, (TextServiceHandler,), {"service": service})
    server = TextServiceServer((host, port), handler)
    # A short poll interval makes shutdown() return promptly; tests start and stop these often.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"example-{kind}", daemon=True
    )
    thread.start()
    return server


def stop(server: ThreadingHTTPServer) -> None:
    """Stop a server started by :func:`serve` and release its socket."""
    server.shutdown()
    server.server_close()


def main(argv: Sequence[str] | None = None) -> int:
    """Start the three services on consecutive ports and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.services.textservices",
        description="Serve the example services upper, reverse and space-counter on consecutive ports.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--base-port",
        type=int,
        default=5001,
        help="port of upper; reverse and space-counter take the next two (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    servers = [serve(kind, args.host, args.base_port + offset) for offset, kind in enumerate(KINDS)]
    for kind, server in zip(KINDS, servers, strict=True):
        print(f"{kind}: {server.url}/event", flush=True)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())

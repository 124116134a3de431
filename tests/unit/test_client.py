"""The client's side of the wire, against a loopback server that answers what each test scripts: the
headers it sends, how it reads problem details in either shape, and what it does with a reply that is not
the API's."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from machinery.client import (
    ApiError,
    AuthenticationError,
    Client,
    ConflictError,
    NotFoundError,
    ProtocolError,
    ServerError,
)
from machinery.errors import FieldIssue


@dataclass
class Scripted:
    """The next reply of the loopback server, and what it received."""

    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def scripted() -> Iterator[tuple[Scripted, str]]:
    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            script.requests.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
            self.send_response(script.status)
            self.send_header("Content-Type", script.content_type)
            self.send_header("Content-Length", str(len(script.body)))
            self.end_headers()
            self.wfile.write(script.body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_token_is_sent_as_a_bearer_credential(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.body = b'{"services": []}'
    with Client(url, token="s3cret-token") as client:
        assert client.list_services() == []
    _method, path, headers, _body = script.requests[-1]
    assert path == "/s"
    assert headers["Authorization"] == "Bearer s3cret-token"
    assert "application/problem+json" in headers["Accept"]


def test_no_token_no_authorization_header(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.body = b'{"workflows": []}'
    with Client(url) as client:
        client.list_workflows()
    assert "Authorization" not in script.requests[-1][2]


def test_names_are_one_path_segment_and_empty_arguments_are_left_out(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.body = b'{"events": [], "next_cursor": null}'
    with Client(url + "/prefix/") as client:
        client.list_events(workflow="a/b?c", status=None)
        script.status, script.body = 404, b'{"error": "not_found", "message": "no workflow"}'
        with pytest.raises(NotFoundError):
            client.get_workflow("a/b?c", version=2)
    assert script.requests[0][1] == "/prefix/e?workflow=a%2Fb%3Fc"
    assert script.requests[1][1] == "/prefix/w/a%2Fb%3Fc?version=2"


def test_problem_details_in_the_rfc_9457_shape_with_machinery_members(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.status, script.content_type = 409, "application/problem+json"
    script.body = json.dumps(
        {
            "type": "https://machinery.dev/problems/invalid-definition",
            "title": "Invalid definition",
            "status": 409,
            "detail": "invalid workflow",
            "instance": "/w",
            "error": "invalid_definition",
            "message": "invalid workflow",
            "errors": [{"field": "definition.StartAt", "message": "is required"}],
            "limit": 3,
        }
    ).encode()
    with Client(url) as client, pytest.raises(ConflictError) as caught:
        client.create_workflow({"name": "x"})
    problem = caught.value.problem
    assert (problem.type, problem.title, problem.detail, problem.instance) == (
        "https://machinery.dev/problems/invalid-definition",
        "Invalid definition",
        "invalid workflow",
        "/w",
    )
    assert caught.value.code == "invalid_definition" and caught.value.status == 409
    assert caught.value.issues == [FieldIssue("definition.StartAt", "is required")]
    assert problem.extensions == {"limit": 3}
    assert str(caught.value) == "409 Invalid definition: invalid workflow\n  definition.StartAt: is required"


def test_problem_details_in_the_older_shape(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.status = 401
    script.body = b'{"error": "unauthorized", "message": "a token is required"}'
    with Client(url) as client, pytest.raises(AuthenticationError) as caught:
        client.list_services()
    assert (caught.value.problem.title, caught.value.problem.detail) == (
        "unauthorized",
        "a token is required",
    )
    assert caught.value.problem.type == "about:blank" and caught.value.issues == []


def test_an_error_page_that_is_not_json(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.status, script.content_type, script.body = 502, "text/html", b"<h1>Bad gateway</h1>"
    with Client(url) as client, pytest.raises(ServerError) as caught:
        client.get_event("x")
    assert caught.value.status == 502 and "Bad gateway" in caught.value.problem.detail
    assert isinstance(caught.value, ApiError)


def test_a_success_that_is_not_the_api_s_json(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.content_type, script.body = "text/html", b"<html>a proxy's page</html>"
    with Client(url) as client, pytest.raises(ProtocolError):
        client.list_services()
    script.content_type, script.body = "application/json", b'{"unexpected": true}'
    with Client(url) as client, pytest.raises(ProtocolError):
        client.list_services()


@pytest.mark.parametrize("url", ["127.0.0.1:5000", "ftp://host", "http://", "file:///etc/passwd"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        Client(url)


@pytest.mark.parametrize("token", ["", "two words", "line\r\nX-Injected: 1", "tab\t"])
def test_a_token_that_would_break_the_header_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="token"):
        Client("http://127.0.0.1:5000", token=token)

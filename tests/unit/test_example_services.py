"""The example text services answer like the seed's, over real sockets on loopback."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.services.textservices import KINDS, TextServiceServer, serve, stop

DEFINITIONS = Path(__file__).resolve().parents[2] / "examples" / "definitions"
SENTENCE = "The Sun will rise in the morning !"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, TextServiceServer]]:
    running = {kind: serve(kind, "127.0.0.1", 0) for kind in KINDS}
    yield running
    for server in running.values():
        stop(server)


@pytest.fixture
def connection(servers: dict[str, TextServiceServer]) -> Iterator[http.client.HTTPConnection]:
    host, port = servers["upper"].server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=5)
    yield connection
    connection.close()


def call(
    server: TextServiceServer,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str | None = "application/json",
) -> tuple[http.client.HTTPResponse, bytes]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=5)
    try:
        return send(connection, method, path, body, content_type)
    finally:
        connection.close()


def send(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str | None = "application/json",
) -> tuple[http.client.HTTPResponse, bytes]:
    headers = {} if content_type is None else {"Content-Type": content_type}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response, response.read()


def as_json(response: http.client.HTTPResponse, body: bytes) -> Any:
    assert response.getheader("Content-Type") == "application/json"
    assert response.getheader("Content-Length") == str(len(body))
    return json.loads(body)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("upper", {"message": "THE SUN WILL RISE IN THE MORNING !"}),
        ("reverse", {"message": "! gninrom eht ni esir lliw nuS ehT"}),
        ("space-counter", {"space_count": 7}),
    ],
)
def test_event_replies_with_the_outputs(
    servers: dict[str, TextServiceServer], kind: str, expected: dict[str, Any]
) -> None:
    response, body = call(servers[kind], "POST", "/event", json.dumps({"message": SENTENCE}).encode())
    assert response.status == 200
    assert as_json(response, body) == expected


def test_the_three_services_chain_to_the_readme_result(servers: dict[str, TextServiceServer]) -> None:
    document: dict[str, Any] = {"message": SENTENCE}
    for kind in KINDS:
        response, body = call(servers[kind], "POST", "/event", json.dumps(document).encode())
        document |= as_json(response, body)
    assert document == {"message": "! GNINROM EHT NI ESIR LLIW NUS EHT", "space_count": 7}


def test_extra_fields_are_ignored_and_media_type_parameters_accepted(
    servers: dict[str, TextServiceServer],
) -> None:
    payload = json.dumps({"message": "a b", "other": 1}).encode()
    response, body = call(
        servers["space-counter"], "POST", "/event", payload, content_type="application/json; charset=utf-8"
    )
    assert response.status == 200
    assert as_json(response, body) == {"space_count": 1}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_refused_with_415(
    servers: dict[str, TextServiceServer], content_type: str | None
) -> None:
    response, body = call(servers["upper"], "POST", "/event", b'{"message": "hi"}', content_type=content_type)
    assert response.status == 415
    assert as_json(response, body)["error"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"null", ""),
        (b"[1, 2]", ""),
        (b"{}", "message"),
        (b'{"message": 42}', "message"),
        (b'{"message": null}', "message"),
    ],
)
def test_json_without_a_string_message_is_refused_with_400(
    servers: dict[str, TextServiceServer], payload: bytes, field: str
) -> None:
    response, body = call(servers["reverse"], "POST", "/event", payload)
    assert response.status == 400
    error = as_json(response, body)
    assert error["error"] == "bad_request"
    assert error["errors"] == [{"field": field, "message": error["message"]}]


def test_invalid_json_is_refused_with_400(servers: dict[str, TextServiceServer]) -> None:
    response, body = call(servers["reverse"], "POST", "/event", b"{not json")
    assert response.status == 400
    assert as_json(response, body)["error"] == "bad_request"


def test_healthcheck_answers_204_without_a_body(servers: dict[str, TextServiceServer]) -> None:
    for server in servers.values():
        response, body = call(server, "GET", "/healthcheck")
        assert response.status == 204
        assert body == b""


@pytest.mark.parametrize("kind", KINDS)
def test_infos_match_the_example_definitions(servers: dict[str, TextServiceServer], kind: str) -> None:
    response, body = call(servers[kind], "GET", "/infos")
    assert response.status == 200
    infos = as_json(response, body)
    definition = json.loads((DEFINITIONS / f"service-{kind}.json").read_text())
    assert infos["name"] == definition["name"] == kind
    assert infos["inputs"] == definition["inputs"]
    assert infos["outputs"] == definition["outputs"]
    assert infos["description"]


def test_unknown_routes_and_methods_answer_json(servers: dict[str, TextServiceServer]) -> None:
    response, body = call(servers["upper"], "GET", "/nowhere")
    assert response.status == 404
    assert as_json(response, body)["error"] == "not_found"

    response, body = call(servers["upper"], "GET", "/event")
    assert response.status == 405
    assert response.getheader("Allow") == "POST"
    assert as_json(response, body)["error"] == "method_not_allowed"

    response, body = call(servers["upper"], "DELETE", "/healthcheck")
    assert response.status == 405
    assert response.getheader("Allow") == "GET"


def test_one_keep_alive_connection_serves_many_requests_including_refusals(
    connection: http.client.HTTPConnection,
) -> None:
    for message in ["one", "two words"]:
        response, body = send(connection, "POST", "/event", json.dumps({"message": message}).encode())
        assert response.status == 200
        assert response.version == 11
        assert not response.will_close
        assert as_json(response, body) == {"message": message.upper()}
        # A refused request in between must not desynchronise the connection.
        response, body = send(connection, "POST", "/event", b"plain text", content_type="text/plain")
        assert response.status == 415
        assert not response.will_close
    response, _ = send(connection, "GET", "/healthcheck")
    assert response.status == 204


def test_serve_on_port_zero_reports_the_bound_port() -> None:
    server = serve("upper", "127.0.0.1", 0)
    try:
        port = server.server_address[1]
        assert port != 0
        assert server.url == f"http://127.0.0.1:{port}"
    finally:
        stop(server)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(KeyError):
        serve("lower", "127.0.0.1", 0)

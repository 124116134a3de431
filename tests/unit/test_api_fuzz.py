"""Random and hostile requests never make the API answer 500, rejected ones change nothing stored, and
what a request costs in memory is bounded by the limits at the door, whatever it carries."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machinery.api import create_app
from machinery.api.openapi import described_routes
from machinery.limits import MAX_SAFE_INTEGER

# Numbers within what JSON peers accept (the door refuses the others: tests/unit/test_limits.py).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

state_names = st.sampled_from(["A", "B", "C"])
states = st.fixed_dictionaries(
    {
        "Type": st.sampled_from(
            ["Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map", "Nope"]
        )
    },
    optional={
        "Next": state_names,
        "End": st.booleans(),
        "InputPath": st.sampled_from(["$", "$.a", "$..b", "$[", "x", None]),
        "Parameters": json_values,
        "ResultPath": st.sampled_from(["$", "$.r", "$.a[0]", "$$.x", "", None]),
        "Resource": st.sampled_from(["upper", "http://127.0.0.1:9/x", "arn:aws:lambda:x", 3]),
        "Seconds": st.integers(-5, 5),
        "Choices": st.lists(json_values, max_size=2),
        "Retry": st.lists(json_values, max_size=2),
        "Catch": st.lists(json_values, max_size=2),
    },
)
definitions = st.fixed_dictionaries(
    {"StartAt": state_names, "States": st.dictionaries(state_names, states, max_size=3)},
    optional={"TimeoutSeconds": st.integers(-1, 5), "Comment": json_values},
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    db = Path(tmp_path_factory.mktemp("fuzz")) / "db.sqlite"
    app = create_app({"DATABASE_URL": f"sqlite:///{db}", "START_WORKER": False, "SYNC_WAIT": 0})
    with app.test_client() as test_client:
        test_client.post(
            "/s", json={"name": "upper", "address": "http://127.0.0.1:9/event", "inputs": [], "outputs": []}
        )
        yield test_client


def _snapshot(client: FlaskClient) -> Any:
    return client.get("/s").get_json(), client.get("/w").get_json()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values, route=st.sampled_from(["/s", "/w"]))
def test_random_bodies_get_4xx_and_change_nothing(client: FlaskClient, body: Any, route: str) -> None:
    before = _snapshot(client)
    response = client.post(route, data=json.dumps(body), content_type="application/json")
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert response.get_json()["error"]
        assert _snapshot(client) == before


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=definitions)
def test_random_definitions_are_accepted_or_rejected_with_field_errors(
    client: FlaskClient, definition: dict[str, Any]
) -> None:
    before = _snapshot(client)
    response = client.post("/w", json={"name": "fuzzed", "definition": definition})
    assert response.status_code in (201, 409), response.get_data(as_text=True)
    if response.status_code == 409:
        body = response.get_json()
        assert body["errors"] and all(issue["field"] for issue in body["errors"])
        assert _snapshot(client) == before
    else:
        # Accepted definitions must also compile and be runnable (started; no worker here).
        started = client.post("/e/fuzzed?wait=0", json={"a": [1], "b": 2})
        assert started.status_code == 202, started.get_data(as_text=True)


# Hostile requests to every route ------------------------------------------------------------------------

#: The app's body limit in these tests: small, so that "huge" bodies stay cheap to build.
BODY_LIMIT = 64 * 1024
#: What one request may allocate at most (tracemalloc's peak), whatever it carries. Parsing a body within
#: the limit into Python objects and storing it costs a few times its size; a body beyond it costs nothing.
MEMORY_BOUND = 40 * BODY_LIMIT


def _nested(depth: int, opener: bytes, closer: bytes) -> bytes:
    return opener * depth + b"1" + closer * depth


# Any text, lone surrogates included: ensure_ascii writes them as \udxxx escapes, as a hostile client would.
odd_text = st.text(st.characters(codec=None), max_size=40)
hostile_bodies = st.one_of(
    st.integers(100, 120_000).map(lambda n: _nested(n, b"[", b"]")),
    st.integers(100, 20_000).map(lambda n: _nested(n, b'{"a":', b"}")),
    st.integers(129, 2_000).map(lambda n: b"[" * n),  # deep and truncated
    st.integers(BODY_LIMIT - 64, 4 * BODY_LIMIT).map(lambda n: b'{"data": "' + b"x" * n + b'"}'),
    st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400", b"[1e309]", b"9" * 400]),
    st.sampled_from(
        [b"\xff\xfe\x00", b"\xef\xbb\xbf{}", b"\x00", b"\xc0\xaf", b'"\\ud800"', b'{"\\udfff": 1}']
    ),
    st.dictionaries(odd_text, odd_text, max_size=5).map(lambda d: json.dumps(d).encode()),
    odd_text.map(lambda t: json.dumps({"taskToken": t, "output": t, "error": t, "cause": t}).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)
# Path parameters: odd text, percent-encoded as a client sends it (surrogates cannot be sent at all).
path_values = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).map(
    lambda t: quote(t, safe="")
)
query_values = st.sampled_from(
    ["wait=1e999", "wait=nan", "limit=\u00b2", "limit=" + "9" * 5000, "after=-1", "reverse=maybe",
     "version=\u0661", "status=running", "cursor=%00", "limit=1&limit=x", "wait=0&wait=9999", ""]
)  # fmt: skip


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    """An app with a small body limit, a service, a workflow and one running event."""
    db = Path(tmp_path_factory.mktemp("door")) / "db.sqlite"
    config = {"DATABASE_URL": f"sqlite:///{db}", "START_WORKER": False, "SYNC_WAIT": 0}
    app = create_app({**config, "MAX_BODY_BYTES": BODY_LIMIT})
    with app.test_client() as test_client:
        service = {"name": "upper", "address": "http://127.0.0.1:9/event", "inputs": [], "outputs": []}
        assert test_client.post("/s", json=service).status_code == 201
        pass_state = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
        assert test_client.post("/w", json={"name": "wf", "definition": pass_state}).status_code == 201
        assert test_client.post("/e/wf?wait=0", json={"a": 1}).status_code == 202
        yield test_client


def _routes(client: FlaskClient) -> list[tuple[str, str, list[str]]]:
    return [
        (method, rule.rule, sorted(rule.arguments))
        for rule, method, _operation in described_routes(client.application)
    ]


def _store(client: FlaskClient) -> Any:
    return client.get("/s").get_json(), client.get("/w").get_json(), client.get("/e?limit=1000").get_json()


def _known(client: FlaskClient, argument: str, rule: str) -> str:
    if rule.startswith("/s"):
        return "upper"
    if rule.startswith("/w") or (rule == "/e/<ref>"):
        return "wf"
    events = client.get("/e").get_json()["events"]
    return str(events[-1]["event_id"])


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), body=hostile_bodies, query=query_values)
def test_hostile_requests_to_every_route_are_4xx_and_bounded(
    door: FlaskClient, data: st.DataObject, body: bytes, query: str
) -> None:
    method, rule, arguments = data.draw(st.sampled_from(_routes(door)), label="route")
    path = rule
    for argument in arguments:
        value = data.draw(st.one_of(st.just(_known(door, argument, rule)), path_values), label=argument)
        path = path.replace(f"<{argument}>", value)
    url = f"{path}?{query}" if query else path
    before = _store(door)
    tracemalloc.start()
    try:
        response = door.open(url, method=method, data=body, content_type="application/json")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code < 500, (method, url, response.get_data(as_text=True)[:500])
    assert peak < MEMORY_BOUND, (method, url, len(body), peak)
    if response.status_code >= 400:
        problem = response.get_json()
        assert response.content_type == "application/problem+json"
        assert problem["status"] == response.status_code and problem["error"] and problem["detail"]
        if method != "GET":
            assert _store(door) == before


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(size=st.integers(BODY_LIMIT + 1, 64 * BODY_LIMIT))
def test_a_body_beyond_the_limit_costs_nothing(door: FlaskClient, size: int) -> None:
    body = b"[" + b"1," * (size // 2) + b"1]"
    tracemalloc.start()
    try:
        response = door.post("/e/wf?wait=0", data=body, content_type="application/json")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert peak < BODY_LIMIT  # refused on its declared size: not read, not copied

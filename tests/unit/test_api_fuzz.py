"""Random bodies never make the API answer 500, and rejected ones change nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machinery.api import create_app
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

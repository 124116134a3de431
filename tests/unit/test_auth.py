"""Authentication and authorisation (machinery.auth): the route table, tokens and scopes, the open
loopback server, console sessions, SigV4 and task tokens as credentials."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, jsonify, request
from flask.testing import FlaskClient

from machinery import auth
from machinery.auth.access import PREFIX_ACCESS, ROUTE_ACCESS, Access, aws_action_access, route_access
from machinery.auth.tokens import IssuedToken, create_token

ELSEWHERE = {"REMOTE_ADDR": "10.1.2.3"}


def code_of(body: dict[str, Any]) -> str:
    """The error's machine-readable name, whether the body is our JSON error or RFC 9457 problem details."""
    for key in ("error", "code"):
        if isinstance(body.get(key), str):
            return str(body[key])
    return str(body.get("type", "")).rsplit("/", 1)[-1]


def issue(app: Flask, name: str, scope: str) -> IssuedToken:
    """A token made as ``machinery tokens create`` makes it (straight into storage)."""
    gate = auth.gate_of(app)
    issued = create_token(gate.storage, gate.keys, name, scope, time.time())
    gate.tokens_changed()
    return issued


def bearer(issued: IssuedToken) -> dict[str, str]:
    return {"Authorization": f"Bearer {issued.token}"}


def concrete(rule: str) -> str:
    """A URL matching ``rule`` (every variable part filled in)."""
    return re.sub(r"<[^>]+>", "x", rule)


@pytest.fixture
def tokens(app: Flask) -> dict[str, IssuedToken]:
    return {scope: issue(app, f"{scope}-token", scope) for scope in ("read", "write", "admin")}


# the route table ----------------------------------------------------------------------------------


def test_every_route_of_the_app_has_an_access_rule(app: Flask) -> None:
    missing = [
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        if route_access(method, rule.rule) is None
    ]
    assert not missing, (
        f"routes without an access rule (closed to everyone): {missing}; "
        "add each to ROUTE_ACCESS in machinery/auth/access.py"
    )


def test_each_route_admits_exactly_the_scopes_it_needs(
    app: Flask, client: FlaskClient, tokens: dict[str, IssuedToken]
) -> None:
    ranks = {"read": 0, "write": 1, "admin": 2}
    wrong: list[str] = []
    checked = 0
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"OPTIONS"}):
            access = route_access(method, rule.rule)
            assert access is not None
            if access is Access.AWS_ACTION:
                # Sent here without an X-Amz-Target: an unknown action, which needs admin.
                access = aws_action_access(None)
            url = concrete(rule.rule)
            needed = access.scope
            anonymous = client.open(url, method=method).status_code
            if needed is None:
                if anonymous in (401, 403):
                    wrong.append(f"{method} {rule.rule}: open route answered {anonymous} without a token")
            elif anonymous != 401:
                wrong.append(f"{method} {rule.rule}: {anonymous} without a token, not 401")
            for scope, issued in tokens.items():
                status = client.open(url, method=method, headers=bearer(issued)).status_code
                allowed = needed is None or ranks[scope] >= ranks[needed.value]
                if allowed == (status in (401, 403)):
                    wrong.append(f"{method} {rule.rule} with a {scope} token: {status}")
            checked += 1
    assert not wrong, wrong
    assert checked >= len(ROUTE_ACCESS) - 2  # every listed route exists (POST / and GET / may not yet)


def test_the_table_follows_the_policy() -> None:
    """Whatever the table says must follow these rules: nothing that changes state is open to a read
    token, only the listed routes are open at all, and tokens are managed with ``admin`` only."""
    open_routes = {("GET", "/healthcheck"), ("GET", "/")}
    # The API's description holds no data: the document, its docs page and the problem types' pages.
    open_routes |= {
        ("GET", rule)
        for rule in ("/openapi.json", "/docs", "/docs/assets/<path:name>", "/problems", "/problems/<code>")
    }
    for (method, rule), access in ROUTE_ACCESS.items():
        if method != "GET":
            assert access is not Access.READ, f"{method} {rule} changes state: it cannot need only read"
        if access is Access.PUBLIC:
            assert (method, rule) in open_routes or rule.startswith("/ui/"), f"{method} {rule} is open"
        if access is Access.TASK_TOKEN:
            assert rule.startswith("/tasks/"), f"{method} {rule}: only callbacks take a task token"
        if rule.startswith("/tokens"):
            assert access is Access.ADMIN, f"{method} {rule} manages tokens: admin only"
    from machinery.auth.access import AWS_ACTIONS

    for action, access in AWS_ACTIONS.items():
        reads = action.startswith(("Describe", "List", "Validate")) or action == "GetExecutionHistory"
        assert (access is Access.READ) == reads, action
        if access is Access.TASK_TOKEN:
            assert action.startswith("SendTask"), action


def test_a_route_without_an_access_rule_is_closed_even_on_an_open_server(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()

    @app.get("/forgotten")
    def forgotten() -> Response:
        return jsonify({"secret": True})

    response = app.test_client().get("/forgotten")
    assert response.status_code == 403
    assert "no access rule" in response.get_json()["message"]


def test_head_follows_get_and_options_and_console_assets_are_open() -> None:
    assert route_access("HEAD", "/s") is Access.READ
    assert route_access("OPTIONS", "/s") is Access.PUBLIC
    assert ("/ui", frozenset({"GET"}), Access.PUBLIC) in PREFIX_ACCESS
    assert route_access("GET", "/ui/static/app.js") is Access.PUBLIC
    assert route_access("POST", "/ui/anything") is None
    assert route_access("GET", "/uix") is None


# 401 and 403 ----------------------------------------------------------------------------------------


def test_401_without_a_token_and_403_for_a_missing_scope_are_structured(
    client: FlaskClient, tokens: dict[str, IssuedToken]
) -> None:
    missing = client.get("/s")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="machinery"'
    body = missing.get_json()
    assert code_of(body) == "unauthorized"
    assert "Authorization: Bearer" in str(body) and body["required_scope"] == "read"

    narrow = client.post("/s", json={"name": "x"}, headers=bearer(tokens["read"]))
    assert narrow.status_code == 403
    body = narrow.get_json()
    assert code_of(body) == "forbidden"
    assert (body["required_scope"], body["token_scope"]) == ("write", "read")
    assert "read-token" in str(body)

    for header in ("Bearer mch_not-a-token", "Bearer ", "Basic dXNlcjpwdw==", "Token abc"):
        refused = client.get("/s", headers={"Authorization": header})
        assert refused.status_code == 401, header
        assert code_of(refused.get_json()) == "unauthorized"


def test_a_bad_credential_is_refused_even_on_an_open_server(client: FlaskClient) -> None:
    assert client.get("/s").status_code == 200  # no token exists: loopback is open
    assert client.get("/s", headers={"Authorization": "Bearer mch_guess"}).status_code == 401


def test_healthcheck_and_task_callbacks_need_no_token(client: FlaskClient, tokens: dict[str, Any]) -> None:
    assert client.get("/healthcheck", environ_base=ELSEWHERE).status_code == 204
    # The task token is the credential: an unknown one is a 404, not a 401.
    answer = client.post("/tasks/success", json={"taskToken": "bogus", "output": 1}, environ_base=ELSEWHERE)
    assert answer.status_code == 404


# the open loopback server ----------------------------------------------------------------------------


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_without_tokens_loopback_callers_are_admitted(client: FlaskClient, peer: str) -> None:
    assert client.get("/s", environ_base={"REMOTE_ADDR": peer}).status_code == 200
    assert client.post("/s", json={}, environ_base={"REMOTE_ADDR": peer}).status_code == 409


@pytest.mark.parametrize("peer", ["10.1.2.3", "192.168.0.7", "::ffff:10.0.0.1", "2001:db8::1", ""])
def test_without_tokens_other_callers_are_refused(client: FlaskClient, peer: str) -> None:
    response = client.get("/s", environ_base={"REMOTE_ADDR": peer})
    assert response.status_code == 401
    assert "machinery tokens create" in response.get_json()["message"]


def test_insecure_admits_every_caller_until_a_token_exists(make_app: Callable[..., Flask]) -> None:
    app = make_app(INSECURE=True)
    client = app.test_client()
    assert client.get("/s", environ_base=ELSEWHERE).status_code == 200
    issued = issue(app, "first", "read")
    assert client.get("/s", environ_base=ELSEWHERE).status_code == 401
    assert client.get("/s", environ_base=ELSEWHERE, headers=bearer(issued)).status_code == 200


def test_the_first_token_closes_the_loopback_server(app: Flask, client: FlaskClient) -> None:
    assert client.get("/s").status_code == 200
    issued = issue(app, "first", "write")
    assert client.get("/s").status_code == 401
    assert client.get("/s", headers=bearer(issued)).status_code == 200
    auth.revoke_token(auth.gate_of(app).storage, "first")
    auth.gate_of(app).tokens_changed()
    assert client.get("/s").status_code == 200  # no token left: open to loopback again


def test_a_token_made_by_another_process_closes_the_server_at_once(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first token closes every process of the server at once; revoking the last one elsewhere
    reopens this process within the cache time."""
    now = [1000.0]
    monkeypatch.setattr("machinery.auth.check.time.monotonic", lambda: now[0])
    assert client.get("/s").status_code == 200
    gate = auth.gate_of(app)
    create_token(gate.storage, gate.keys, "elsewhere", "read", time.time())  # no tokens_changed()
    assert client.get("/s").status_code == 401  # a "no" is not reused
    auth.revoke_token(gate.storage, "elsewhere")  # no tokens_changed() either
    assert client.get("/s").status_code == 401  # the cached "yes"
    now[0] += auth.check.TOKENS_CACHE_SECONDS
    assert client.get("/s").status_code == 200


def test_binding_rule() -> None:
    assert auth.check.binds_loopback_only("127.0.0.1")
    assert auth.check.binds_loopback_only("::1")
    assert auth.check.binds_loopback_only("localhost")
    assert not auth.check.binds_loopback_only("0.0.0.0")
    assert not auth.check.binds_loopback_only("::")
    assert not auth.check.binds_loopback_only("192.0.2.1")
    assert not auth.check.binds_loopback_only("no-such-host.invalid")


# tokens ---------------------------------------------------------------------------------------------


def test_tokens_api_creates_lists_and_revokes(client: FlaskClient, tokens: dict[str, IssuedToken]) -> None:
    admin = bearer(tokens["admin"])
    created = client.post("/tokens", json={"name": "ci", "scope": "write"}, headers=admin)
    assert created.status_code == 201
    body = created.get_json()
    assert body["token"].startswith("mch_") and len(body["secret_access_key"]) == 40
    assert body["access_key_id"].startswith("MKIA") and len(body["access_key_id"]) == 20
    new = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/s", headers=new).status_code == 200

    listed = client.get("/tokens", headers=admin).get_json()["tokens"]
    assert [(t["name"], t["scope"]) for t in listed][-1] == ("ci", "write")
    assert all(set(t) == {"token_id", "name", "scope", "access_key_id", "created_at"} for t in listed)

    assert client.post("/tokens", json={"name": "ci"}, headers=admin).status_code == 409
    bad = client.post("/tokens", json={"name": "x", "scope": "root"}, headers=admin)
    assert bad.status_code == 409 and bad.get_json()["errors"][0]["field"] == "scope"
    bad = client.post("/tokens", json={"name": "\u0000evil"}, headers=admin)
    assert bad.status_code == 409 and bad.get_json()["errors"][0]["field"] == "name"
    assert client.post("/tokens", json={"name": "y", "extra": 1}, headers=admin).status_code == 409

    assert client.delete(f"/tokens/{body['token_id']}", headers=admin).status_code == 204
    assert client.get("/s", headers=new).status_code == 401
    assert client.delete("/tokens/ci", headers=admin).status_code == 404


def test_no_token_or_secret_is_stored_in_clear(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app()
    issued = [issue(app, f"t{i}", "admin") for i in range(3)]
    storage = auth.gate_of(app).storage
    stored = storage.list_api_tokens()
    assert [r.token_hash for r in stored] == [hashlib.sha256(i.token.encode()).hexdigest() for i in issued]
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("machinery-*.db*"))
    assert raw, "no database file found"
    for one in issued:
        assert one.token.encode() not in raw
        assert one.token[len("mch_") :].encode() not in raw
        assert one.secret_access_key.encode() not in raw
        assert one.record.token_hash.encode() in raw


def test_tokens_carry_256_random_bits() -> None:
    from machinery.storage.memory import MemoryStorage

    storage = MemoryStorage()
    keys = auth.ServerKeys(storage)
    made = [create_token(storage, keys, f"n{i}", "read", 0.0) for i in range(50)]
    values = {one.token for one in made}
    assert len(values) == 50
    assert all(len(value) == len("mch_") + 43 for value in values)  # 32 bytes, base64url
    assert len({one.record.access_key_id for one in made}) == 50


def test_a_short_secret_key_is_refused() -> None:
    from machinery.auth.tokens import InvalidSecretKey
    from machinery.storage.memory import MemoryStorage

    with pytest.raises(InvalidSecretKey, match="at least 32"):
        auth.ServerKeys(MemoryStorage(), "short")


def test_sigv4_secrets_follow_the_server_key(tmp_path: Path) -> None:
    from machinery.storage.memory import MemoryStorage

    storage = MemoryStorage()
    generated = auth.ServerKeys(storage)
    again = auth.ServerKeys(storage)  # another process on the same database
    configured = auth.ServerKeys(storage, "k" * 32)
    assert generated.sigv4_secret("MKIA1") == again.sigv4_secret("MKIA1")
    assert generated.sigv4_secret("MKIA1") != generated.sigv4_secret("MKIA2")
    assert configured.sigv4_secret("MKIA1") != generated.sigv4_secret("MKIA1")


# console sessions -----------------------------------------------------------------------------------


@pytest.fixture
def console_app(make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> Flask:
    """An app with sign-in and sign-out routes as the console builds them on :func:`auth.start_session`."""
    monkeypatch.setitem(ROUTE_ACCESS, ("POST", "/ui/session"), Access.PUBLIC)
    monkeypatch.setitem(ROUTE_ACCESS, ("DELETE", "/ui/session"), Access.PUBLIC)
    app = make_app()

    @app.post("/ui/session")
    def sign_in() -> Response:
        response = jsonify({"signed_in": True})
        session = auth.start_session(response, str((request.get_json() or {}).get("token", "")))
        response.headers["X-Test-Csrf"] = session.csrf_token
        return response

    @app.delete("/ui/session")
    def sign_out() -> Response:
        response = jsonify({"signed_in": False})
        auth.end_session(response)
        return response

    @app.get("/ui/whoami")
    def whoami() -> Response:
        principal = auth.current_principal()
        return jsonify({"principal": principal and principal.name, "csrf": auth.session_csrf_token()})

    return app


def _cookie_headers(response: Any) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def test_a_session_stands_for_the_pasted_token(console_app: Flask) -> None:
    issued = issue(console_app, "alice", "write")
    client = console_app.test_client()
    assert client.post("/ui/session", json={"token": "mch_wrong"}).status_code == 401
    signed_in = client.post("/ui/session", json={"token": issued.token})
    assert signed_in.status_code == 200
    cookies = _cookie_headers(signed_in)
    session_cookie, csrf_cookie = cookies[auth.SESSION_COOKIE], cookies[auth.CSRF_COOKIE]
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie and "Path=/" in session_cookie
    assert "HttpOnly" not in csrf_cookie and "SameSite=Strict" in csrf_cookie
    assert "Secure" not in session_cookie  # plain HTTP here
    assert issued.token not in session_cookie
    csrf = signed_in.headers["X-Test-Csrf"]
    assert f"{auth.CSRF_COOKIE}={csrf};" in csrf_cookie

    assert client.get("/s").status_code == 200
    refused = client.post("/s", json={"name": "svc", "address": "http://127.0.0.1:9/x"})
    assert refused.status_code == 403 and code_of(refused.get_json()) == "csrf_rejected"
    wrong = client.post("/s", json={}, headers={auth.CSRF_HEADER: csrf + "x"})
    assert wrong.status_code == 403
    accepted = client.post(
        "/s", json={"name": "svc", "address": "http://127.0.0.1:9/x"}, headers={auth.CSRF_HEADER: csrf}
    )
    assert accepted.status_code == 201
    assert client.get("/ui/whoami").get_json() == {"principal": "alice", "csrf": csrf}

    signed_out = client.delete("/ui/session")
    assert all("Expires=Thu, 01 Jan 1970" in h for h in _cookie_headers(signed_out).values())
    assert client.get("/s").status_code == 401
    assert client.get("/ui/whoami").get_json() == {"principal": None, "csrf": None}


def test_a_session_ends_with_its_token_and_cannot_be_forged(console_app: Flask) -> None:
    issued = issue(console_app, "bob", "read")
    client = console_app.test_client()
    client.post("/ui/session", json={"token": issued.token})
    assert client.get("/s").status_code == 200
    cookie = client.get_cookie(auth.SESSION_COOKIE)
    assert cookie is not None
    forged = console_app.test_client()
    forged.set_cookie(auth.SESSION_COOKIE, cookie.value[:-2] + ("AA" if cookie.value[-2:] != "AA" else "BB"))
    assert forged.get("/s").status_code == 401
    # A read session cannot write, CSRF token or not.
    csrf = client.get_cookie(auth.CSRF_COOKIE)
    assert csrf is not None
    assert client.post("/s", json={}, headers={auth.CSRF_HEADER: csrf.value}).status_code == 403
    auth.revoke_token(auth.gate_of(console_app).storage, "bob")
    refused = client.get("/s")
    assert refused.status_code == 401 and "revoked" in refused.get_json()["message"]


def test_a_session_expires(console_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = issue(console_app, "carol", "read")
    client = console_app.test_client()
    client.post("/ui/session", json={"token": issued.token})
    assert client.get("/s").status_code == 200
    lifetime = auth.gate_of(console_app).sessions.lifetime
    later = time.time() + lifetime + 5
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    assert client.get("/s").status_code == 401


def test_session_cookies_are_secure_over_https(console_app: Flask) -> None:
    issued = issue(console_app, "dave", "read")
    client = console_app.test_client()
    response = client.post("/ui/session", json={"token": issued.token}, base_url="https://localhost")
    assert all("Secure" in header for header in _cookie_headers(response).values())


def test_a_bearer_token_needs_no_csrf_token(client: FlaskClient, tokens: dict[str, IssuedToken]) -> None:
    response = client.post(
        "/s", json={"name": "svc", "address": "http://127.0.0.1:9/x"}, headers=bearer(tokens["write"])
    )
    assert response.status_code == 201


# task tokens ----------------------------------------------------------------------------------------


def test_task_tokens_carry_128_random_bits_and_locate_their_task() -> None:
    from machinery.asl.compiler import compile_machine
    from machinery.engine.interpreter import TASK_TOKEN_RANDOM_BYTES, Interpreter, decode_task_token
    from machinery.engine.types import Branch, InvokeTask
    from tests.unit.test_interpreter import EXECUTION, NOW, task_machine

    assert TASK_TOKEN_RANDOM_BYTES * 8 >= 128
    machine = compile_machine(task_machine(Parameters={"token.$": "$$.Task.Token"}))

    def schedule(random_bytes: Callable[[int], bytes] | None = None) -> InvokeTask:
        root = Branch(branch_id="exec-1", execution_id="exec-1", container=(), state_input={})
        chosen = {} if random_bytes is None else {"random_bytes": random_bytes}
        effect = Interpreter(machine, EXECUTION, **chosen).start(root, NOW).effects[0]
        assert isinstance(effect, InvokeTask) and effect.task_token
        return effect

    fixed = schedule(lambda n: bytes(range(n)))
    assert fixed.payload == {"token": fixed.task_token}
    assert decode_task_token(fixed.task_token or "") == ("exec-1", "exec-1", "Call", 1)
    assert bytes(range(16)).hex() in __import__("base64").urlsafe_b64decode(fixed.task_token + "==").decode()
    # The same task at the same attempt gets a new token each time it is scheduled.
    tokens = {schedule().task_token for _ in range(200)}
    assert len(tokens) == 200
    # Tokens of the old, guessable form (no random part) are not tokens any more.
    import base64

    old = base64.urlsafe_b64encode(b"exec-1|exec-1|Call|1").decode().rstrip("=")
    assert decode_task_token(old) is None
    assert decode_task_token("not base64 at all!") is None


def test_a_task_token_is_the_credential_and_is_spent_by_the_first_outcome(
    make_app: Callable[..., Flask], loopback: Any
) -> None:
    calls: list[str] = []

    def respond(received: Any) -> tuple[int, str, bytes]:
        calls.append(received.headers.get("X-Machinery-Task-Token", ""))
        return 200, "application/json", b"{}"

    service = loopback(respond)
    app = make_app(START_WORKER=True)
    writer = issue(app, "writer", "write")
    client = app.test_client()
    definition = {
        "StartAt": "Wait for it",
        "States": {
            "Wait for it": {
                "Type": "Task",
                "Resource": f"{service.url}/x.waitForTaskToken",
                "End": True,
            }
        },
    }
    assert (
        client.post("/w", json={"name": "cb", "definition": definition}, headers=bearer(writer)).status_code
        == 201
    )
    started = client.post("/e/cb?wait=0", json={}, headers=bearer(writer))
    assert started.status_code == 202
    event_id = started.get_json()["event_id"]
    service.next_request()
    token = calls[0]
    assert token

    # A token of the same task with other random bits is refused and changes nothing.
    import base64

    text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    execution_id, branch_id, attempt, nonce, state = text.split("|", 4)
    forged_text = "|".join([execution_id, branch_id, attempt, "0" * len(nonce), state])
    forged = base64.urlsafe_b64encode(forged_text.encode()).decode().rstrip("=")
    refused = client.post("/tasks/success", json={"taskToken": forged, "output": {"forged": True}})
    assert refused.status_code == 409

    # No API token is needed: the task token is the credential, from any address.
    answer = client.post(
        "/tasks/success", json={"taskToken": token, "output": {"ok": 1}}, environ_base=ELSEWHERE
    )
    assert answer.status_code == 200
    record = client.get(f"/e/{event_id}?wait=10", headers=bearer(writer)).get_json()
    assert (record["status"], record["output"]) == ("SUCCEEDED", {"ok": 1})
    again = client.post("/tasks/success", json={"taskToken": token, "output": {"twice": True}})
    assert again.status_code == 409


# AWS Signature Version 4 ----------------------------------------------------------------------------


def signed_headers(
    issued: IssuedToken,
    action: str,
    body: bytes,
    *,
    secret: str | None = None,
    when: float | None = None,
    host: str = "localhost",
    path: str = "/aws-door",
) -> dict[str, str]:
    """The headers botocore (what boto3 and the AWS CLI use) signs a Step Functions request with."""
    from unittest import mock

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    aws = AWSRequest(
        method="POST",
        url=f"http://{host}{path}",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"AWSStepFunctions.{action}",
        },
    )
    credentials = Credentials(issued.record.access_key_id, secret or issued.secret_access_key)
    signer = SigV4Auth(credentials, "states", "eu-west-1")
    if when is None:
        signer.add_auth(aws)
    else:
        import datetime

        moment = datetime.datetime.fromtimestamp(when, datetime.UTC).replace(tzinfo=None)
        with mock.patch("botocore.auth.datetime.datetime") as clock:
            clock.utcnow.return_value = moment
            clock.now.return_value = moment
            signer.add_auth(aws)
    return {name: str(value) for name, value in aws.headers.items()}


@pytest.fixture
def aws_app(make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> Flask:
    """An app with a stand-in for the AWS front door behind the same check as ``POST /``."""
    monkeypatch.setitem(ROUTE_ACCESS, ("POST", "/aws-door"), Access.AWS_ACTION)
    app = make_app()

    @app.post("/aws-door")
    def door() -> Response:
        principal = auth.current_principal()
        return jsonify({"principal": principal and principal.name, "via": principal and principal.via})

    return app


def test_sigv4_requests_act_for_their_token_with_its_scope(aws_app: Flask) -> None:
    reader = issue(aws_app, "reader", "read")
    client = aws_app.test_client()
    body = b'{"maxResults": 10}'
    listed = client.post("/aws-door", data=body, headers=signed_headers(reader, "ListStateMachines", body))
    assert listed.status_code == 200
    assert listed.get_json() == {"principal": "reader", "via": "sigv4"}
    start = b'{"stateMachineArn": "arn:aws:states:local:0:stateMachine:x"}'
    refused = client.post("/aws-door", data=start, headers=signed_headers(reader, "StartExecution", start))
    assert refused.status_code == 403 and code_of(refused.get_json()) == "forbidden"
    unknown = client.post("/aws-door", data=body, headers=signed_headers(reader, "MadeUpAction", body))
    assert unknown.status_code == 403  # unknown actions need admin
    # Task-token actions need no credential, as the native callbacks.
    assert (
        client.post(
            "/aws-door", data=b"{}", headers={"X-Amz-Target": "AWSStepFunctions.SendTaskSuccess"}
        ).status_code
        == 200
    )
    missing = client.post(
        "/aws-door", data=body, headers={"X-Amz-Target": "AWSStepFunctions.ListStateMachines"}
    )
    assert missing.status_code == 401


def test_sigv4_refuses_what_does_not_match(aws_app: Flask) -> None:
    from machinery.errors import InvalidSignature

    assert InvalidSignature.aws_type == "InvalidSignatureException"
    reader = issue(aws_app, "reader", "read")
    client = aws_app.test_client()
    body = b'{"maxResults": 10}'
    headers = signed_headers(reader, "ListStateMachines", body)

    def refused(data: bytes, sent: dict[str, str]) -> str:
        response = client.post("/aws-door", data=data, headers=sent)
        assert response.status_code == 401, response.get_json()
        return code_of(response.get_json())

    assert refused(b'{"maxResults": 11}', headers) == "invalid_signature"
    assert (
        refused(body, {**headers, "X-Amz-Target": "AWSStepFunctions.ListActivities"}) == "invalid_signature"
    )
    assert (
        refused(body, signed_headers(reader, "ListStateMachines", body, secret="x" * 40))
        == "invalid_signature"
    )
    other_path = signed_headers(reader, "ListStateMachines", body, path="/")
    assert refused(body, other_path) == "invalid_signature"
    stale = signed_headers(reader, "ListStateMachines", body, when=time.time() - 16 * 60)
    assert refused(body, stale) == "invalid_signature"
    other_host = signed_headers(reader, "ListStateMachines", body, host="elsewhere.example")
    assert refused(body, other_host) == "invalid_signature"
    unknown_key = {
        **headers,
        "Authorization": headers["Authorization"].replace(
            reader.record.access_key_id, "MKIAUNKNOWN0000000000"
        ),
    }
    assert refused(body, unknown_key) == "unauthorized"
    assert refused(body, {**headers, "Authorization": "AWS4-HMAC-SHA256 garbage"}) == "invalid_signature"
    revoked = signed_headers(reader, "ListStateMachines", body)
    auth.revoke_token(auth.gate_of(aws_app).storage, "reader")
    assert refused(body, revoked) == "unauthorized"


def test_the_canonical_request_matches_the_specification_example() -> None:
    """AWS's published example (the "get-vanilla-query" case of the SigV4 test suite)."""
    from machinery.auth import sigv4

    request_ = sigv4.SignedRequest(
        method="GET",
        path="/",
        query=[("Param2", "value2"), ("Param1", "value1")],
        headers={"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
        body=b"",
    )
    authorization = sigv4._parse(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0"
    )
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    assert sigv4.signature(secret, request_, authorization, "20150830T123600Z") == (
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
    )

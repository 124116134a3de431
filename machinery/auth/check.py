"""The check in front of every front door: a ``before_request`` hook of the app (:func:`install`).

For each request: the route's access (:func:`machinery.auth.access.route_access`); open routes pass;
otherwise the credential (``Authorization: Bearer``, an AWS SigV4 ``Authorization`` header, or the
console's session cookie) gives a :class:`~machinery.auth.tokens.Principal`, whose scope must cover the
route. Without a credential, the request passes only while the server has no token at all and the
caller is on loopback (or the server runs with ``--insecure``).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Request, Response, current_app, g, request

from machinery.auth import sigv4
from machinery.auth.access import Access, aws_action_access, route_access
from machinery.auth.sessions import Session, Sessions
from machinery.auth.tokens import (
    OPEN,
    Principal,
    ServerKeys,
    SigV4Credentials,
    lookup_access_key,
    principal_for_token,
)
from machinery.errors import Forbidden, MachineryError, Unauthorized
from machinery.storage.base import Storage

logger = logging.getLogger(__name__)

#: How long a "yes" to "does any token exist?" is reused: revoking the last token reopens the loopback
#: server within this time. A "no" is never reused, so that the first token, made through any process,
#: closes every process at once (every other check reads storage on each request).
TOKENS_CACHE_SECONDS = 1.0
_EXTENSION = "machinery.auth"


@dataclass(frozen=True)
class AuthSettings:
    """From ``MACHINERY_INSECURE``, ``MACHINERY_SECRET_KEY`` and ``MACHINERY_SESSION_HOURS``."""

    insecure: bool = False
    secret_key: str = ""
    session_seconds: int = 12 * 3600


def binds_loopback_only(host: str) -> bool:
    """Whether serving on ``host`` listens on loopback addresses only (a name must resolve to nothing
    else; ``0.0.0.0``, ``::`` and unresolvable names are not loopback)."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(is_loopback(str(info[4][0])) for info in found)


def is_loopback(address: str | None) -> bool:
    """Whether a peer address is a loopback address (IPv4-mapped IPv6 included)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


class Gate:
    """Authenticates and authorises the requests of one app (see the module's docstring)."""

    def __init__(self, storage: Storage, settings: AuthSettings, clock: Callable[[], float] = time.time):
        self.storage = storage
        self.settings = settings
        self.keys = ServerKeys(storage, settings.secret_key)
        self.sessions = Sessions(storage, self.keys, settings.session_seconds)
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens_checked_at = float("-inf")
        self._has_tokens = False

    def tokens_changed(self) -> None:
        """Forget whether tokens exist (this process created or revoked one)."""
        with self._lock:
            self._tokens_checked_at = float("-inf")

    def has_tokens(self) -> bool:
        """Whether any API token exists (a "yes" cached for :data:`TOKENS_CACHE_SECONDS`, a "no" asked of
        the storage each time, whose cache any process's new token drops: the server must not stay open
        once a token exists)."""
        now = time.monotonic()
        with self._lock:
            if self._has_tokens and now - self._tokens_checked_at < TOKENS_CACHE_SECONDS:
                return True
        found = self.storage.has_api_tokens()
        with self._lock:
            self._has_tokens, self._tokens_checked_at = found, now
        return found

    # pylint: disable-next=redefined-outer-name  # the request it is given, not flask's proxy
    def admits_without_token(self, request: Request) -> bool:
        """The open-server rule: no token exists and the caller is on loopback (or ``--insecure``)."""
        if self.has_tokens():
            return False
        return self.settings.insecure or is_loopback(request.remote_addr)

    # pylint: disable-next=redefined-outer-name  # the request it is given, not flask's proxy
    def authenticate(self, request: Request) -> tuple[Principal, Session | None] | None:
        """The request's credential as a principal (and its session, if by cookie); None without one.

        :raises Unauthorized: a credential that is not valid.
        """
        header = request.headers.get("Authorization")
        if header:
            scheme, _, value = header.strip().partition(" ")
            if scheme.lower() == "bearer":
                principal = principal_for_token(self.storage, value.strip())
                if principal is None:
                    raise Unauthorized("the bearer token is not valid (revoked, or never issued)")
                return principal, None
            if scheme == sigv4.ALGORITHM:
                signed = sigv4.SignedRequest(
                    method=request.method,
                    path=request.path,
                    query=list(request.args.items(multi=True)),
                    headers=dict(request.headers.items()),
                    body=request.get_data(cache=True),
                )
                return sigv4.verify(signed, self.lookup_access_key, self.clock()), None
            raise Unauthorized(f"unsupported Authorization scheme {scheme!r}: use Bearer <token>")
        session = self.sessions.check(request)
        return None if session is None else (session.principal, session)

    def lookup_access_key(self, access_key_id: str) -> SigV4Credentials | None:
        return lookup_access_key(self.storage, self.keys, access_key_id)

    # pylint: disable-next=redefined-outer-name  # the request it is given, not flask's proxy
    def authorize(self, request: Request) -> tuple[Principal, Session | None] | None:
        """Let the request through (returning whom it acts for, None on open routes) or raise.

        :raises Unauthorized: a credential is needed and missing, or is not valid (401).
        :raises Forbidden: the credential's scope does not cover the route, or the route has no access
            rule at all (403).
        """
        rule = request.url_rule
        if rule is None:
            return None  # Flask answers 404 or 405 next; no data is behind an unknown route.
        access = route_access(request.method, rule.rule)
        if access is None:
            logger.error(
                "route %s %s has no access rule (machinery.auth.access): denied", request.method, rule
            )
            raise Forbidden(f"{request.method} {rule.rule} is closed: it has no access rule", route=rule.rule)
        if access is Access.AWS_ACTION:
            access = aws_action_access(request.headers.get("X-Amz-Target"))
        needed = access.scope
        if needed is None:
            return None
        try:
            found = self.authenticate(request)
        except Unauthorized:
            # AWS SDKs always sign, with dummy credentials when the server has no keys: an open server
            # (no token yet, loopback or --insecure) takes an unknown SigV4 key as no credential at all.
            signed = request.headers.get("Authorization", "").startswith(sigv4.ALGORITHM)
            if signed and self.admits_without_token(request):
                return OPEN, None
            raise
        if found is None:
            if self.admits_without_token(request):
                return OPEN, None
            raise Unauthorized(self._missing_credential_message(), required_scope=needed.value)
        principal, _session = found
        if not principal.grants(needed):
            raise Forbidden(
                f"the token {principal.name!r} has scope {principal.scope.value!r}; "
                f"{request.method} {rule.rule} needs {needed.value!r}",
                required_scope=needed.value,
                token_scope=principal.scope.value,
            )
        return found

    def _missing_credential_message(self) -> str:
        if self.has_tokens():
            return "an API token is required: send Authorization: Bearer <token>"
        return (
            "this server has no API token yet and admits requests without one only from loopback: "
            "create a token (machinery tokens create --name NAME --scope write) and send it as "
            "Authorization: Bearer <token>"
        )


def install(app: Flask, storage: Storage, settings: AuthSettings) -> Gate:
    """Put the check in front of every route of ``app`` (and a ``WWW-Authenticate`` on its 401s)."""
    gate = Gate(storage, settings)
    app.extensions[_EXTENSION] = gate

    @app.before_request
    def check_credentials() -> None:
        found = gate.authorize(request)
        if found is not None:
            g.machinery_principal, g.machinery_session = found

    @app.after_request
    def challenge(response: Response) -> Response:
        if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
            response.headers["WWW-Authenticate"] = 'Bearer realm="machinery"'
        return response

    return gate


def gate_of(app: Flask) -> Gate:
    gate: Gate = app.extensions[_EXTENSION]
    return gate


def current_principal() -> Principal | None:
    """Whom the current request acts for; None when nobody is signed in.

    On routes that need a scope, the check has already established it. On open routes (console pages,
    health, task callbacks) the request's credential, if any, is looked at now, and one that is not valid
    counts as none.
    """
    if "machinery_principal" not in g:
        try:
            found = gate_of(current_app).authenticate(request)
        except MachineryError:
            found = None
        g.machinery_principal, g.machinery_session = found if found is not None else (None, None)
    principal: Principal | None = g.machinery_principal
    return principal


def current_session() -> Session | None:
    """The console session of the current request (None when it is not authenticated by one)."""
    current_principal()
    session: Session | None = g.machinery_session
    return session

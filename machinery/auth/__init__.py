"""Authentication and authorisation: one check in front of the three front doors.

- The native API (``machinery.api``): ``Authorization: Bearer <token>``; each route's scope is in
  :data:`machinery.auth.access.ROUTE_ACCESS`.
- The AWS Step Functions protocol on ``POST /`` (``machinery.aws``): requests signed with AWS Signature
  Version 4 using the key pair ``machinery tokens create`` prints; the action's scope is in
  :data:`machinery.auth.access.AWS_ACTIONS`. The check runs before the AWS front door sees the request:
  by then :func:`current_principal` says whom it acts for. Authentication failures are raised as
  :class:`~machinery.errors.Unauthorized` / :class:`~machinery.errors.Forbidden`, whose ``aws_type``
  names the error the AWS protocol answers with. :func:`lookup_access_key` resolves a key id to its
  secret and principal for anything the door must verify itself.
- The console at ``/ui/`` (``machinery.web``): its pages and assets are open; it reads the API routes
  with a session cookie. Its sign-in route calls :func:`start_session` with the token the user pasted,
  its sign-out route :func:`end_session`; state-changing requests must send the CSRF token (the
  ``machinery_csrf`` cookie, or :func:`session_csrf_token` rendered into the page) in ``X-CSRF-Token``.
  Its sign-in and sign-out routes need entries in ``ROUTE_ACCESS`` (``Access.PUBLIC``).

``docs/security.md`` describes the model for users.
"""

from __future__ import annotations

from flask import Response, current_app, request

from machinery.auth.access import Access, route_access
from machinery.auth.check import (
    AuthSettings,
    Gate,
    current_principal,
    current_session,
    gate_of,
    install,
    is_loopback,
)
from machinery.auth.sessions import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, Session, Sessions
from machinery.auth.tokens import (
    IssuedToken,
    Principal,
    Scope,
    ServerKeys,
    SigV4Credentials,
    create_token,
    hash_token,
    revoke_token,
)

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Access",
    "AuthSettings",
    "Gate",
    "IssuedToken",
    "Principal",
    "Scope",
    "ServerKeys",
    "Session",
    "SigV4Credentials",
    "create_token",
    "current_principal",
    "current_session",
    "end_session",
    "gate_of",
    "hash_token",
    "install",
    "is_loopback",
    "lookup_access_key",
    "revoke_token",
    "route_access",
    "session_csrf_token",
    "start_session",
]


def start_session(response: Response, token: str) -> Session:
    """Sign the browser in with a token it pasted: set the session and CSRF cookies on ``response``.

    :raises Unauthorized: ``token`` is not a valid API token.
    """
    sessions: Sessions = gate_of(current_app).sessions
    session = sessions.open(token)
    sessions.set_cookies(response, session, secure=request.is_secure)
    return session


def end_session(response: Response) -> None:
    """Sign the browser out: clear both cookies (the token itself stays valid; revoke it to end every
    session)."""
    Sessions.clear_cookies(response)


def session_csrf_token() -> str | None:
    """The CSRF token of the current request's session (None when it is not authenticated by one)."""
    session = current_session()
    return None if session is None else session.csrf_token


def lookup_access_key(access_key_id: str) -> SigV4Credentials | None:
    """The SigV4 secret of an access key id of the current app's storage, and whom it acts for."""
    return gate_of(current_app).lookup_access_key(access_key_id)

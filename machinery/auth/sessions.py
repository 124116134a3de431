"""Console sessions: a signed cookie standing for a token the user pasted once.

The cookie ``machinery_session`` holds the token's id, a CSRF secret and its expiry, signed (itsdangerous,
HMAC-SHA256) with a key derived from the server key; never the token itself. It is ``HttpOnly`` (page
scripts cannot read it), ``SameSite=Strict`` (other sites' pages cannot make the browser send it),
``Secure`` when the request came over HTTPS, and ``Path=/`` (the console reads the same API routes as any
client). A second cookie, ``machinery_csrf``, readable by the page, carries the CSRF secret: every
state-changing request authenticated by the session must echo it in ``X-CSRF-Token``; it is compared
with the value inside the signed session, so a cookie planted by someone else does not help.
Revoking the token ends all its sessions at the next request.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from flask import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from machinery.auth.tokens import Principal, ServerKeys, principal_for_token, principal_of
from machinery.errors import CsrfRejected, Unauthorized
from machinery.storage.base import Storage

SESSION_COOKIE = "machinery_session"
CSRF_COOKIE = "machinery_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Session:
    """An open session: whom it acts for and the CSRF token its state-changing requests must carry."""

    principal: Principal
    csrf_token: str
    cookie: str
    max_age: int


class Sessions:
    """Opens and checks sessions of one app. ``lifetime`` is ``MACHINERY_SESSION_HOURS`` in seconds."""

    def __init__(self, storage: Storage, keys: ServerKeys, lifetime: int) -> None:
        self._storage = storage
        self._keys = keys
        self.lifetime = lifetime

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._keys.derive("session"), salt="machinery.session")

    def open(self, token: str) -> Session:
        """A session for a bearer token the user pasted; :class:`Unauthorized` when it is not one."""
        principal = principal_for_token(self._storage, token.strip())
        if principal is None or principal.token_id is None:
            raise Unauthorized("not a valid API token")
        csrf = secrets.token_urlsafe(24)
        cookie = self._serializer().dumps({"t": principal.token_id, "c": csrf})
        return Session(
            principal=Principal(principal.name, principal.scope, "session", principal.token_id),
            csrf_token=csrf,
            cookie=cookie,
            max_age=self.lifetime,
        )

    def check(self, request: Request) -> Session | None:
        """The session of the request's cookie (None without one).

        :raises Unauthorized: the cookie is forged, expired, or its token was revoked.
        :raises CsrfRejected: a state-changing request without the session's CSRF token.
        """
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            data = self._serializer().loads(cookie, max_age=self.lifetime)
            token_id, csrf = str(data["t"]), str(data["c"])
        except (BadSignature, KeyError, TypeError):
            raise Unauthorized("the session has expired or is not valid; sign in again") from None
        record = self._storage.find_api_token("token_id", token_id)
        if record is None:
            raise Unauthorized("the session's token has been revoked; sign in again")
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), csrf.encode()):
                raise CsrfRejected(
                    f"a request authenticated by a session cookie must carry its CSRF token in {CSRF_HEADER}"
                )
        return Session(principal_of(record, "session"), csrf, cookie, self.lifetime)

    def set_cookies(self, response: Response, session: Session, secure: bool) -> None:
        # The page must read the CSRF token (to send it back in a header); never the session.
        for name, value, http_only in (
            (SESSION_COOKIE, session.cookie, True),
            (CSRF_COOKIE, session.csrf_token, False),
        ):
            response.set_cookie(
                name,
                value,
                max_age=session.max_age,
                path="/",
                secure=secure,
                httponly=http_only,
                samesite="Strict",
            )

    @staticmethod
    def clear_cookies(response: Response) -> None:
        for name in (SESSION_COOKIE, CSRF_COOKIE):
            response.delete_cookie(name, path="/", samesite="Strict")

"""API tokens: how they are made, stored (hashed) and found, and the server key the other credentials
are derived from.

A token is ``mch_`` and 32 random bytes (base64url): 256 bits, printed once by ``machinery tokens create``
and stored only as its SHA-256. A fast hash is the right one here: slow hashes (bcrypt, Argon2) protect
guessable passwords, and nobody can search a 2**256 space, however fast each try is.

Each token also has an AWS Signature Version 4 key pair for the Step Functions protocol. SigV4 proves a
request with an HMAC keyed by the secret access key, so the server needs that secret to verify, which
storing only a hash cannot give. The secret is therefore not stored at all: it is
``HMAC-SHA256(server key, "machinery/sigv4/" + access key id)``, recomputed when a request arrives, and
the token's record holds only the access key id. Session cookies are signed with a key derived the
same way. The server key is ``MACHINERY_SECRET_KEY`` when set (then the database holds nothing that can
sign a request or open a session); otherwise one is generated on first use and kept in storage (then
a copy of the database can sign SigV4 requests and sessions, though it still reveals no bearer token).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass

from machinery.errors import Conflict, FieldIssue, MachineryError, NotFound
from machinery.storage.base import ApiTokenRecord, Storage

TOKEN_PREFIX = "mch_"
_TOKEN_BYTES = 32
_ACCESS_KEY_PREFIX = "MKIA"
#: SigV4 secrets are as long as AWS's (40 characters of base64: 240 bits).
_SIGV4_SECRET_LENGTH = 40
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@-]{0,79}")
_MIN_SECRET_KEY = 32
#: The storage resource kind that holds the generated server key.
_KEY_KIND = "server-key"


class Scope(enum.StrEnum):
    """What a token may do; each scope includes the ones before it (``admin`` ⊃ ``write`` ⊃ ``read``)."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a token (by bearer, session or SigV4), or nobody on an open server.

    :param via: ``bearer``, ``session``, ``sigv4``, or ``open`` (no token exists and the caller is
        admitted by the loopback rule or ``--insecure``).
    """

    name: str
    scope: Scope
    via: str
    token_id: str | None = None

    def grants(self, needed: Scope) -> bool:
        return self.scope.rank >= needed.rank


#: The caller of a server without tokens, admitted by the loopback rule or ``--insecure``.
OPEN = Principal(name="(open server)", scope=Scope.ADMIN, via="open")


@dataclass(frozen=True)
class IssuedToken:
    """A token just made: the only time its secrets exist outside the caller's hands."""

    record: ApiTokenRecord
    token: str
    secret_access_key: str


@dataclass(frozen=True)
class SigV4Credentials:
    """What verifying a SigV4 signature needs: the secret, and whom the request then acts for."""

    access_key_id: str
    secret_access_key: str
    principal: Principal


class InvalidSecretKey(MachineryError):
    """``MACHINERY_SECRET_KEY`` is set but too short to be a key."""

    code = "invalid_secret_key"


class ServerKeys:
    """The server key and the keys derived from it (one per purpose), read from storage once.

    :param configured: ``MACHINERY_SECRET_KEY``; empty to use (or generate) the key kept in storage.
    """

    def __init__(self, storage: Storage, configured: str = "") -> None:
        if configured and len(configured) < _MIN_SECRET_KEY:
            raise InvalidSecretKey(
                f"MACHINERY_SECRET_KEY must be at least {_MIN_SECRET_KEY} characters "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        self._storage = storage
        self._master = configured.encode() if configured else None
        self._lock = threading.Lock()

    def _master_key(self) -> bytes:
        with self._lock:
            if self._master is None:
                # The first process to get here stores its candidate; every process then reads that one.
                candidate = {"value": secrets.token_urlsafe(32)}
                self._storage.insert_resource(_KEY_KIND, "master", candidate)
                stored = self._storage.get_resource(_KEY_KIND, "master") or candidate
                self._master = str(stored["value"]).encode()
            return self._master

    def derive(self, purpose: str, subject: str = "") -> bytes:
        """``HMAC-SHA256(server key, "machinery/<purpose>/<subject>")``."""
        message = f"machinery/{purpose}/{subject}".encode()
        return hmac.new(self._master_key(), message, hashlib.sha256).digest()

    def sigv4_secret(self, access_key_id: str) -> str:
        return base64.b64encode(self.derive("sigv4", access_key_id)).decode()[:_SIGV4_SECRET_LENGTH]


def hash_token(token: str) -> str:
    """How a token is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scope(value: object) -> Scope:
    """A scope from user input; :class:`Conflict` naming the field when it is none of them."""
    try:
        return Scope(str(value))
    except ValueError:
        choices = ", ".join(scope.value for scope in Scope)
        raise Conflict(
            "unknown scope", issues=[FieldIssue("scope", f"must be one of {choices}, got {value!r}")]
        ) from None


def create_token(storage: Storage, keys: ServerKeys, name: object, scope: object, now: float) -> IssuedToken:
    """Make a token named ``name`` with ``scope``; :class:`Conflict` for a bad or taken name or scope."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.startswith("tok_"):
        raise Conflict(
            "invalid token name",
            issues=[
                FieldIssue(
                    "name",
                    "must be 1 to 80 letters, digits, spaces or ._@- starting with a letter or digit, "
                    "and not start with tok_",
                )
            ],
        )
    checked_scope = parse_scope(scope)
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    access_key_id = _ACCESS_KEY_PREFIX + base64.b32encode(secrets.token_bytes(10)).decode()
    record = ApiTokenRecord(
        token_id="tok_" + secrets.token_hex(6),
        name=name,
        scope=checked_scope.value,
        token_hash=hash_token(token),
        access_key_id=access_key_id,
        created_at=now,
    )
    if not storage.create_api_token(record):
        raise Conflict(
            f"a token named {name!r} exists", issues=[FieldIssue("name", "is taken by another token")]
        )
    return IssuedToken(record, token, keys.sigv4_secret(access_key_id))


def find_token(storage: Storage, ref: str) -> ApiTokenRecord:
    """A token by id or name; :class:`NotFound` when there is none."""
    found = storage.find_api_token("token_id", ref) or storage.find_api_token("name", ref)
    if found is None:
        raise NotFound(f"no token {ref!r}", issues=[FieldIssue("token", "names no token (id or name)")])
    return found


def revoke_token(storage: Storage, ref: str) -> ApiTokenRecord:
    """Delete a token by id or name: its bearer value, sessions and SigV4 keys stop working at once."""
    record = find_token(storage, ref)
    storage.delete_api_token(record.token_id)
    return record


def principal_of(record: ApiTokenRecord, via: str) -> Principal:
    return Principal(name=record.name, scope=Scope(record.scope), via=via, token_id=record.token_id)


def principal_for_token(storage: Storage, token: str) -> Principal | None:
    """Whom a bearer token acts for; None when no stored token has this value."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    record = storage.find_api_token("token_hash", hash_token(token))
    return None if record is None else principal_of(record, "bearer")


def lookup_access_key(storage: Storage, keys: ServerKeys, access_key_id: str) -> SigV4Credentials | None:
    """The SigV4 secret of ``access_key_id`` and whom it acts for; None when no token has this key.

    Called by the check in front of the AWS protocol (:mod:`machinery.auth.sigv4`); exposed so that the
    AWS front door can resolve a key it meets elsewhere (a presigned request, say).
    """
    record = storage.find_api_token("access_key_id", access_key_id)
    if record is None:
        return None
    return SigV4Credentials(access_key_id, keys.sigv4_secret(access_key_id), principal_of(record, "sigv4"))


def token_json(record: ApiTokenRecord) -> dict[str, object]:
    """A token as the API and ``machinery tokens list`` show it: never its hash."""
    from machinery.engine.context import iso_time

    return {
        "token_id": record.token_id,
        "name": record.name,
        "scope": record.scope,
        "access_key_id": record.access_key_id,
        "created_at": iso_time(record.created_at),
    }


def issued_json(issued: IssuedToken) -> dict[str, object]:
    """A token just made, with its secrets (shown this once)."""
    return {
        **token_json(issued.record),
        "token": issued.token,
        "secret_access_key": issued.secret_access_key,
    }

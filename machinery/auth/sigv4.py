"""Verifying AWS Signature Version 4 (header form), as the Step Functions clients sign their requests.

The signature is recomputed from the request as received (method, path, query, the signed headers and
the body's SHA-256) with the secret of the access key it names, and compared in constant time. The
region is whatever the client uses (a local server has none of its own); the service must be
``states``; the signing time must be within :data:`MAX_SKEW_SECONDS` of the server's clock, as AWS
requires. Presigned URLs (the query-string form) are not accepted: no Step Functions client uses them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from machinery.auth.tokens import Principal, SigV4Credentials
from machinery.errors import InvalidSignature, Unauthorized

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "states"
MAX_SKEW_SECONDS = 15 * 60
_FIELD = re.compile(r"\s*(Credential|SignedHeaders|Signature)=([^,\s]+)\s*")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that SigV4 signs (as the server received them)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str


def _parse(header: str) -> _Authorization:
    algorithm, _, rest = header.partition(" ")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        match = _FIELD.fullmatch(part)
        if match is None:
            raise InvalidSignature(f"malformed {ALGORITHM} Authorization header")
        fields[match.group(1)] = match.group(2)
    if algorithm != ALGORITHM or set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise InvalidSignature("the Authorization header needs Credential, SignedHeaders and Signature")
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise InvalidSignature("the credential scope must be <key>/<date>/<region>/<service>/aws4_request")
    signed = fields["SignedHeaders"].split(";")
    return _Authorization(scope[0], scope[1], scope[2], scope[3], signed, fields["Signature"])


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_request(request: SignedRequest, signed_headers: list[str]) -> str:
    """The canonical request of the SigV4 specification (one URI encoding: the JSON protocols' path is
    ``/``, where single and double encoding agree)."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    canonical_headers = "".join(
        f"{name}:{_SPACES.sub(' ', headers.get(name, '').strip())}\n" for name in signed_headers
    )
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(request.query))
    payload = headers.get("x-amz-content-sha256") or hashlib.sha256(request.body).hexdigest()
    return "\n".join(
        [
            request.method,
            quote(request.path or "/", safe="/~"),
            query,
            canonical_headers,
            ";".join(signed_headers),
            payload,
        ]
    )


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(secret: str, request: SignedRequest, auth: _Authorization, amz_date: str) -> str:
    scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
    digest = hashlib.sha256(canonical_request(request, auth.signed_headers).encode()).hexdigest()
    to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
    key = _signing_key(secret, auth.date, auth.region, auth.service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def verify(
    request: SignedRequest,
    lookup: Callable[[str], SigV4Credentials | None],
    now: float,
) -> Principal:
    """Whom a SigV4-signed request acts for.

    :raises Unauthorized: the access key names no token.
    :raises InvalidSignature: the header is malformed, the signature does not match, or it is older (or
        newer) than :data:`MAX_SKEW_SECONDS`.
    """
    auth = _parse(request.headers.get("Authorization", ""))
    lowered = {name.lower(): value for name, value in request.headers.items()}
    if "host" not in auth.signed_headers:
        raise InvalidSignature("the signed headers must include host")
    if auth.service != SERVICE:
        raise InvalidSignature(f"the credential scope names service {auth.service!r}, not {SERVICE!r}")
    amz_date = lowered.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise InvalidSignature("X-Amz-Date must be the signing time as YYYYMMDDTHHMMSSZ") from None
    if amz_date[:8] != auth.date:
        raise InvalidSignature("the credential scope's date is not the day of X-Amz-Date")
    if abs(now - signed_at) > MAX_SKEW_SECONDS:
        raise InvalidSignature(
            "Signature expired: X-Amz-Date is more than 15 minutes from the server's clock"
        )
    credentials = lookup(auth.access_key_id)
    if credentials is None:
        raise Unauthorized("The security token included in the request is invalid: unknown access key id")
    expected = signature(credentials.secret_access_key, request, auth, amz_date)
    if not hmac.compare_digest(expected, auth.signature):
        raise InvalidSignature(
            "The request signature we calculated does not match the signature you provided"
        )
    return credentials.principal

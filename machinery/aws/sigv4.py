"""SigV4: who is asking (region and account from the credential scope) and, with keys, proof of it.

``Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/states/aws4_request,
SignedHeaders=..., Signature=...``. The region is the scope's; the account is the access key when it is
12 digits (so a test can address several accounts), else the configured default. A signature is checked
only when the server knows secret keys (``SecretLookup``); otherwise any or no signature is accepted, as
a local endpoint is usually driven with dummy credentials.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.datastructures import Headers

from machinery.aws.errors import AwsError

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request\s*,\s*SignedHeaders=(?P<headers>[a-z0-9;_.-]+)\s*,\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})\s*$"
)

#: The secret key of an access key id, or ``None`` when the key is unknown.
SecretLookup = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Caller:
    access_key: str | None
    region: str
    account: str


def caller(headers: Headers, default_region: str, default_account: str) -> Caller:
    """Region and account of a request from its ``Authorization`` header (defaults without one)."""
    match = _AUTHORIZATION.match(headers.get("Authorization", ""))
    if match is None:
        return Caller(None, default_region, default_account)
    key = match["key"]
    account = key if key.isdigit() and len(key) == 12 else default_account
    return Caller(key, match["region"], account)


def verify(method: str, url: str, headers: Headers, body: bytes, secret_for: SecretLookup) -> None:
    """Check the request's signature against the secret of its access key.

    :raises AwsError: ``MissingAuthenticationToken`` (no SigV4 header), ``UnrecognizedClientException``
        (an unknown key), ``InvalidSignatureException`` (a signature that does not match).
    """
    match = _AUTHORIZATION.match(headers.get("Authorization", ""))
    if match is None:
        raise AwsError("MissingAuthenticationToken", "Request is missing Authentication Token", status=403)
    secret = secret_for(match["key"])
    if secret is None:
        raise AwsError(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            status=403,
        )
    amz_date = headers.get("X-Amz-Date", "")
    if not amz_date.startswith(match["date"]):
        raise AwsError("InvalidSignatureException", "X-Amz-Date does not match the credential scope.", 403)
    signed = match["headers"].split(";")
    request = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={name: headers.get(name, "") for name in signed if name != "host"},
    )
    request.headers["Host"] = headers.get("Host", "")
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(match["key"], secret), match["service"], match["region"])
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, match["signature"]):
        raise AwsError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
            status=403,
        )

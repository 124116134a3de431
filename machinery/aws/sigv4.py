"""SigV4: who is asking, for the ARNs of the answer (region and account from the credential scope).

``Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/states/aws4_request,
SignedHeaders=..., Signature=...``. The region is the scope's; the account is the access key when it is
12 digits (so a test can address several accounts), else the configured default. Whether the signature
is right is not this module's question: the one check in front of every front door
(:mod:`machinery.auth`) verifies it against the API tokens' keys, when any exist, before the request
reaches the AWS API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from werkzeug.datastructures import Headers

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request\s*,\s*SignedHeaders=(?P<headers>[a-z0-9;_.-]+)\s*,\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})\s*$"
)


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

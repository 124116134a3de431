"""SigV4: the caller's region and account, and signature checks when secrets are known."""

from __future__ import annotations

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.datastructures import Headers

from machinery.aws.errors import AwsError
from machinery.aws.sigv4 import caller, verify

URL = "http://127.0.0.1:8080/"
BODY = b'{"maxResults": 1}'


def signed(key: str = "AKIDEXAMPLE", secret: str = "s3cret", region: str = "eu-north-1") -> Headers:
    request = AWSRequest(
        method="POST",
        url=URL,
        data=BODY,
        headers={
            "X-Amz-Target": "AWSStepFunctions.ListStateMachines",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    SigV4Auth(Credentials(key, secret), "states", region).add_auth(request)
    headers = Headers(dict(request.headers.items()))
    headers["Host"] = "127.0.0.1:8080"
    return headers


def test_caller_from_the_credential_scope() -> None:
    who = caller(signed(), "us-east-1", "000000000000")
    assert (who.access_key, who.region, who.account) == ("AKIDEXAMPLE", "eu-north-1", "000000000000")
    assert caller(signed(key="123456789012"), "us-east-1", "000000000000").account == "123456789012"
    assert caller(Headers(), "us-east-1", "111111111111").region == "us-east-1"


def test_a_good_signature_passes() -> None:
    verify("POST", URL, signed(), BODY, {"AKIDEXAMPLE": "s3cret"}.get)


@pytest.mark.parametrize(
    ("headers", "body", "secrets", "name"),
    [
        (signed(), b'{"maxResults": 2}', {"AKIDEXAMPLE": "s3cret"}, "InvalidSignatureException"),
        (signed(secret="other"), BODY, {"AKIDEXAMPLE": "s3cret"}, "InvalidSignatureException"),
        (signed(), BODY, {}, "UnrecognizedClientException"),
        (Headers(), BODY, {"AKIDEXAMPLE": "s3cret"}, "MissingAuthenticationToken"),
    ],
)
def test_bad_signatures_are_refused(
    headers: Headers, body: bytes, secrets: dict[str, str], name: str
) -> None:
    with pytest.raises(AwsError) as caught:
        verify("POST", URL, headers, body, secrets.get)
    assert caught.value.name == name and caught.value.status == 403

"""Helpers of the AWS API tests: a machinery server for boto3 and the AWS CLI, and a flaky service."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from examples.demo import machinery_process
from tests.aws_shapes import check_raw_output

ROLE = "arn:aws:iam::123456789012:role/machinery-tests"
REGION = "eu-west-1"
#: A 12-digit access key is the account of every ARN.
ACCOUNT = "123456789012"


@contextmanager
def aws_server(directory: Path, settings: dict[str, str] | None = None) -> Iterator[str]:
    """``machinery serve`` on a free port (SQLite under ``directory``); yields its URL."""
    environment = {"MACHINERY_TIME_SCALE": "0", "MACHINERY_POLL_INTERVAL": "0.2", **(settings or {})}
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "server.log").open("w") as log, ExitStack() as stack:
        yield stack.enter_context(
            machinery_process(f"sqlite:///{directory / 'db.sqlite'}", log, settings=environment)
        )


def sfn_client(endpoint: str, max_pool_connections: int = 10) -> Any:
    """boto3 as a script written for AWS would build it, pointed at machinery (``endpoint_url``).

    Every successful answer it receives is checked against botocore's output shape before boto3 parses
    it (boto3 itself ignores members the model does not know and types it does not expect).
    """
    client = boto3.client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCOUNT,
        aws_secret_access_key="not-checked",
        config=Config(
            inject_host_prefix=False,
            retries={"max_attempts": 1, "mode": "standard"},
            max_pool_connections=max_pool_connections,
        ),
    )
    client.meta.events.register("before-parse.sfn.*", _check_answer)
    return client


def _check_answer(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    if response_dict["status_code"] == 200:
        check_raw_output(operation_model.name, response_dict["body"])


def wait_until_done(sfn: Any, arn: str, timeout: float = 20.0) -> dict[str, Any]:
    """DescribeExecution until the execution has ended (a client of AWS polls the same way)."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


class FlakyService:
    """A loopback service: ``POST`` echoes ``{"done": <input>}``, or answers 500 with the error ``Flaky``
    while the input's JSON is in :attr:`failing`. Counts calls by input."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = json.dumps(json.loads(body or b"null"), sort_keys=True)
                with service._lock:
                    service.calls[key] += 1
                    fail = key in service.failing
                reply = {"error": "Flaky", "cause": f"failed {key}"} if fail else {"done": json.loads(key)}
                raw = json.dumps(reply).encode()
                self.send_response(500 if fail else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


Definition = dict[str, Any]
ClientFactory = Callable[[], Any]

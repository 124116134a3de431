"""The AWS CLI (``awscli`` from PyPI) drives machinery unchanged: only ``--endpoint-url`` differs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.aws_helpers import ACCOUNT, REGION, ROLE, aws_server

AWS = Path(sys.executable).with_name("aws")
DEFINITION = {
    "StartAt": "Greet",
    "States": {
        "Greet": {
            "Type": "Pass",
            "Parameters": {"greeting.$": "States.Format('hello {}', $.who)"},
            "End": True,
        }
    },
}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with aws_server(tmp_path_factory.mktemp("aws-cli")) as url:
        yield url


def aws(endpoint: str, *arguments: str) -> Any:
    """Run ``aws stepfunctions ...`` against machinery; its JSON output."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": ACCOUNT,
        "AWS_SECRET_ACCESS_KEY": "not-checked",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_PAGER": "",
    }
    completed = subprocess.run(
        [str(AWS), "stepfunctions", *arguments, "--endpoint-url", endpoint, "--output", "json"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout) if completed.stdout.strip() else None


@pytest.mark.timeout(300)
def test_the_aws_cli(endpoint: str) -> None:
    created = aws(
        endpoint, "create-state-machine", "--name", "cli-greeter", "--definition", json.dumps(DEFINITION),
        "--role-arn", ROLE,
    )  # fmt: skip
    machine = created["stateMachineArn"]
    assert machine == f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:cli-greeter"
    started = [
        aws(
            endpoint,
            "start-execution",
            "--state-machine-arn",
            machine,
            "--input",
            json.dumps({"who": f"w{i}"}),
        )
        for i in range(3)
    ]
    deadline = time.monotonic() + 30
    while True:  # each CLI run takes a while: the executions (Pass states) are over by the first look
        described = aws(endpoint, "describe-execution", "--execution-arn", started[-1]["executionArn"])
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            break
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"greeting": "hello w2"}
    history = aws(endpoint, "get-execution-history", "--execution-arn", started[0]["executionArn"])
    assert [event["type"] for event in history["events"]] == [
        "ExecutionStarted", "PassStateEntered", "PassStateExited", "ExecutionSucceeded",
    ]  # fmt: skip
    # The CLI's automatic pagination: pages of two, followed to the end by the CLI itself.
    listed = aws(endpoint, "list-executions", "--state-machine-arn", machine, "--page-size", "2")
    assert sorted(e["executionArn"] for e in listed["executions"]) == sorted(
        e["executionArn"] for e in started
    )
    assert "nextToken" not in listed and "NextToken" not in listed
    first = aws(endpoint, "list-executions", "--state-machine-arn", machine, "--max-items", "2")
    assert len(first["executions"]) == 2 and first["NextToken"]
    rest = aws(
        endpoint, "list-executions", "--state-machine-arn", machine, "--starting-token", first["NextToken"]
    )
    assert len(rest["executions"]) == 1
    assert {e["executionArn"] for e in first["executions"] + rest["executions"]} == {
        e["executionArn"] for e in started
    }

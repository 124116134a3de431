"""The client commands of ``machinery`` in a subprocess against a real server: ``run`` and ``watch`` with
their output and exit statuses, the resource commands, ``--json``, errors, completion, and what a
terminal gets (a live display) against what a pipe gets (plain lines without control codes)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from examples.demo import REPOSITORY
from machinery.client import Client

EXPECTED = '{"message": "! GNINROM EHT NI ESIR LLIW NUS EHT", "space_count": 7}\n'
FAIL = {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Oops", "Cause": "on purpose"}}}
WAIT_FOREVER = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
#: Seconds a command may take (it talks to a server on loopback).
PATIENCE = 60
ESCAPE = "\x1b"


@pytest.fixture(scope="module")
def server(seeded_server: str) -> str:
    return seeded_server


def environment(server: str) -> dict[str, str]:
    """The caller's environment without anything that would force colours, and the server's URL."""
    kept = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR")}
    return {**kept, "MACHINERY_URL": server}


def machinery(server: str, *arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    finished = subprocess.run(
        [sys.executable, "-m", "machinery", *arguments],
        cwd=REPOSITORY,
        env=environment(server),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert ESCAPE not in finished.stdout + finished.stderr, "terminal control codes in piped output"
    return finished


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def define(server: str, definition: dict[str, object]) -> str:
    name = unique("flow")
    with Client(server) as client:
        client.create_workflow({"name": name, "definition": definition})
    return name


def test_run_prints_the_output_and_shows_each_state(server: str) -> None:
    finished = machinery(server, "run", "process-text", "--data", "@examples/definitions/event-text.json")
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == EXPECTED
    progress = finished.stderr.splitlines()
    steps = [line.split()[:2] for line in progress if line.startswith(("entered", "finished"))]
    assert steps == [
        ["entered", "upper"],
        ["finished", "upper"],
        ["entered", "reverse"],
        ["finished", "reverse"],
        ["entered", "space-counter"],
        ["finished", "space-counter"],
    ]
    assert progress[0].startswith("event ") and progress[-1].startswith("SUCCEEDED")


@pytest.mark.parametrize(
    "arguments, stdin",
    [
        (["--data", '{"message": "The Sun will rise in the morning !"}'], None),
        (["--data", "-"], '{"data": {"message": "The Sun will rise in the morning !"}}'),
        (["--quiet", "--data", "@examples/definitions/event-text.json"], None),
    ],
    ids=["inline", "stdin", "quiet"],
)
def test_run_takes_the_data_inline_or_from_stdin(
    server: str, arguments: list[str], stdin: str | None
) -> None:
    finished = machinery(server, "run", "process-text", *arguments, stdin=stdin)
    assert (finished.returncode, finished.stdout) == (0, EXPECTED), finished.stderr
    if "--quiet" in arguments:
        assert finished.stderr == ""


def test_run_of_a_failing_workflow_exits_non_zero_with_the_error(server: str) -> None:
    finished = machinery(server, "run", define(server, FAIL))
    assert finished.returncode == 1
    assert finished.stdout == ""
    assert "error: FAILED Oops: on purpose" in finished.stderr
    assert finished.stderr.splitlines()[-2].startswith("FAILED")


def test_run_json_prints_the_record(server: str) -> None:
    succeeded = machinery(
        server, "run", "process-text", "--json", "--data", "@examples/definitions/event-text.json"
    )
    record = json.loads(succeeded.stdout)
    assert (succeeded.returncode, record["status"], record["output"]) == (
        0,
        "SUCCEEDED",
        json.loads(EXPECTED),
    )
    failed = machinery(server, "run", define(server, FAIL), "--json")
    record = json.loads(failed.stdout)
    assert (failed.returncode, record["status"], record["error"], record["cause"]) == (
        1,
        "FAILED",
        "Oops",
        "on purpose",
    )


def test_run_no_wait_then_watch_then_stop(server: str) -> None:
    started = machinery(server, "run", define(server, WAIT_FOREVER), "--no-wait")
    assert started.returncode == 0, started.stderr
    event_id = started.stdout.strip()
    with Client(server) as client:
        assert client.get_event(event_id).running

    watcher = subprocess.Popen(
        [sys.executable, "-m", "machinery", "watch", event_id],
        cwd=REPOSITORY,
        env=environment(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stderr is not None
        assert watcher.stderr.readline().startswith(f"event {event_id}")
        assert watcher.stderr.readline().split()[:2] == ["entered", "Wait"]
        stopped = machinery(
            server, "events", "stop", event_id, "--error", "Halt", "--cause", "by the test", "--json"
        )
        assert json.loads(stopped.stdout)["status"] == "ABORTED"
        out, err = watcher.communicate(timeout=PATIENCE)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
    assert watcher.returncode == 1 and out == ""
    assert "error: ABORTED Halt: by the test" in err

    again = machinery(server, "events", "stop", event_id)
    assert again.returncode == 3 and "409" in again.stderr


def test_services_commands(server: str, tmp_path: Path) -> None:
    name = unique("echo")
    definition = tmp_path / "service.json"
    definition.write_text(json.dumps({"name": name, "address": "http://127.0.0.1:9/x"}))
    applied = machinery(server, "services", "apply", "-f", str(definition), "--json")
    assert applied.returncode == 0, applied.stderr
    [record] = json.loads(applied.stdout)
    assert record["name"] == name

    listing = machinery(server, "services", "list")
    header, *rows = listing.stdout.splitlines()
    assert header.split("\t") == ["NAME", "ADDRESS", "INPUTS", "OUTPUTS", "UPDATED"]
    assert [name, "http://127.0.0.1:9/x"] in [row.split("\t")[:2] for row in rows]
    assert name in {s["name"] for s in json.loads(machinery(server, "services", "list", "--json").stdout)}

    shown = machinery(server, "services", "get", record["service_id"])
    assert f"name\t{name}" in shown.stdout.splitlines()
    deleted = machinery(server, "services", "delete", name)
    assert (deleted.returncode, deleted.stderr.strip()) == (0, f"deleted service {name}")
    assert machinery(server, "services", "get", name).returncode == 3


def test_workflows_commands(server: str, tmp_path: Path) -> None:
    name = unique("flow")
    machine = tmp_path / "machine.asl.json"
    machine.write_text(json.dumps(FAIL))
    first = machinery(server, "workflows", "apply", "-f", str(machine), "--name", name)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[1].split("\t")[:2] == [name, "1"]
    second = machinery(
        server,
        "workflows",
        "apply",
        "-f",
        "-",
        "--json",
        stdin=json.dumps({"name": name, "definition": WAIT_FOREVER}),
    )
    assert json.loads(second.stdout)[0]["version"] == 2

    versions = machinery(server, "workflows", "versions", name).stdout.splitlines()
    assert [row.split("\t")[0] for row in versions] == ["VERSION", "1", "2"]
    shown = json.loads(machinery(server, "workflows", "get", name, "--version", "1", "--json").stdout)
    assert shown["definition"]["States"]["Boom"]["Type"] == "Fail"
    assert name in machinery(server, "workflows", "list").stdout
    assert machinery(server, "workflows", "delete", name).returncode == 0
    assert name not in machinery(server, "workflows", "list").stdout


def test_events_list_get_history(server: str) -> None:
    flow = define(server, FAIL)
    with Client(server) as client:
        started = [client.start_event(flow, {"n": n}).event_id for n in range(3)]
    listing = machinery(server, "events", "list", "--workflow", flow, "--limit", "2")
    assert [row.split("\t")[0] for row in listing.stdout.splitlines()[1:]] == started[:0:-1]
    every = json.loads(machinery(server, "events", "list", "--workflow", flow, "--all", "--json").stdout)
    assert [e["event_id"] for e in every] == started[::-1]

    shown = machinery(server, "events", "get", started[0]).stdout.splitlines()
    assert "status\tFAILED" in shown and "error\tOops" in shown
    history = machinery(server, "events", "history", started[0]).stdout.splitlines()
    assert [row.split("\t")[2] for row in history] == [
        "TYPE",
        "ExecutionStarted",
        "FailStateEntered",
        "ExecutionFailed",
    ]
    newest = json.loads(
        machinery(server, "events", "history", started[0], "--reverse", "--limit", "1", "--json").stdout
    )
    assert [e["type"] for e in newest] == ["ExecutionFailed"]


def test_refusals_exit_3_with_the_problem(server: str) -> None:
    missing = machinery(server, "run", "no-such-workflow")
    assert missing.returncode == 3 and missing.stderr.startswith("error: 404")
    as_json = machinery(server, "workflows", "get", "no-such-workflow", "--json")
    problem = json.loads(as_json.stderr)
    assert (as_json.returncode, problem["status"]) == (3, 404) and problem["detail"]

    invalid = machinery(server, "run", "process-text", "--data", '{"text": "no message"}')
    assert invalid.returncode == 3 and "422" in invalid.stderr
    unreachable = machinery("http://127.0.0.1:9", "services", "list")
    assert unreachable.returncode == 3 and "error:" in unreachable.stderr


@pytest.mark.parametrize(
    "arguments", [["--data", "{not json"], ["--data", "@/no/such/file.json"], ["--url", "ftp://x"]]
)
def test_bad_arguments_are_usage_errors(server: str, arguments: list[str]) -> None:
    finished = machinery(server, "run", "process-text", *arguments)
    assert finished.returncode == 2 and "Error" in finished.stderr and "Traceback" not in finished.stderr


def test_shell_completion_offers_names_from_the_server(server: str) -> None:
    script = machinery(server, "completion", "bash")
    assert "_MACHINERY_COMPLETE=bash_complete" in script.stdout
    completion = subprocess.run(
        [sys.executable, "-m", "machinery"],
        cwd=REPOSITORY,
        env={
            **environment(server),
            "_MACHINERY_COMPLETE": "bash_complete",
            "COMP_WORDS": "machinery run proc",
            "COMP_CWORD": "2",
        },
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=True,
    )
    assert "plain,process-text" in completion.stdout.splitlines()


def test_a_terminal_gets_a_live_display(server: str) -> None:
    """In a pseudo-terminal the progress is drawn with control codes and ends with every state done."""
    leader, follower = pty.openpty()
    command = [
        sys.executable,
        "-m",
        "machinery",
        "run",
        "process-text",
        "--data",
        "@examples/definitions/event-text.json",
    ]
    process = subprocess.Popen(
        command,
        cwd=REPOSITORY,
        env={**environment(server), "TERM": "xterm-256color", "COLUMNS": "100"},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    assert process.wait(PATIENCE) == 0
    text = shown.decode()
    assert ESCAPE in text
    for state in ("upper", "reverse", "space-counter", "SUCCEEDED", '"space_count": 7'):
        assert state in text


def test_events_redrive_follows_what_runs_again(server: str) -> None:
    definition = {"StartAt": "Upper", "States": {"Upper": {"Type": "Task", "Resource": "upper", "End": True}}}
    flow = define(server, definition)
    failed = machinery(server, "run", flow, "--data", '{"text": "no message"}', "--json")
    assert failed.returncode == 1
    event_id = json.loads(failed.stdout)["event_id"]

    redriven = machinery(server, "events", "redrive", event_id, "--input", '{"message": "hi"}')
    assert redriven.returncode == 0, redriven.stderr
    assert redriven.stdout == '{"message": "HI"}\n'
    steps = [
        line.split()[:2] for line in redriven.stderr.splitlines() if line.startswith(("entered", "finished"))
    ]
    assert steps == [["entered", "Upper"], ["finished", "Upper"]]  # only what ran again
    again = machinery(server, "events", "redrive", event_id)
    assert again.returncode == 3 and "409" in again.stderr

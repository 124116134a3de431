"""``machinery tokens``, ``machinery purge`` and ``serve``'s exposure rule, run as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from examples.demo import REPOSITORY, free_port, wait_until_healthy


def machinery(*args: str, database: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "machinery", *args, "--database-url", f"sqlite:///{database}"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


def call(method: str, url: str, token: str | None = None, document: Any = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} if document is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if document is None else json.dumps(document).encode()
    prepared = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            status, body = error.code, error.read()
    return status, json.loads(body) if body else None


@contextmanager
def serving(database: Path, log: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    command = [sys.executable, "-m", "machinery", "serve", "--port", str(port)]
    command += ["--database-url", f"sqlite:///{database}", *args]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=REPOSITORY, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_tokens_are_created_listed_and_revoked(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    empty = machinery("tokens", "list", database=database).stdout
    assert "no tokens" in empty

    made = machinery("tokens", "create", "--name", "ci", "--scope", "write", database=database).stdout
    token = re.search(r"token\s+(mch_\S+)", made)
    key_id = re.search(r"access key id\s+(MKIA\S+)", made)
    secret = re.search(r"secret access key\s+(\S+)", made)
    assert token and key_id and secret, made
    assert "not shown again" in made

    listed = machinery("tokens", "list", database=database).stdout
    assert "ci" in listed and "write" in listed and key_id.group(1) in listed
    assert token.group(1) not in listed and secret.group(1) not in listed
    as_json = json.loads(machinery("tokens", "list", "--json", database=database).stdout)
    assert [(t["name"], t["scope"]) for t in as_json["tokens"]] == [("ci", "write")]
    assert token.group(1).encode() not in database.read_bytes()

    again = machinery("tokens", "create", "--name", "ci", database=database, check=False)
    assert again.returncode == 1 and "is taken" in again.stderr
    wrong = machinery("tokens", "create", "--name", "x", "--scope", "root", database=database, check=False)
    assert wrong.returncode == 2 and "root" in wrong.stderr

    made_json = json.loads(machinery("tokens", "create", "--name", "ops", "--json", database=database).stdout)
    assert made_json["scope"] == "read" and made_json["token"].startswith("mch_")

    revoked = machinery("tokens", "revoke", "ci", database=database).stdout
    assert "revoked token 'ci'" in revoked
    missing = machinery("tokens", "revoke", "ci", database=database, check=False)
    assert missing.returncode == 1 and "no token 'ci'" in missing.stderr
    assert [
        t["name"]
        for t in json.loads(machinery("tokens", "list", "--json", database=database).stdout)["tokens"]
    ] == ["ops"]


def test_serving_beyond_loopback_needs_a_token_or_insecure(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    with serving(database, tmp_path / "refused.log", "--host", "0.0.0.0") as (_base, process):
        assert process.wait(60) == 1
    refusal = (tmp_path / "refused.log").read_text()
    assert "refusing to serve on 0.0.0.0 without an API token" in refusal and "Traceback" not in refusal

    with serving(database, tmp_path / "insecure.log", "--host", "0.0.0.0", "--insecure") as (base, process):
        wait_until_healthy(base, process)
        assert call("GET", f"{base}/s")[0] == 200
    assert "--insecure" in (tmp_path / "insecure.log").read_text()

    made = json.loads(
        machinery("tokens", "create", "--name", "ops", "--scope", "write", "--json", database=database).stdout
    )
    with serving(database, tmp_path / "tokens.log", "--host", "0.0.0.0") as (base, process):
        wait_until_healthy(base, process)
        status, body = call("GET", f"{base}/s")
        assert status == 401 and "Bearer" in json.dumps(body)
        assert call("GET", f"{base}/s", made["token"])[0] == 200
        definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
        assert call("POST", f"{base}/w", made["token"], {"name": "p", "definition": definition})[0] == 201
        assert call("GET", f"{base}/tokens", made["token"])[0] == 403


def test_purge_deletes_finished_executions(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    with serving(database, tmp_path / "server.log") as (base, process):
        wait_until_healthy(base, process)
        definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
        assert call("POST", f"{base}/w", None, {"name": "p", "definition": definition})[0] == 201
        events = [call("POST", f"{base}/e/p", None, {"n": n})[1]["event_id"] for n in range(3)]
        wait = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
        assert call("POST", f"{base}/w", None, {"name": "w", "definition": wait})[0] == 201
        running = call("POST", f"{base}/e/w?wait=0", None, {})[1]["event_id"]

    kept = machinery("purge", "--before", "2000-01-01", database=database).stdout
    assert "deleted 0 finished executions" in kept
    done = machinery("purge", "--before", "2999-01-01T00:00:00Z", database=database).stdout
    assert "deleted 3 finished executions (finished before 2999-01-01T00:00:00Z)" in done
    assert "deleted 0" in machinery("purge", "--before", "2999-01-01", database=database).stdout
    wrong = machinery("purge", "--before", "last tuesday", database=database, check=False)
    assert wrong.returncode == 2 and "not a date" in wrong.stderr

    with serving(database, tmp_path / "after.log") as (base, process):
        wait_until_healthy(base, process)
        for event_id in events:
            assert call("GET", f"{base}/e/{event_id}")[0] == 404
        assert call("GET", f"{base}/e/{running}")[1]["status"] == "RUNNING"


@pytest.mark.parametrize("command", [["tokens", "--help"], ["purge", "--help"], ["serve", "--help"]])
def test_help_explains_the_commands(command: list[str]) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "machinery", *command],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {"tokens": "stored hashed", "purge": "MACHINERY_RETENTION_DAYS", "serve": "--insecure"}[
        command[0]
    ] in shown

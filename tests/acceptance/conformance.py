"""Run the AWS-recorded ASL conformance cases against a real machinery server.

The cases (``../shared/asl-conformance`` next to the repository, see its README) pair a definition and an
input with what AWS Step Functions produced. This module starts one ``machinery serve`` subprocess and a
stub of the Lambda Invoke API serving the eight handlers the cases name, runs every case over HTTP in a
thread pool and compares outcomes as the README says. ``python -m tests.acceptance.conformance`` prints
every failure in detail (add ``-k text`` to select cases by id).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from examples.demo import DemoError, machinery_process
from tests.shared import SHARED

REPOSITORY = Path(__file__).resolve().parents[2]
CASES_DIRECTORY = SHARED / "asl-conformance"
CASE_FILES = ("cases.pure.json", "cases.lambda.json")
CASE_PATHS = tuple(CASES_DIRECTORY / name for name in CASE_FILES)
JSONATA_KEYS = frozenset({"QueryLanguage", "Assign", "Output", "Arguments"})
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ISO_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})"
#: A timestamp inside a message may be one a user gave, offset or not (the invalid ones are the point).
_ANY_ISO_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
_HTTP_DATE = r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT"
_ARN_PART = r"[^:\s]+"
#: What each placeholder of the recording stands for: a non-empty value of that kind (a regular
#: expression its text must match whole). Whole-string placeholders are the README's bare words.
WHOLE_PLACEHOLDERS: dict[str, str] = {
    "timestamp": f"{_ISO_TIME}|\\d+(?:\\.\\d+)?",
    "date": f"{_ISO_TIME}|{_HTTP_DATE}",
    "start-time": _ISO_TIME,
    "entered-time": _ISO_TIME,
    "snf_role_arn": r"arn:aws[a-z-]*:iam::\d{12}:role/\S+",
    "generated-uuid": _UUID,
    "map_run_arn": r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:mapRun:\S+",
    "RequestId": r"\S+",
    "x-amzn-RequestId": r"\S+",
    "X-Amzn-Trace-Id": r"\S+",
}
#: Placeholders inside strings, by the name they are written with (``<uuid:1>``, ``<ArnPart_0idx>``):
#: the kind's expression, and whether each numbered one must be the same value everywhere in a case.
_INNER: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    (re.compile(r"uuid:\d+"), _UUID, True),
    (re.compile(r"(?:Exec|MapRun)?ArnPart\d*_\d+idx"), _ARN_PART, True),
    (re.compile(r"json-input:\d+"), r".+", True),
    (re.compile(r"region"), r"[a-z0-9-]+", False),
    (re.compile(r"partition"), r"aws[a-z-]*", False),
    (re.compile(r"timestamp|start-time|entered-time"), f"{_ANY_ISO_TIME}|\\d+(?:\\.\\d+)?", False),
    (re.compile(r"lambda[_-]function(?:_\d+)?[_-]name"), r"[A-Za-z0-9_-]+", False),
    (re.compile(r"request_id|omitted"), r".+", False),
)
_PLACEHOLDER_PART = re.compile(r"<([^<>]*)>|111111111111")
#: How long one case may run before it counts as failed (its execution is still RUNNING).
CASE_WAIT_SECONDS = 20


# Case data ----------------------------------------------------------------------------------------


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for name in CASE_FILES:
        cases.extend(json.loads((CASES_DIRECTORY / name).read_text()))
    return cases


def uses_jsonata(node: Any) -> bool:
    """Whether a definition uses JSONata or variables (the README's rule)."""
    if isinstance(node, dict):
        return any(key in JSONATA_KEYS or uses_jsonata(value) for key, value in node.items())
    if isinstance(node, list):
        return any(uses_jsonata(item) for item in node)
    return isinstance(node, str) and "{%" in node


# Comparing outcomes -------------------------------------------------------------------------------


class Matcher:
    """Deep equality where the README's placeholders match a non-empty value of their kind.

    One matcher compares one case: a numbered placeholder (``<uuid:1>``, ``<ArnPart_0idx>``) is bound to
    the first value it matches, and must be that value everywhere else in the case.
    """

    def __init__(self) -> None:
        self.bound: dict[str, str] = {}

    def _pattern(self, expected: str) -> tuple[re.Pattern[str], list[str]] | None:
        if not _PLACEHOLDER_PART.search(expected):
            return None
        pieces: list[str] = []
        names: list[str] = []
        position = 0
        for found in _PLACEHOLDER_PART.finditer(expected):
            pieces.append(re.escape(expected[position : found.start()]))
            position = found.end()
            inner = found.group(1)
            if inner is None:  # the recording's account
                pieces.append(r"\d{12}")
                continue
            kind = next(((regex, bind) for name, regex, bind in _INNER if name.fullmatch(inner)), None)
            if kind is None:
                pieces.append(re.escape(found.group(0)))
                continue
            regex, bind = kind
            if bind and inner in self.bound:
                pieces.append(re.escape(self.bound[inner]))
            elif bind and inner in names:
                pieces.append(f"(?P={_group(inner)})")
            elif bind:
                names.append(inner)
                pieces.append(f"(?P<{_group(inner)}>{regex})")
            else:
                pieces.append(f"(?:{regex})")
        pieces.append(re.escape(expected[position:]))
        return re.compile("".join(pieces), re.DOTALL), names

    def matches(self, expected: Any, actual: Any) -> bool:
        if isinstance(expected, str):
            whole = WHOLE_PLACEHOLDERS.get(expected)
            if whole is not None:
                text = actual if isinstance(actual, str) else json.dumps(actual)
                return actual is not None and text != "" and re.fullmatch(whole, text) is not None
            if not isinstance(actual, str):
                return False
            compiled = self._pattern(expected)
            if compiled is None:
                return expected == actual
            pattern, names = compiled
            found = pattern.fullmatch(actual)
            if found is None:
                return False
            for name in names:
                self.bound[name] = found.group(_group(name))
            return True
        if isinstance(expected, dict):
            if not isinstance(actual, dict):
                return False
            optional = {"SdkHttpMetadata", "SdkResponseMetadata"}
            if set(expected) - optional != set(actual) - optional:
                return False
            return all(self.matches(value, actual[key]) for key, value in expected.items() if key in actual)
        if isinstance(expected, list):
            return (
                isinstance(actual, list)
                and len(expected) == len(actual)
                and all(self.matches(e, a) for e, a in zip(expected, actual, strict=True))
            )
        if isinstance(expected, bool) or isinstance(actual, bool):
            return expected is actual
        if isinstance(expected, int | float) and isinstance(actual, int | float):
            return float(expected) == float(actual)
        return bool(expected == actual)

    def cause_matches(self, expected: Any, actual: Any) -> bool:
        """Causes are strings; the recording parsed the ones that were JSON."""
        if expected is None:
            return True
        if isinstance(expected, str):
            return self.matches(expected, actual if actual is not None else "")
        try:
            parsed = json.loads(actual) if isinstance(actual, str) else actual
        except ValueError:
            return False
        return self.matches(expected, parsed)


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def matches(expected: Any, actual: Any) -> bool:
    """:meth:`Matcher.matches` with a fresh matcher (placeholders bound within this one comparison)."""
    return Matcher().matches(expected, actual)


def cause_matches(expected: Any, actual: Any) -> bool:
    return Matcher().cause_matches(expected, actual)


@dataclass
class CaseResult:
    case_id: str
    category: str
    kind: str  # "pure" or "lambda"
    jsonata: bool
    passed: bool
    reason: str = ""
    cause_matched: bool = True
    actual: Any = None
    seconds: float = 0.0
    #: whether the history's event types equal AWS's, in order (secondary; ``None``: not compared)
    history_matched: bool | None = None
    history_types: list[str] = field(default_factory=list)


def judge(
    case: dict[str, Any], reply: dict[str, Any], matcher: Matcher | None = None
) -> tuple[bool, str, bool]:
    """``(passed, reason, cause_matched)`` for one case's outcome: status, then output or error and the
    cause (where AWS recorded one), with one :class:`Matcher` for the whole case."""
    matcher = matcher or Matcher()
    expected = case["expected"]
    status = reply.get("status")
    if expected["status"] == "UNKNOWN":
        # AWS accepted a Wait far in the future and was still waiting when recorded. With TIME_SCALE=0 the
        # wait is over at once, so what is comparable is that the state did not fail.
        return status in ("RUNNING", "SUCCEEDED"), f"expected to wait, got {status}", True
    if status != expected["status"]:
        detail = reply.get("output") if status == "SUCCEEDED" else (reply.get("error"), reply.get("cause"))
        return False, f"status {status} ≠ {expected['status']}: {str(detail)[:400]}", True
    if status == "SUCCEEDED":
        if matcher.matches(expected.get("output"), reply.get("output")):
            return True, "", True
        return False, f"output {json.dumps(reply.get('output'))[:600]}", True
    if reply.get("error") != expected.get("error"):
        return False, f"error {reply.get('error')!r} ≠ {expected.get('error')!r}: {reply.get('cause')}", True
    cause_ok = matcher.cause_matches(expected.get("cause"), reply.get("cause"))
    return cause_ok, "" if cause_ok else f"cause {reply.get('cause')!r} ≠ {expected.get('cause')!r}", cause_ok


# The Lambda Invoke stub ---------------------------------------------------------------------------


class LambdaError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _python_str(value: Any) -> str:
    return str(value)


def _handler_result(handler: str, event: Any, stopping: threading.Event) -> Any:
    if handler == "id_function":
        return event
    if handler == "echo_function":
        return {"Return": "HelloWorld"}
    if handler == "return_decorated_input":
        return "input-event-" + _python_str(event)
    if handler == "return_bytes_str":
        return "HelloWorld!"
    if handler == "raise_exception":
        raise LambdaError("Exception", "Some exception was raised.")
    if handler == "raise_custom_exception":
        raise LambdaError("CustomException", "")
    if handler == "large_output_string":
        return "a" * (257 * 1024)
    if handler == "wait_60_seconds":
        stopping.wait(60)
        return event
    raise LambdaError("Exception", f"unknown handler {handler}")


def _stack_trace(error: LambdaError) -> list[str]:
    if error.error_type == "Exception":
        line = '    raise Exception("Some exception was raised.")\n'
        return ['  File "/var/task/handler.py", line 2, in handler\n' + line]
    return ['  File "/var/task/handler.py", line 6, in handler\n    raise CustomException()\n']


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a task timeout) closes the connection mid-reply: expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LambdaStub:
    """``POST /2015-03-31/functions/{name}/invocations`` for the functions the cases name."""

    def __init__(self, functions: dict[str, str]) -> None:
        self.functions = functions
        self.stopping = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                match = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations", self.path.split("?")[0])
                name = match.group(1) if match else ""
                name = name.split(":function:", 1)[-1].split(":", 1)[0]
                handler = stub.functions.get(name)
                if handler is None:
                    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}:$LATEST"
                    body = {"Type": "User", "message": f"Function not found: {arn}"}
                    self._reply(
                        404, json.dumps(body).encode(), {"x-amzn-ErrorType": "ResourceNotFoundException"}
                    )
                    return
                try:
                    event = json.loads(raw) if raw else None
                except ValueError:
                    event = raw.decode()
                try:
                    result = _handler_result(handler, event, stub.stopping)
                except LambdaError as error:
                    body = {
                        "errorMessage": error.message,
                        "errorType": error.error_type,
                        "requestId": str(uuid.uuid4()),
                        "stackTrace": _stack_trace(error),
                    }
                    self._reply(200, json.dumps(body).encode(), {"X-Amz-Function-Error": "Unhandled"})
                    return
                self._reply(200, json.dumps(result).encode(), {})

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Amz-Executed-Version", "$LATEST")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="lambda-stub", daemon=True)

    def __enter__(self) -> LambdaStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def lambda_functions(cases: list[dict[str, Any]]) -> dict[str, str]:
    """Every function name the cases use, mapped to its handler's name (``id_function`` ...)."""
    functions: dict[str, str] = {}
    for case in cases:
        for name, path in (case.get("lambdaHandlers") or {}).items():
            functions[name] = Path(path).stem
    return functions


# The machinery server -----------------------------------------------------------------------------


@contextmanager
def machinery_server(directory: Path, lambda_endpoint: str) -> Iterator[str]:
    """``python -m machinery serve`` on a free port with TIME_SCALE=0; yields its base URL."""
    settings = {
        "MACHINERY_TIME_SCALE": "0",
        "MACHINERY_LAMBDA_ENDPOINT": lambda_endpoint,
        "MACHINERY_POLL_INTERVAL": "0.2",
        "MACHINERY_LOG_LEVEL": "WARNING",
    }
    log_path = directory / "server.log"
    database_url = f"sqlite:///{directory / 'conformance.sqlite'}"
    with log_path.open("w") as log, ExitStack() as stack:
        try:
            base_url = stack.enter_context(machinery_process(database_url, log, settings=settings))
        except DemoError as exc:
            raise RuntimeError(f"{exc}:\n{log_path.read_text()[-4000:]}") from None
        yield base_url


_NO_BODY: Any = object()


def _request(method: str, url: str, body: Any = _NO_BODY, timeout: float = 60) -> tuple[int, Any]:
    data = None if body is _NO_BODY else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text.decode("utf-8", "replace")


def _event_body(data: Any) -> Any:
    # ``{"data": ...}`` with only known options is unwrapped by the API as an envelope.
    if isinstance(data, dict) and "data" in data and set(data) <= {"data", "name", "callback_url"}:
        return {"data": data}
    return data


_DAYS_AHEAD = re.compile(r"test_timestamp_too_far_in_future_boundary\[(\d+)\]$")


def case_input(case: dict[str, Any]) -> Any:
    """The input to send. The Wait boundary cases are relative to the moment they run: LocalStack's test
    sends ``now + N days`` (N in the case id), so the recorded timestamp drifts across the 2**31-second
    limit as time passes; it is computed afresh the same way."""
    days = _DAYS_AHEAD.search(case["id"])
    if days is None:
        return case["input"]
    due = time.time() + int(days.group(1)) * 86400
    return {"start_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(due))}


def _run_native(
    base_url: str, name: str, case: dict[str, Any]
) -> tuple[str, dict[str, Any], list[str] | None]:
    """Register and run a case over the native API: ``(failure, reply, history types)``."""
    status, reply = _request("POST", f"{base_url}/w", {"name": name, "definition": case["definition"]})
    if status not in (200, 201):
        return f"registration answered {status}: {json.dumps(reply)[:600]}", {}, None
    wait = 2 if case["expected"]["status"] == "UNKNOWN" else CASE_WAIT_SECONDS
    status, reply = _request(
        "POST", f"{base_url}/e/{name}?wait={wait}", _event_body(case_input(case)), wait + 30
    )
    if status not in (201, 202) or not isinstance(reply, dict):
        return f"POST /e answered {status}: {json.dumps(reply)[:600]}", {}, None
    types = None
    if reply.get("status") != "RUNNING":
        status, history = _request("GET", f"{base_url}/e/{reply['event_id']}/history")
        if status == 200:
            types = [event["type"] for event in history["events"]]
    return "", reply, types


def _run_aws(sfn: Any, name: str, case: dict[str, Any]) -> tuple[str, dict[str, Any], list[str] | None]:
    """The same through boto3: CreateStateMachine, StartExecution, DescribeExecution, GetExecutionHistory."""
    from botocore.exceptions import ClientError

    try:
        machine = sfn.create_state_machine(
            name=name, definition=json.dumps(case["definition"]), roleArn="arn:aws:iam::111111111111:role/c"
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(case_input(case)))[
            "executionArn"
        ]
        wait = 2 if case["expected"]["status"] == "UNKNOWN" else CASE_WAIT_SECONDS
        deadline = time.monotonic() + wait
        while True:  # as a client of AWS waits: DescribeExecution until the execution has ended
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        reply: dict[str, Any] = {"status": described["status"]}
        if "output" in described:
            reply["output"] = json.loads(described["output"])
        for key in ("error", "cause"):
            if key in described:
                reply[key] = described[key]
        types = None
        if reply["status"] != "RUNNING":
            pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution)
            types = [event["type"] for page in pages for event in page["events"]]
    except ClientError as error:
        return f"boto3: {error}", {}, None
    return "", reply, types


def run_case(target: Any, number: int, case: dict[str, Any], via: str = "native") -> CaseResult:
    """Run one case over the native API (``target``: the base URL) or boto3 (``target``: the client)."""
    started = time.monotonic()
    result = CaseResult(
        case_id=case["id"],
        category=case["category"],
        kind=case["class"],
        jsonata=uses_jsonata(case["definition"]),
        passed=False,
    )
    name = f"conformance-{number}"
    failure, reply, types = (
        _run_native(target, name, case) if via == "native" else _run_aws(target, name, case)
    )
    if failure:
        result.reason = failure
    else:
        result.actual = reply
        result.passed, result.reason, result.cause_matched = judge(case, reply)
        recorded = [event["type"] for event in case.get("history") or []]
        if recorded and types is not None and case["expected"]["status"] != "UNKNOWN":
            result.history_types = types
            result.history_matched = types == recorded
            if result.passed and not result.history_matched:
                result.passed = False
                result.reason = "history event types differ from AWS's"
    result.seconds = time.monotonic() - started
    return result


def run_all(cases: list[dict[str, Any]], threads: int = 16, via: str = "native") -> list[CaseResult]:
    """Start the stub and the server, run every case (over the native API or boto3), return the results
    in case order."""
    with ExitStack() as stack:
        stub = stack.enter_context(LambdaStub(lambda_functions(cases)))
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        base_url = stack.enter_context(machinery_server(directory, stub.url))
        target: Any = base_url
        if via == "aws":
            from tests.acceptance.aws_helpers import sfn_client

            target = sfn_client(base_url, max_pool_connections=threads)
        pool = stack.enter_context(ThreadPoolExecutor(threads))
        futures = [pool.submit(run_case, target, number, case, via) for number, case in enumerate(cases)]
        return [future.result() for future in futures]


# Reporting ----------------------------------------------------------------------------------------


@dataclass
class Tally:
    passed: int = 0
    total: int = 0
    failures: list[CaseResult] = field(default_factory=list)

    def add(self, result: CaseResult) -> None:
        self.total += 1
        if result.passed:
            self.passed += 1
        else:
            self.failures.append(result)

    @property
    def rate(self) -> float:
        return 100.0 * self.passed / self.total if self.total else 100.0

    def __str__(self) -> str:
        return f"{self.passed}/{self.total} ({self.rate:.1f}%)"


def tallies(results: list[CaseResult]) -> dict[str, Tally]:
    """Pass counts by file, by category and by query language."""
    groups: dict[str, Tally] = defaultdict(Tally)
    for result in results:
        language = "JSONata/variables" if result.jsonata else "JSONPath-only"
        for key in (
            "all",
            f"file {result.kind}",
            f"{result.kind} {result.category}",
            language,
            f"{language} {result.kind}",
        ):
            groups[key].add(result)
    return dict(groups)


def report(results: list[CaseResult]) -> str:
    groups = tallies(results)
    lines = ["ASL conformance (recorded against AWS):"]
    for key in sorted(groups, key=lambda k: (not k.startswith(("all", "file", "JSON")), k)):
        lines.append(f"  {key:<40} {groups[key]}")
    causes = [r for r in results if not r.cause_matched]
    lines.append(f"  failed on the cause alone: {len(causes)}")
    for jsonata, label in ((False, "JSONPath-only"), (True, "JSONata/variables")):
        compared = [r for r in results if r.history_matched is not None and r.jsonata == jsonata]
        same = sum(1 for r in compared if r.history_matched)
        lines.append(f"  {label} history event types equal to AWS's: {same}/{len(compared)}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-k", default="", help="only cases whose id contains this text")
    parser.add_argument("--aws", action="store_true", help="run the cases through boto3 (the AWS API)")
    parser.add_argument("--jsonata", action="store_true", help="show JSONata failures too")
    parser.add_argument("--causes", action="store_true", help="show passes with a different cause")
    parser.add_argument(
        "--history", action="store_true", help="show history type differences (JSONata ones with --jsonata)"
    )
    args = parser.parse_args()
    cases = [case for case in load_cases() if args.k in case["id"]]
    started = time.monotonic()
    results = run_all(cases, via="aws" if args.aws else "native")
    by_id = {case["id"]: case for case in cases}
    for result in results:
        if (not result.passed and (args.jsonata or not result.jsonata)) or (
            args.causes and result.passed and not result.cause_matched
        ):
            case = by_id[result.case_id]
            print("=" * 100)
            print(result.case_id, f"[{result.category}]")
            print("  definition:", json.dumps(case["definition"])[:1500])
            print("  input:", json.dumps(case["input"])[:300])
            print("  expected:", json.dumps(case["expected"])[:800])
            print("  reason:", result.reason[:1500])
        if args.history and result.history_matched is False and (args.jsonata or not result.jsonata):
            expected_types = [event["type"] for event in by_id[result.case_id]["history"]]
            print("HISTORY", result.case_id)
            print("   aws:", " ".join(expected_types))
            print("  ours:", " ".join(result.history_types))
    print(report(results))
    print(f"{len(results)} cases in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

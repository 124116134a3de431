"""Step Functions' errors: a name (``__type``), a message and an HTTP status, as AWS sends them."""

from __future__ import annotations

from typing import Any


class AwsError(Exception):
    """An error of the AWS API. ``name`` is the ``__type`` clients match on (botocore's ``Error.Code``)."""

    status = 400

    def __init__(self, name: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.status = status
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"__type": self.name, "message": self.message, **self.extra}


def invalid_arn(arn: object, why: str = "") -> AwsError:
    detail = f": {why}" if why else ""
    return AwsError("InvalidArn", f"Invalid Arn: '{arn}'{detail}")


def validation(message: str, reason: str | None = None) -> AwsError:
    """``ValidationException``; ``reason`` is one of the model's ``ValidationExceptionReason`` values."""
    error = AwsError("ValidationException", message)
    if reason:
        error.extra["reason"] = reason
    return error


def state_machine_does_not_exist(arn: str) -> AwsError:
    return AwsError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'")


def execution_does_not_exist(arn: str) -> AwsError:
    return AwsError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'")


def resource_not_found(arn: str, what: str = "Resource") -> AwsError:
    return AwsError("ResourceNotFound", f"{what} not found: '{arn}'", resourceName=arn)


def unknown_operation(target: str) -> AwsError:
    return AwsError(
        "UnknownOperationException", f"Operation is not supported: {target or '(no X-Amz-Target)'}"
    )

"""botocore's service model of Step Functions: which actions exist and what their inputs must be.

The model that SDKs are generated from is the authority on shapes, so requests are checked against it
(required members, lengths, ranges, enumerations) with AWS's own wording of a ``ValidationException``:
``1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be
null``. Members the model does not know are ignored, as AWS ignores them.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from machinery.aws.errors import AwsError

_MAX_REPORTED = 10


@functools.cache
def service_model() -> ServiceModel:
    return ServiceModel(Loader().load_service_model("stepfunctions", "service-2"), "stepfunctions")


def operation(name: str) -> OperationModel | None:
    model = service_model()
    # pylint: disable-next=unsupported-membership-test  # botocore's cached property is a list
    return model.operation_model(name) if name in model.operation_names else None


def check_input(op: OperationModel, params: dict[str, Any]) -> None:
    """Raise ``ValidationException`` listing every constraint ``params`` break (up to ten, as AWS)."""
    problems: list[str] = []
    shape = op.input_shape
    if shape is not None:
        _check(shape, params, "", problems)
    if problems:
        count = len(problems)
        listed = "; ".join(problems[:_MAX_REPORTED])
        noun = "error" if count == 1 else "errors"
        raise AwsError("ValidationException", f"{count} validation {noun} detected: {listed}")


def _violation(value: Any, at: str, constraint: str) -> str:
    return f"Value '{_describe(value)}' at '{at}' failed to satisfy constraint: {constraint}"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    text = str(value)
    return text if len(text) <= 100 else text[:100] + "..."


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    at = path or shape.name
    kind = shape.type_name
    metadata = shape.metadata
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            problems.append(_violation(value, at, "Member must be a structure"))
            return
        for name in shape.required_members:
            if value.get(name) is None:
                where = f"{path}.{name}" if path else name
                problems.append(
                    f"Value null at '{where}' failed to satisfy constraint: Member must not be null"
                )
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _check(member, value[name], f"{path}.{name}" if path else name, problems)
        return
    if kind == "list":
        if not isinstance(value, list):
            problems.append(_violation(value, at, "Member must be a list"))
            return
        _length(value, metadata, at, problems)
        for index, item in enumerate(value):
            _check(shape.member, item, f"{at}.{index + 1}.member", problems)  # type: ignore[attr-defined]
        return
    if kind == "map":
        if not isinstance(value, dict):
            problems.append(_violation(value, at, "Member must be a map"))
            return
        for key, item in value.items():
            _check(shape.value, item, f"{at}.{key}", problems)  # type: ignore[attr-defined]
        return
    if kind == "string":
        if not isinstance(value, str):
            problems.append(_violation(value, at, "Member must be a string"))
            return
        _length(value, metadata, at, problems)
        enum: list[str] = getattr(shape, "enum", [])
        if enum and value not in enum:
            problems.append(
                f"Value '{_describe(value)}' at '{at}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        return
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(_violation(value, at, "Member must be a number"))
            return
        if "min" in metadata and value < metadata["min"]:
            problems.append(
                f"Value '{value}' at '{at}' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {metadata['min']}"
            )
        if "max" in metadata and value > metadata["max"]:
            problems.append(
                f"Value '{value}' at '{at}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {metadata['max']}"
            )
        return
    if kind == "boolean" and not isinstance(value, bool):
        problems.append(_violation(value, at, "Member must be a boolean"))


def _length(value: str | list[Any], metadata: dict[str, Any], at: str, problems: list[str]) -> None:
    if "min" in metadata and len(value) < metadata["min"]:
        problems.append(
            f"Value '{_describe(value)}' at '{at}' failed to satisfy constraint: "
            f"Member must have length greater than or equal to {metadata['min']}"
        )
    if "max" in metadata and len(value) > metadata["max"]:
        problems.append(
            f"Value '{_describe(value)}' at '{at}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {metadata['max']}"
        )

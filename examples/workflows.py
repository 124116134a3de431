"""Example workflows built in code, shared by the scale-out tests and benchmarks."""

from __future__ import annotations

from typing import Any


def scale_out_definition(service: str) -> dict[str, Any]:
    """The workflow of the scale-out tests; its tasks call ``service`` (a base URL)."""
    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Next": "Fetch"},
            "Fetch": {
                "Type": "Task",
                "Resource": f"{service}/fetch",
                "ResultPath": "$.fetch",
                "Next": "Route",
            },
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.fetch.even", "BooleanEquals": True, "Next": "Even"}],
                "Default": "Odd",
            },
            "Even": {"Type": "Task", "Resource": f"{service}/even", "ResultPath": "$.branch", "Next": "Both"},
            "Odd": {"Type": "Task", "Resource": f"{service}/odd", "ResultPath": "$.branch", "Next": "Both"},
            "Both": {
                "Type": "Parallel",
                "ResultPath": "$.both",
                "Next": "Done",
                "Branches": [
                    {
                        "StartAt": "Left",
                        "States": {"Left": {"Type": "Task", "Resource": f"{service}/left", "End": True}},
                    },
                    {
                        "StartAt": "Right",
                        "States": {"Right": {"Type": "Task", "Resource": f"{service}/right", "End": True}},
                    },
                ],
            },
            "Done": {"Type": "Succeed"},
        },
    }

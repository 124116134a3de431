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


#: Every kind of state and transition the console draws: a Choice (a comparison and an And/Not rule,
#: a Default), a Parallel (with Retry and Catch) holding a Map branch and a Wait branch, Fail, Succeed.
#: It runs without any service: ``{"kind": "fan", "items": [...]}`` takes the Parallel.
CONSOLE_TOUR: dict[str, Any] = {
    "Comment": "Choice, Parallel, Map, Retry and Catch",
    "StartAt": "Route",
    "States": {
        "Route": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.kind", "StringEquals": "fan", "Next": "Fan"},
                {
                    "And": [
                        {"Variable": "$.kind", "StringEquals": "done"},
                        {"Not": {"Variable": "$.items", "IsPresent": True}},
                    ],
                    "Next": "Done",
                },
            ],
            "Default": "Single",
        },
        "Single": {"Type": "Pass", "Next": "Done"},
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "Each",
                    "States": {
                        "Each": {
                            "Type": "Map",
                            "ItemsPath": "$.items",
                            "ItemProcessor": {
                                "StartAt": "Work",
                                "States": {"Work": {"Type": "Pass", "End": True}},
                            },
                            "End": True,
                        }
                    },
                },
                {"StartAt": "Pause", "States": {"Pause": {"Type": "Wait", "Seconds": 0, "End": True}}},
            ],
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1}],
            "Catch": [{"ErrorEquals": ["States.Timeout", "Custom"], "Next": "Broken"}],
            "Next": "Done",
        },
        "Broken": {"Type": "Fail", "Error": "Broken"},
        "Done": {"Type": "Succeed"},
    },
}

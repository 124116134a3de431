"""Data the tests read from ``../shared`` beside the repository (the seed contract, the ASL conformance
cases), which a user's clone does not have.

Without it those tests skip, saying so; under CI (``CI=true``), where it is present, a missing file fails
the test loudly instead of skipping it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_reason(path: Path) -> str | None:
    """Why ``path`` cannot be read, or None when it is there."""
    return None if path.exists() else f"{path} is not present (it lives in ../shared beside the repository)"


def needs_shared(*paths: Path) -> pytest.MarkDecorator:
    """A mark that skips the test when a path is missing; under CI it runs, and :func:`require_shared`
    or the read itself fails it."""
    reasons = [reason for reason in map(missing_reason, paths) if reason]
    return pytest.mark.skipif(bool(reasons) and not under_ci(), reason="; ".join(reasons))


def require_shared(path: Path) -> Path:
    """``path``, or skip the test (fail it under CI) when it is missing."""
    reason = missing_reason(path)
    if reason is not None:
        if under_ci():
            pytest.fail(f"{reason}: CI must run this test", pytrace=False)
        pytest.skip(reason)
    return path

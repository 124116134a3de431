"""Ids are canonical version 7 UUIDs: time-ordered, random in their last 74 bits."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest

from machinery.storage import base
from machinery.storage.base import new_id


def test_an_id_is_a_canonical_version_7_uuid_of_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    text = new_id()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(text)
    assert str(parsed) == text  # lower-case hex, dashes where uuid puts them
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_ids_sort_by_time_and_do_not_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_700_000_000_000_000_000]
    monkeypatch.setattr(base, "time", SimpleNamespace(time_ns=lambda: now[0]))
    first = [new_id() for _ in range(2000)]
    now[0] += 1_000_000  # one millisecond later
    later = new_id()
    assert len(set(first)) == len(first)
    assert all(text < later for text in first)
    assert {text[:13] for text in first} == {first[0][:13]}  # the same millisecond prefix

"""In-memory backend: SQLite's ``:memory:`` database behind the same code as the file backend.

Sharing the SQL keeps the memory backend's semantics identical to the embedded default (the conformance
suite runs on both); it backs unit tests and express workflows, which keep nothing on disk.
"""

from __future__ import annotations

from machinery.storage.sqlite import SQLiteStorage


class MemoryStorage(SQLiteStorage):
    def __init__(self) -> None:
        super().__init__(":memory:")
        self.migrate()

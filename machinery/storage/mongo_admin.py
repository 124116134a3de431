"""API tokens and retention in MongoDB (part of :class:`~machinery.storage.mongo.MongoStorage`).

Without multi-document transactions a purge deletes in an order that a crash cannot make harmful: first
what the executions own (history, branches, joins, work), then the execution records from the deepest
child executions up to the top-level one. A purge cut short leaves the top-level record, which the next
purge finds and finishes (every delete can be repeated).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from machinery.storage.base import ApiTokenField, ApiTokenRecord
from machinery.storage.mongo_definitions import driver_errors
from machinery.storage.mongo_documents import Doc


def _token(doc: Doc) -> ApiTokenRecord:
    return ApiTokenRecord.from_row({**doc, "token_id": doc["_id"]})


class MongoAdmin:
    """The collection ``api_tokens``, and :meth:`purge_executions`."""

    _executions: Collection[Doc]
    _branches: Collection[Doc]
    _joins: Collection[Doc]
    _history: Collection[Doc]
    _work: Collection[Doc]
    _tokens: Collection[Doc]

    def _migrate_admin(self) -> None:
        for field in ("name", "token_hash", "access_key_id"):
            self._tokens.create_index(field, unique=True)
        self._executions.create_index([("parent_execution_id", ASCENDING), ("finished_at", ASCENDING)])
        self._joins.create_index("execution_id")

    # retention ---------------------------------------------------------------------------------

    @driver_errors
    def purge_executions(self, finished_before: float, limit: int) -> int:
        """Delete up to ``limit`` top-level executions finished before then, with their children."""
        query = {"parent_execution_id": None, "finished_at": {"$ne": None, "$lt": finished_before}}
        roots = [
            doc["_id"]
            for doc in self._executions.find(
                query, {"_id": 1}, sort=[("finished_at", ASCENDING)], limit=limit
            )
        ]
        if not roots:
            return 0
        levels = [roots]
        while levels[-1]:
            children = self._executions.find({"parent_execution_id": {"$in": levels[-1]}}, {"_id": 1})
            levels.append([doc["_id"] for doc in children])
        doomed = [execution_id for level in levels for execution_id in level]
        for collection in (self._history, self._branches, self._joins, self._work):
            collection.delete_many({"execution_id": {"$in": doomed}})
        for level in reversed(levels):
            if level:
                self._executions.delete_many({"_id": {"$in": level}})
        return len(roots)

    # API tokens ----------------------------------------------------------------------------

    @driver_errors
    def create_api_token(self, token: ApiTokenRecord) -> bool:
        """Store a new API token; False when its name is taken."""
        doc: dict[str, Any] = {
            "_id": token.token_id,
            "name": token.name,
            "scope": token.scope,
            "token_hash": token.token_hash,
            "access_key_id": token.access_key_id,
            "created_at": token.created_at,
        }
        try:
            self._tokens.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    @driver_errors
    def find_api_token(self, by: ApiTokenField, value: str) -> ApiTokenRecord | None:
        doc = self._tokens.find_one({"_id" if by == "token_id" else by: value})
        return None if doc is None else _token(doc)

    @driver_errors
    def list_api_tokens(self) -> list[ApiTokenRecord]:
        return [
            _token(doc)
            for doc in self._tokens.find({}, sort=[("created_at", ASCENDING), ("name", ASCENDING)])
        ]

    @driver_errors
    def delete_api_token(self, token_id: str) -> bool:
        return self._tokens.delete_one({"_id": token_id}).deleted_count > 0

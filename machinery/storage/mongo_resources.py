"""Executions by name and the front doors' resources in MongoDB (mixed into
:class:`~machinery.storage.mongo.MongoStorage`).

A resource is one document ``{_id: [kind, key], kind, key, body}``; each operation on it is a single
document operation, which MongoDB makes atomic (taking one is a ``find_one_and_delete``).
"""

from __future__ import annotations

import re
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from machinery.storage.base import ExecutionRecord
from machinery.storage.mongo_definitions import driver_errors
from machinery.storage.mongo_documents import Doc, dumps, execution_record, loads


def _prefixed(kind: str, prefix: str) -> Doc:
    query: Doc = {"kind": kind}
    if prefix:
        query["key"] = {"$regex": f"^{re.escape(prefix)}"}
    return query


class MongoResources:
    """Lookups by name and resources; the collections are set up by the storage."""

    _executions: Collection[Doc]
    _resources: Collection[Doc]

    def _migrate_resources(self) -> None:
        self._resources.create_index([("kind", ASCENDING), ("key", ASCENDING)], unique=True)
        self._executions.create_index(
            [("workflow_name", ASCENDING), ("name", ASCENDING), ("seq", DESCENDING)]
        )

    @driver_errors
    def find_execution(self, workflow_name: str, name: str) -> ExecutionRecord | None:
        doc = self._executions.find_one(
            {"workflow_name": workflow_name, "name": name}, sort=[("seq", DESCENDING)]
        )
        return None if doc is None else execution_record(doc)

    @driver_errors
    def put_resource(self, kind: str, key: str, body: dict[str, Any]) -> None:
        doc = {"kind": kind, "key": key, "body": dumps(body)}
        self._resources.replace_one({"kind": kind, "key": key}, doc, upsert=True)

    @driver_errors
    def insert_resource(self, kind: str, key: str, body: dict[str, Any]) -> bool:
        try:
            self._resources.insert_one({"kind": kind, "key": key, "body": dumps(body)})
        except DuplicateKeyError:
            return False
        return True

    @driver_errors
    def get_resource(self, kind: str, key: str) -> dict[str, Any] | None:
        doc = self._resources.find_one({"kind": kind, "key": key})
        return None if doc is None else dict(loads(doc["body"]))

    @driver_errors
    def list_resources(self, kind: str, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        found = self._resources.find(_prefixed(kind, prefix), sort=[("key", ASCENDING)])
        return [(doc["key"], loads(doc["body"])) for doc in found]

    @driver_errors
    def delete_resource(self, kind: str, key: str) -> bool:
        return bool(self._resources.delete_one({"kind": kind, "key": key}).deleted_count)

    @driver_errors
    def take_resource(self, kind: str, prefix: str) -> tuple[str, dict[str, Any]] | None:
        doc = self._resources.find_one_and_delete(_prefixed(kind, prefix), sort=[("key", ASCENDING)])
        return None if doc is None else (doc["key"], loads(doc["body"]))

"""Services and workflows in MongoDB: the definitions half of :class:`~machinery.storage.mongo.MongoStorage`.

Plain single-document writes (a service, a workflow head, an immutable version): none of the intent
machinery of executions is needed here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from machinery.errors import StorageError
from machinery.storage.base import ServiceRecord, WorkflowRecord, new_id
from machinery.storage.mongo_documents import Doc, by_ref, dumps, service_record, workflow_record

_P = ParamSpec("_P")
_R = TypeVar("_R")
_AFTER = ReturnDocument.AFTER


def driver_errors(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Wrap pymongo's (and mongomock's) exceptions as :class:`StorageError`."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except PyMongoError as exc:
            raise StorageError(f"MongoDB: {exc}") from exc

    return wrapper


class MongoDefinitions:
    """Services, workflows and their versions; mixed into :class:`~machinery.storage.mongo.MongoStorage`."""

    _services: Collection[Doc]
    _workflows: Collection[Doc]
    _versions: Collection[Doc]

    # services ----------------------------------------------------------------------------------

    @driver_errors
    def upsert_service(
        self,
        name: str,
        address: str,
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        settings: dict[str, Any],
        now: float,
        ref: str | None = None,
    ) -> tuple[ServiceRecord, bool]:
        """Register a service, or update the one of that name (or ``ref``); True when created."""
        body = {
            "name": name,
            "address": address,
            "inputs": dumps(inputs),
            "outputs": dumps(outputs),
            "settings": dumps(settings),
            "updated_at": now,
        }
        existing = self._services.find_one(by_ref(ref or name))
        if existing is None:
            doc = {"_id": new_id(), **body, "created_at": now}
            self._services.insert_one(doc)
            return service_record(doc), True
        updated = self._services.find_one_and_update(
            {"_id": existing["_id"]}, {"$set": body}, return_document=_AFTER
        )
        if updated is None:
            raise StorageError("service was deleted while being updated")
        return service_record(updated), False

    @driver_errors
    def get_service(self, ref: str) -> ServiceRecord | None:
        doc = self._services.find_one(by_ref(ref))
        return None if doc is None else service_record(doc)

    @driver_errors
    def list_services(self) -> list[ServiceRecord]:
        return [service_record(doc) for doc in list(self._services.find({}, sort=[("name", ASCENDING)]))]

    @driver_errors
    def delete_service(self, service_id: str) -> None:
        self._services.delete_one({"_id": service_id})

    # workflows ---------------------------------------------------------------------------------

    @driver_errors
    def save_workflow(
        self,
        name: str,
        spec: dict[str, Any],
        definition: dict[str, Any],
        services: list[str],
        express: bool,
        now: float,
        ref: str | None = None,
    ) -> tuple[WorkflowRecord, bool]:
        """Store a new version of a workflow (created when the name or ``ref`` is new); True when created."""
        body = {
            "spec": dumps(spec),
            "definition": dumps(definition),
            "services": dumps(services),
            "express": express,
            "created_at": now,
        }
        head = self._workflows.find_one(by_ref(ref or name))
        if head is None:
            # The version first: a crash in between leaves an unreferenced version, not an empty head.
            workflow_id = new_id()
            version = {"workflow_id": workflow_id, "version": 1, **body}
            self._versions.insert_one(dict(version))
            head = {"_id": workflow_id, "name": name, "version": 1, "created_at": now, "updated_at": now}
            self._workflows.insert_one(head)
            return workflow_record(head, version), True
        head = self._workflows.find_one_and_update(
            {"_id": head["_id"]},
            {"$inc": {"version": 1}, "$set": {"name": name, "updated_at": now}},
            return_document=_AFTER,
        )
        if head is None:
            raise StorageError("workflow was deleted while being updated")
        version = {"workflow_id": head["_id"], "version": head["version"], **body}
        self._versions.insert_one(dict(version))
        return workflow_record(head, version), False

    def _latest_version(self, workflow_id: str) -> Doc | None:
        found = list(
            self._versions.find({"workflow_id": workflow_id}, sort=[("version", DESCENDING)], limit=1)
        )
        return found[0] if found else None

    @driver_errors
    def get_workflow(self, ref: str, version: int | None = None) -> WorkflowRecord | None:
        head = self._workflows.find_one(by_ref(ref))
        if head is None:
            return None
        if version is None:
            stored = self._latest_version(head["_id"])
        else:
            stored = self._versions.find_one({"workflow_id": head["_id"], "version": version})
        return None if stored is None else workflow_record(head, stored)

    @driver_errors
    def list_workflows(self) -> list[WorkflowRecord]:
        found = []
        for head in list(self._workflows.find({}, sort=[("name", ASCENDING)])):
            stored = self._latest_version(head["_id"])
            if stored is not None:
                found.append(workflow_record(head, stored))
        return found

    @driver_errors
    def list_versions(self, workflow_id: str) -> list[WorkflowRecord]:
        head = self._workflows.find_one(by_ref(workflow_id))
        if head is None:
            return []
        versions = list(self._versions.find({"workflow_id": head["_id"]}, sort=[("version", ASCENDING)]))
        return [workflow_record(head, stored) for stored in versions]

    @driver_errors
    def delete_workflow(self, workflow_id: str) -> None:
        # Versions stay: executions that pinned them keep their definition readable.
        self._workflows.delete_one({"_id": workflow_id})

    def workflows_using(self, service_name: str) -> list[str]:
        return [w.name for w in self.list_workflows() if service_name in w.services]

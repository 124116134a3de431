"""API tokens and retention for both SQL dialects, written once over
:class:`~machinery.storage.sqlcommon.SqlTransaction` (each dialect's ``queries.sql`` defines the names).

A list of ids is passed as the dialect encodes one (``ids``): JSON text read with ``json_each`` on SQLite,
an array for ``= ANY`` on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from machinery.storage.base import ApiTokenField, ApiTokenRecord
from machinery.storage.sqlcommon import SqlTransaction

IdList = Callable[[list[str]], object]

#: Named query for each field an API token can be found by.
TOKEN_QUERIES: dict[ApiTokenField, str] = {
    "token_id": "api_token_by_token_id",
    "name": "api_token_by_name",
    "token_hash": "api_token_by_token_hash",
    "access_key_id": "api_token_by_access_key_id",
}


def token_params(token: ApiTokenRecord) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "name": token.name,
        "scope": token.scope,
        "token_hash": token.token_hash,
        "access_key_id": token.access_key_id,
        "created_at": token.created_at,
    }


def token_record(row: Any) -> ApiTokenRecord:
    """An ``api_tokens`` row (of any row type read by column name) as a record."""
    return ApiTokenRecord(
        token_id=row["token_id"],
        name=row["name"],
        scope=row["scope"],
        token_hash=row["token_hash"],
        access_key_id=row["access_key_id"],
        created_at=float(row["created_at"]),
    )


def purge_executions(tx: SqlTransaction, ids_param: IdList, finished_before: float, limit: int) -> int:
    """Delete up to ``limit`` finished top-level executions and all they own (see
    :meth:`machinery.storage.base.Storage.purge_executions`) in the open transaction ``tx``."""
    roots = [
        row["execution_id"]
        for row in tx.execute("purge_roots", {"before": finished_before, "limit": limit}).fetchall()
    ]
    if not roots:
        return 0
    doomed = list(roots)
    frontier = roots
    while frontier:
        rows = tx.execute("purge_children", {"ids": ids_param(frontier)}).fetchall()
        frontier = [row["execution_id"] for row in rows]
        doomed.extend(frontier)
    ids = ids_param(doomed)
    for query in ("purge_history", "purge_branches", "purge_joins", "purge_work", "purge_executions"):
        tx.execute(query, {"ids": ids})
    return len(roots)

"""API tokens and retention for both SQL dialects: :class:`SqlStorage` with those operations, written once
over named statements (each dialect's ``queries.sql`` defines the names; a list of execution ids is one
parameter, as :meth:`~machinery.storage.sqlcommon.SqlStorage._id_list` encodes it).
"""

from __future__ import annotations

from machinery.storage.base import ApiTokenField, ApiTokenRecord
from machinery.storage.sqlcommon import SqlStorage
from machinery.storage.sqltx import SqlTransaction

#: Named query for each field an API token can be found by.
_TOKEN_QUERIES: dict[ApiTokenField, str] = {
    "token_id": "api_token_by_token_id",
    "name": "api_token_by_name",
    "token_hash": "api_token_by_token_hash",
    "access_key_id": "api_token_by_access_key_id",
}
#: What a purge deletes for each doomed execution, the execution records last.
_PURGES = ("purge_history", "purge_branches", "purge_joins", "purge_work", "purge_executions")


class SqlExtras(SqlStorage):  # pylint: disable=abstract-method  # a base: the dialects implement the hooks
    """:class:`SqlStorage` plus API tokens and :meth:`purge_executions`; the dialects derive from it."""

    # retention ---------------------------------------------------------------------------------

    def purge_executions(self, finished_before: float, limit: int) -> int:
        def purge(tx: SqlTransaction) -> int:
            rows = tx.execute("purge_roots", {"before": finished_before, "limit": limit}).fetchall()
            roots = [row["execution_id"] for row in rows]
            doomed, frontier = list(roots), roots
            while frontier:  # child executions (DISTRIBUTED Maps), at any depth
                found = tx.execute("purge_children", {"ids": self._id_list(frontier)}).fetchall()
                frontier = [row["execution_id"] for row in found]
                doomed.extend(frontier)
            if doomed:
                ids = self._id_list(doomed)
                for query in _PURGES:
                    tx.execute(query, {"ids": ids})
            return len(roots)

        return self._run(purge)

    # API tokens --------------------------------------------------------------------------------

    def create_api_token(self, token: ApiTokenRecord) -> bool:
        params = {
            "token_id": token.token_id,
            "name": token.name,
            "scope": token.scope,
            "token_hash": token.token_hash,
            "access_key_id": token.access_key_id,
            "created_at": token.created_at,
        }
        return self._changing_definitions(lambda tx: tx.execute("api_token_insert", params).rowcount > 0)

    def find_api_token(self, by: ApiTokenField, value: str) -> ApiTokenRecord | None:
        rows = self._read(_TOKEN_QUERIES[by], value=value)
        return ApiTokenRecord.from_row(rows[0]) if rows else None

    def list_api_tokens(self) -> list[ApiTokenRecord]:
        return [ApiTokenRecord.from_row(row) for row in self._read("api_tokens_all")]

    def has_api_tokens(self) -> bool:
        """From the definitions cache: a token created or revoked by any process moves their generation."""
        found: bool = self._cached(self._token_presence, "any", lambda: bool(self._read("api_tokens_all")))
        return found

    def delete_api_token(self, token_id: str) -> bool:
        return self._changing_definitions(
            lambda tx: tx.execute("api_token_delete", {"token_id": token_id}).rowcount > 0
        )

"""What schedules and event sources need of the SQL backends, written once for both dialects (mixed into
:class:`~machinery.storage.sqlcommon.SqlStorage`): starting executions whose ids derive from a tick or a
message, exactly once, and reading and replacing a schedule's cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from machinery.errors import LeaseLost
from machinery.storage.base import NewExecution, StartResult, WorkItem

if TYPE_CHECKING:
    from machinery.storage.sqltx import SqlTransaction

_T = TypeVar("_T")


class SqlTriggers:
    """:meth:`start_executions`, :meth:`get_work` and :meth:`replace_work` over named statements."""

    if TYPE_CHECKING:  # what SqlStorage provides

        def _run(self, body: Callable[[SqlTransaction], _T], write: bool = True) -> _T: ...

        def _read(self, query: str, **params: Any) -> list[Any]: ...

        def _work_item(self, row: Mapping[str, Any]) -> WorkItem: ...

    def start_executions(
        self,
        starts: Sequence[NewExecution],
        now: float,
        consumed: WorkItem | None = None,
        follow: Sequence[WorkItem] = (),
        claim_owner: str | None = None,
        lease_until: float = 0.0,
    ) -> StartResult:
        """Create the executions not stored yet, consuming ``consumed`` and adding ``follow``, at once."""
        claim = None if claim_owner is None else (claim_owner, lease_until, now)

        def start(tx: SqlTransaction) -> StartResult:
            if consumed is not None and not tx.consume(consumed):
                raise LeaseLost("work item was claimed by another worker or cancelled")
            result = StartResult()
            for new in starts:
                # ON CONFLICT DO NOTHING: the id exists when this start is a repeated one.
                if not tx.insert_execution(new.record, "execution_insert_new"):
                    continue
                result.created.append(new.record.execution_id)
                tx.put_branches([new.root], None)
                result.claimed.extend(tx.insert_work(new.work, claim))
            tx.insert_work(follow)
            return result

        return self._run(start)

    def get_work(self, execution_id: str) -> list[WorkItem]:
        return [self._work_item(row) for row in self._read("work_of_execution", execution_id=execution_id)]

    def replace_work(self, execution_id: str, work: Sequence[WorkItem]) -> None:
        def replace(tx: SqlTransaction) -> None:
            tx.execute("work_delete_all_of_execution", {"execution_id": execution_id})
            tx.insert_work(work)

        self._run(replace)

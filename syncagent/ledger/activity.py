"""What the processes using the ledger did: failures, passes, agents."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import delete, select, update

from syncagent.ledger.base import LedgerBase, MappingBusy, aware, utcnow
from syncagent.ledger.models import AgentRecord, Failure, PassRecord
from syncagent.ledger.records import AgentInfo, FailureRecord, PassSummary


class ActivityMixin(LedgerBase):
    """Failures of entries, passes over mappings, and the processes at work."""

    # -- failures -------------------------------------------------------------

    def record_failure(
        self,
        mapping_id: int,
        rel_path: str,
        operation: str,
        reason: str,
        *,
        permanent: bool,
    ) -> None:
        """Remember why an entry failed; repeated failures count up."""
        reason = reason.replace("\x00", "\ufffd")  # PostgreSQL refuses NUL in text
        now = utcnow()
        with self._write() as session:
            row = session.scalar(
                select(Failure).where(
                    Failure.mapping_id == mapping_id, Failure.rel_path == rel_path
                )
            )
            if row is None:
                session.add(
                    Failure(
                        mapping_id=mapping_id,
                        rel_path=rel_path,
                        operation=operation,
                        reason=reason,
                        permanent=permanent,
                        first_seen=now,
                        last_seen=now,
                        count=1,
                    )
                )
                return
            row.operation = operation
            row.reason = reason
            row.permanent = permanent
            row.last_seen = now
            row.count += 1

    def clear_failures(self, mapping_id: int, rel_paths: Iterable[str]) -> None:
        """Forget the failures of entries that no longer fail."""
        with self._write() as session:
            for rel_path in rel_paths:
                self._clear_failure(session, mapping_id, rel_path)

    def failures(self, mapping_id: int) -> list[FailureRecord]:
        """Every current failure on a mapping, oldest first."""
        query = (
            select(Failure)
            .where(Failure.mapping_id == mapping_id)
            .order_by(Failure.first_seen)
        )
        with self._read() as session:
            return [
                FailureRecord(
                    rel_path=row.rel_path,
                    operation=row.operation,
                    reason=row.reason,
                    permanent=row.permanent,
                    first_seen=aware(row.first_seen) or utcnow(),
                    last_seen=aware(row.last_seen) or utcnow(),
                    count=row.count,
                )
                for row in session.scalars(query)
            ]

    # -- passes ---------------------------------------------------------------

    def start_pass(
        self, mapping_id: int, kind: str, owner: str, is_alive: Callable[[str], bool]
    ) -> int:
        """Record that a pass begins and return its ID.

        Raises MappingBusy while another live process has a pass open on the mapping;
        passes left open by dead processes are closed as 'interrupted'.
        """
        with self._write() as session:
            open_passes = session.scalars(
                select(PassRecord).where(
                    PassRecord.mapping_id == mapping_id,
                    PassRecord.finished_at.is_(None),
                )
            )
            for running in open_passes:
                if running.owner == owner:
                    continue
                if is_alive(running.owner):
                    raise MappingBusy(
                        f"another syncagent process ({running.owner}) is running "
                        f"{'an' if running.kind == 'upload' else 'a'} {running.kind} "
                        "pass on this mapping"
                    )
                running.finished_at = utcnow()
                running.outcome = "interrupted"
            row = PassRecord(
                mapping_id=mapping_id, kind=kind, owner=owner, started_at=utcnow()
            )
            session.add(row)
            session.flush()
            return row.pass_id

    def finish_pass(self, pass_id: int, outcome: str, summary: dict[str, Any]) -> None:
        """Record how a pass ended."""
        with self._write() as session:
            session.execute(
                update(PassRecord)
                .where(PassRecord.pass_id == pass_id)
                .values(
                    finished_at=utcnow(),
                    outcome=outcome,
                    summary=json.dumps(summary, sort_keys=True),
                )
            )

    def drop_pass(self, pass_id: int) -> None:
        """Forget a pass that changed nothing (a dry run): it is no pass to report."""
        with self._write() as session:
            session.execute(delete(PassRecord).where(PassRecord.pass_id == pass_id))

    def last_pass(self, mapping_id: int, kind: str) -> PassSummary | None:
        """The most recent pass of a kind on a mapping."""
        query = (
            select(PassRecord)
            .where(PassRecord.mapping_id == mapping_id, PassRecord.kind == kind)
            .order_by(PassRecord.pass_id.desc())
            .limit(1)
        )
        with self._read() as session:
            row = session.scalar(query)
            if row is None:
                return None
            return PassSummary(
                kind=row.kind,
                started_at=aware(row.started_at) or utcnow(),
                finished_at=aware(row.finished_at),
                outcome=row.outcome,
                summary=row.summary,
            )

    # -- agents ---------------------------------------------------------------

    def register_agent(self, owner: str, kind: str, hostname: str, pid: int) -> None:
        """Announce a process working on this ledger."""
        now = utcnow()
        with self._write() as session:
            session.merge(
                AgentRecord(
                    owner=owner,
                    kind=kind,
                    hostname=hostname,
                    pid=pid,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def heartbeat(self, owner: str) -> bool:
        """Say a registered process is still alive; False if it is registered no
        more (another process took it for dead and removed its registration)."""
        with self._write() as session:
            result = session.execute(
                update(AgentRecord)
                .where(AgentRecord.owner == owner)
                .values(heartbeat_at=utcnow())
            )
            return bool(getattr(result, "rowcount", 0))

    def unregister_agent(self, owner: str) -> None:
        """A process is leaving cleanly."""
        with self._write() as session:
            session.execute(delete(AgentRecord).where(AgentRecord.owner == owner))

    def agents(self) -> list[AgentInfo]:
        """Every process registered on the ledger (some may have died)."""
        with self._read() as session:
            return [
                AgentInfo(
                    owner=row.owner,
                    kind=row.kind,
                    hostname=row.hostname,
                    pid=row.pid,
                    started_at=aware(row.started_at) or utcnow(),
                    heartbeat_at=aware(row.heartbeat_at) or utcnow(),
                )
                for row in session.scalars(select(AgentRecord))
            ]

"""Writes from several threads that arrive together share one transaction.

The upload workers each checkpoint every file twice (before `complete`, and once it
is verified). A transaction costs more than the statements in it, so a write that
arrives while another is being committed waits, and the next commit takes every
write waiting by then. Each caller still returns only once its own write is
committed: nothing is durable later than it was before.

A batch that fails is run again write by write, each in its own transaction, so one
bad write fails alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy.engine import Connection

Write = Callable[[Connection], object]
Transaction = Callable[[], AbstractContextManager[Connection]]


class _Ticket:
    __slots__ = ("done", "error", "write")

    def __init__(self, write: Write) -> None:
        self.write = write
        self.done = False
        self.error: BaseException | None = None


class GroupCommit:
    """Runs writes in shared transactions opened by `transaction`."""

    def __init__(self, transaction: Transaction) -> None:
        self._transaction = transaction
        self._cond = threading.Condition()
        self._waiting: list[_Ticket] = []
        self._committing = False

    def run(self, write: Write) -> None:
        """Run `write` in a transaction, maybe with others; return once committed."""
        ticket = _Ticket(write)
        with self._cond:
            self._waiting.append(ticket)
            while self._committing and not ticket.done:
                self._cond.wait()
            if not ticket.done:
                # This thread commits next, for every write waiting now.
                self._committing = True
                batch, self._waiting = self._waiting, []
        if not ticket.done:
            try:
                self._commit(batch)
            finally:
                with self._cond:
                    self._committing = False
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error

    def _commit(self, batch: list[_Ticket]) -> None:
        try:
            with self._transaction() as connection:
                for ticket in batch:
                    ticket.write(connection)
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for ticket in batch:
                    self._commit_alone(ticket)
        with self._cond:
            for ticket in batch:
                ticket.done = True

    def _commit_alone(self, ticket: _Ticket) -> None:
        try:
            with self._transaction() as connection:
                ticket.write(connection)
        except BaseException as exc:
            ticket.error = exc

"""Writes from several threads that arrive together share one transaction.

The upload workers each checkpoint every file twice (before `complete`, and once it
is verified). A transaction costs more than the statements in it, so a write that
arrives while another is being committed waits, and the next commit takes every
write waiting by then. Each caller still returns only once its own write is
committed: nothing is durable later than it was before.

A batch that fails is run again write by write, each in its own transaction, so one
bad write fails alone.

Some writes need not hold their caller at all: the record of an upload already
verified in Compass. A crash before it is committed loses nothing (the upload stays
"completing", and the next run verifies it again without sending a byte), so
DeferredCommits takes them on a thread of its own, gathers what arrives within a
short while, and commits it in one transaction; each write's `then` runs once its
transaction is committed (or failed). Many writes to one transaction is what saves:
one commit per verified file cost as much CPU as the rest of the ledger together.
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
        _commit_batch(self._transaction, batch)
        with self._cond:
            for ticket in batch:
                ticket.done = True


def _commit_batch(transaction: Transaction, batch: list[_Ticket]) -> None:
    """Run a batch of writes in one transaction, or write by write if it fails;
    each ticket keeps its own error."""
    try:
        with transaction() as connection:
            for ticket in batch:
                ticket.write(connection)
    except BaseException as exc:
        if len(batch) == 1:
            batch[0].error = exc
        else:
            for ticket in batch:
                _commit_alone(transaction, ticket)


def _commit_alone(transaction: Transaction, ticket: _Ticket) -> None:
    try:
        with transaction() as connection:
            ticket.write(connection)
    except BaseException as exc:
        ticket.error = exc


Then = Callable[[BaseException | None], None]
"""What runs after a deferred write: given its error, or None once committed."""


class DeferredCommits:
    """Commits writes whose callers do not wait, in batches, on a thread of its own.

    `flush` waits for every write submitted so far and re-raises the first error
    that a `then` raised. `linger` is how long the thread waits for more writes
    before it commits what it has.
    """

    def __init__(self, transaction: Transaction, *, linger: float = 0.05) -> None:
        self._transaction = transaction
        self._linger = linger
        self._cond = threading.Condition()
        self._queue: list[tuple[_Ticket, Then]] = []
        self._unfinished = 0
        self._hurry = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def submit(self, write: Write, then: Then) -> None:
        """Commit `write` soon, then call `then` (on the committing thread)."""
        with self._cond:
            self._queue.append((_Ticket(write), then))
            self._unfinished += 1
            if self._thread is None:
                # A daemon: a crash or a second Ctrl-C must not wait for it; what
                # it had not committed is verified again by the next run.
                self._thread = threading.Thread(
                    target=self._run, name="ledger-commits", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every write submitted so far is committed and followed."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            while self._unfinished:
                self._cond.wait()
            self._hurry = False
            error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                if not self._hurry:
                    # Gather what the other workers finish meanwhile.
                    self._cond.wait_for(lambda: self._hurry, timeout=self._linger)
                batch, self._queue = self._queue, []
            tickets = [ticket for ticket, _then in batch]
            _commit_batch(self._transaction, tickets)
            for ticket, then in batch:
                self._follow(ticket, then)

    def _follow(self, ticket: _Ticket, then: Then) -> None:
        try:
            then(ticket.error)
        except BaseException as exc:  # handed to flush(), which re-raises it
            with self._cond:
                self._error = self._error or exc
        finally:
            with self._cond:
                self._unfinished -= 1
                self._cond.notify_all()

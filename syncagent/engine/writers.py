"""Whether another program still has a file open for writing.

A writer that pauses longer than the settle time (an encoder, a stalled network copy)
leaves a file that holds still yet is not finished. On Linux a read lease tells: the
kernel refuses one while any process has the file open for writing. The lease is let
go at once; should a writer open the file in between, the lease break is signalled
with SIGWINCH, which every process ignores unless it asks for it.

Where leases cannot be taken (another OS, a file system without them, a file the
agent does not own and no CAP_LEASE) the answer is "not known to be open", and the
settle time alone decides, as before.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
from pathlib import Path

_LEASES = hasattr(fcntl, "F_SETLEASE") and hasattr(fcntl, "F_SETSIG")


def open_for_writing(path: Path) -> bool:
    """Whether some process holds `path` open for writing (False when unknown)."""
    if not _LEASES:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return False  # gone or unreadable: the upload says why
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGWINCH)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return exc.errno == errno.EAGAIN
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)

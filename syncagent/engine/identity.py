"""Who is working: a name per process, and whether the owner of some work lives."""

from __future__ import annotations

import os
import secrets
import socket


def process_owner() -> str:
    """A name for this process, unique across restarts: host:pid:nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_alive(owner: str, me: str) -> bool:
    """Whether the process named `owner` may still be working.

    Only processes on this host can be checked; others count as alive, and their work
    is taken over when its lease runs out.
    """
    if owner == me:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

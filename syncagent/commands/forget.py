"""`syncagent db forget`: start one mapping afresh, as if its folder were new.

The way out when a pass refuses a folder in which not one synced file is left (it
looks like an unmounted share) and the user did empty it on purpose, or replaced it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from syncagent.agent.liveness import liveness
from syncagent.config import Config, MappingConfig
from syncagent.ledger import LedgerError
from syncagent.runtime import open_ledger

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def forget_mapping(config: Config, local: Path) -> int:
    """Forget what the mapping of `local` synced; return the exit status."""
    mapping = _mapping_of(config, local)
    if mapping is None:
        roots = ", ".join(str(m.local_root) for m in config.mappings)
        print(
            f"syncagent: {local} is no mapping's local folder in {config.path} "
            f"(they are: {roots})",
            file=sys.stderr,
        )
        return EXIT_USAGE

    ledger = open_ledger(config)
    try:
        running = [
            info
            for info in ledger.agents()
            if info.kind == "run" and liveness(info).alive
        ]
        if running:
            print(
                f"syncagent: an agent runs on this ledger (pid {running[0].pid} on "
                f"{running[0].hostname}); stop it first",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        mapping_id = ledger.find_mapping(str(mapping.local_root), mapping.folder_id)
        forgotten = 0 if mapping_id is None else ledger.forget_mapping(mapping_id)
    except LedgerError as exc:
        print(f"syncagent: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        ledger.close()

    print(
        f"forgot {forgotten} files synced with {mapping.local_root}; the next pass "
        "takes the folder as new: files already in Compass under the same name, "
        "size and MD5 are matched, not sent again"
        + (", and what is missing here is downloaded" if mapping.downloads else "")
    )
    return EXIT_OK


def _mapping_of(config: Config, local: Path) -> MappingConfig | None:
    wanted = local.expanduser().resolve()
    for mapping in config.mappings:
        if mapping.local_root.resolve() == wanted:
            return mapping
    return None

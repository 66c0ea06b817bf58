"""Downloads a stopped run put in place without recording them.

A download is noted in the ledger before its temp file is renamed into place, and
recorded after. A run stopped between the two leaves the note: if the file is there
as it was placed, it is the agent's own and is recorded now; if not, the rename
never happened and the note goes (the temp file resumes as any partial download).
"""

from __future__ import annotations

import logging

from syncagent.engine.safe_root import Identity, SafeRoot, UnsafePath
from syncagent.ledger import Ledger

log = logging.getLogger(__name__)


def settle_placements(ledger: Ledger, mapping_id: int, root: SafeRoot) -> int:
    """Record the placed downloads the ledger has only notes of; return how many."""
    recorded = 0
    for entry, replaces in ledger.placements(mapping_id):
        try:
            found = root.identity(entry.rel_path)
        except (UnsafePath, OSError):
            found = None
        if found == Identity.of_entry(entry):
            ledger.record_placement(mapping_id, entry, replaces)
            log.info(
                "%s: downloaded by a run that stopped before recording it (asset %d); "
                "recorded now",
                entry.rel_path,
                entry.asset_id or 0,
            )
            recorded += 1
        else:
            ledger.drop_placement(mapping_id, entry.rel_path)
    return recorded

"""Hold back the parts of a pull plan that lie below folders that failed.

A folder that cannot be made or moved (a file or a link in its place, a name taken, no
permission) fails alone: the operations on paths below it wait for a later pull, and
everything else in the plan goes on. Pure, like the planner.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

from syncagent.engine.pull_ops import MakeDir, MoveDir, PullPlan


@dataclass
class Held:
    """What was held back below each failed folder, counted per folder."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, blocked: str) -> None:
        """One more operation held back below `blocked`."""
        self.counts[blocked] = self.counts.get(blocked, 0) + 1


def dir_paths(op: MakeDir | MoveDir) -> tuple[str, ...]:
    """The directories a folder operation touches."""
    if isinstance(op, MakeDir):
        return (op.rel_path,)
    return (op.old_rel_path, op.rel_path)


def blocker(rel_path: str | None, blocked: Collection[str]) -> str | None:
    """The failed folder a path lies in (or is), if any."""
    if not rel_path:
        return None
    for rel_dir in blocked:
        if rel_path == rel_dir or rel_path.startswith(rel_dir + "/"):
            return rel_dir
    return None


def hold_back(plan: PullPlan, blocked: Collection[str]) -> tuple[PullPlan, Held]:
    """The plan without the file operations below `blocked`, and what was held."""
    held = Held()

    def keep(*paths: str | None) -> bool:
        for rel_path in paths:
            found = blocker(rel_path, blocked)
            if found is not None:
                held.add(found)
                return False
        return True

    if not blocked:
        return plan, held
    kept = replace(
        plan,
        trash=[e for e in plan.trash if keep(e.rel_path)],
        forgets=[e for e in plan.forgets if keep(e.rel_path)],
        withholds=[e for e in plan.withholds if keep(e.rel_path)],
        withheld_dirs=[(f, p) for f, p in plan.withheld_dirs if keep(p)],
        moves=[m for m in plan.moves if keep(m.old_rel_path, m.entry.rel_path)],
        records=[r for r in plan.records if keep(r.entry.rel_path, r.forget)],
        fetches=[f for f in plan.fetches if keep(f.rel_path, f.forget)],
        conflicts=[c for c in plan.conflicts if keep(c.rel_path)],
        dir_removals=[e for e in plan.dir_removals if keep(e.rel_path)],
    )
    return kept, held

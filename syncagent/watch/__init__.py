"""Watch mapping roots: watchdog observers, the settle queue, rescan triggers.

The only package that imports watchdog.
"""

from syncagent.watch.observer import MappingWatcher
from syncagent.watch.settle import SettleQueue

__all__ = ["MappingWatcher", "SettleQueue"]

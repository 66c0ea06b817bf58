"""Allow `python -m syncagent`."""

from syncagent.cli import main

main()

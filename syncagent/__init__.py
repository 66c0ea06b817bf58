"""syncagent: watch-folder ingest and mirror for the Compass API."""

__version__ = "0.1.0"

"""Everything a request handler needs, built once per server from the data dir."""

from __future__ import annotations

import asyncio
from pathlib import Path

from syncagent.emulator.assembly import Assembler
from syncagent.emulator.clock import Clock
from syncagent.emulator.db import dispose, engine_of, open_database
from syncagent.emulator.grants import install as install_grants
from syncagent.emulator.ingest import Ingests
from syncagent.emulator.objects import ObjectStore
from syncagent.emulator.proxy_jobs import ProxyJobs
from syncagent.emulator.secrets_store import derive_key, load_secret
from syncagent.emulator.signing import UrlSigner
from syncagent.emulator.stats import Stats
from syncagent.emulator.tokens import TokenIssuer
from syncagent.emulator.users import Accounts


class EmulatorContext:
    """The emulator's state: database, files, clock, keys, counters, workers."""

    def __init__(
        self,
        data_dir: Path,
        token_ttl: float,
        url_ttl: float,
        ingest_delay: float = 0.0,
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.url_ttl = url_ttl
        self.ingest_delay = ingest_delay
        """Seconds between `complete` and the asset showing the new file (0: none)."""
        self.clock = Clock()
        secret = load_secret(data_dir)
        self.tokens = TokenIssuer(derive_key(secret, "jwt"), self.clock, token_ttl)
        self.signer = UrlSigner(derive_key(secret, "url"), self.clock)
        self.sessions = open_database(data_dir / "emulator.db")
        self.engine = engine_of(self.sessions)
        """For Core-only work on the hot routes (no Session): connect() or begin()."""
        install_grants(self.sessions)
        self.accounts = Accounts(self.sessions)
        self.objects = ObjectStore(data_dir / "objects")
        self.assembler = Assembler(self.objects)
        self.stats = Stats()
        self.proxy_jobs = ProxyJobs(self.sessions, self.objects)
        self.ingests = Ingests(self.engine)
        self.completions: dict[int, asyncio.Future[None]] = {}
        """Assembly work in progress, by upload ID (touched on the event loop only)."""

    def sign_download(self, base_url: str, key: str, ttl: float | None = None) -> str:
        """Return a presigned GET URL for the stored object `key`."""
        ttl = self.url_ttl if ttl is None else ttl
        return self.signer.sign(base_url, "GET", f"/s3/objects/{key}", ttl)

    def close(self) -> None:
        """Stop the workers and close the database."""
        self.proxy_jobs.close()
        self.assembler.close()
        self.objects.close()
        dispose(self.sessions)

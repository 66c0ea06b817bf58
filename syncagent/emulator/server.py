"""Run the emulator in-process: uvicorn (httptools) on a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import uvicorn

from syncagent.emulator.app import build_app
from syncagent.emulator.context import EmulatorContext
from syncagent.emulator.seed import seed

logger = logging.getLogger(__name__)

_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0


class EmulatorServer:
    """A Compass emulator serving `data_dir`; start() returns its base URL.

    Usable as a context manager. stop() is idempotent; the data directory keeps
    everything, so a new server on the same directory carries on where it left.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Sequence[tuple[str, str]] | None = None,
        folders: Sequence[tuple[int, str, int | None]] | None = None,
        token_ttl: float = 3600,
        url_ttl: float = 900,
        faults: str | None = None,
        ingest_delay: float = 0.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.users = list(users) if users else None
        self.folders = list(folders) if folders else None
        self.token_ttl = token_ttl
        self.url_ttl = url_ttl
        self.faults = faults
        self.ingest_delay = ingest_delay
        self.url = ""
        self._ctx: EmulatorContext | None = None
        self._server: _EmbeddedServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Seed the data dir and serve; return "http://HOST:PORT" once listening."""
        if self._thread is not None:
            return self.url
        ctx = EmulatorContext(
            self.data_dir, self.token_ttl, self.url_ttl, self.ingest_delay
        )
        try:
            with ctx.sessions.begin() as session:
                seed(session, self.users, self.folders, ctx.clock.now_ms())
            ctx.proxy_jobs.resume()
            sock = _listening_socket(self.host, self.port)
        except BaseException:
            ctx.close()
            raise
        self._ctx = ctx
        self.port = sock.getsockname()[1]
        self.url = f"http://{_url_host(self.host)}:{self.port}"

        config = uvicorn.Config(
            build_app(ctx, self.faults),
            http="httptools",
            ws="none",
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_graceful_shutdown=3,
        )
        self._server = _EmbeddedServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="compass-emulator"
        )
        self._thread.daemon = True
        self._thread.start()
        self._wait_started()
        logger.info("emulator: serving %s from %s", self.url, self.data_dir)
        return self.url

    def _wait_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator failed to start; see the log")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving and release the data dir (safe to call more than once)."""
        server, thread, ctx = self._server, self._thread, self._ctx
        self._server = self._thread = self._ctx = None
        if server is not None and thread is not None:
            server.request_exit()
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                server.force_exit = True
                thread.join(_STOP_TIMEOUT)
        if ctx is not None:
            ctx.close()

    @property
    def context(self) -> EmulatorContext:
        """The running server's state (for in-process tests and tools)."""
        if self._ctx is None:
            raise RuntimeError("the emulator is not running")
        return self._ctx

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class _EmbeddedServer(uvicorn.Server):
    """uvicorn's server, stopped promptly: woken by stop() instead of a 0.1 s poll.

    Tests start and stop a server per test, so a tenth of a second here is
    whole seconds over a suite.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def request_exit(self) -> None:
        """Ask the server to stop (from any thread)."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        """Tick as uvicorn does (date header, limits), but wake at once on stop."""
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close the listeners, let open requests finish, then cancel stragglers."""
        for listener in self.servers:
            listener.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()

        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.timeout_graceful_shutdown or 0)
        state = self.server_state
        while (state.connections or state.tasks) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for task in state.tasks:
            task.cancel()
        for listener in self.servers:
            await listener.wait_closed()


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(256)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

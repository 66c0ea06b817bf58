"""`syncagent run`: the background agent, until SIGINT, SIGTERM or SIGHUP.

Exit status: 0 after a stop by signal, 1 if another agent already runs on the ledger
or the ledger fails, 2 on configuration errors or credentials Compass refuses.
"""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType

from syncagent.agent.liveness import liveness
from syncagent.agent.service import AgentService, RegistrationLost
from syncagent.compass import AuthenticationFailed, CompassError
from syncagent.config import Config, ConfigError
from syncagent.ledger import LedgerError
from syncagent.runtime import Runtime, open_ledger, open_runtime

log = logging.getLogger(__name__)

# SIGHUP is a stop too: the terminal of a foreground agent was closed, and its default
# would end the process at once, leaving its registration on the ledger.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_agent(config: Config) -> int:
    """Run the agent until a signal stops it; return the process exit code.

    Logging is set up by the caller (before the configuration is read, so that its
    errors are logged in the chosen format too).
    """
    _stop_while_starting()
    for warning in config.warnings:
        log.warning("%s", warning)
    try:
        # Checked before the runtime opens, which may start the embedded emulator.
        if not _first_agent(config):
            return 1
        with open_runtime(config, "run") as runtime:
            # Looked at again once registered: two agents started together both
            # passed the first look; the later one to register gives way.
            if not _first_registered(runtime):
                return 1
            _log_in(runtime)
            return _serve(runtime)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    except AuthenticationFailed as exc:
        log.error("%s", exc)
        return 2
    except LedgerError as exc:
        log.error("agent stopped: %s", exc)
        return 1


def _first_agent(config: Config) -> bool:
    """Whether no other live agent works on this ledger; forget dead ones."""
    ledger = open_ledger(config)
    try:
        for info in ledger.agents():
            if info.kind != "run":
                continue
            verdict = liveness(info)
            if verdict.alive:
                log.error(
                    "another agent already runs on this ledger (pid %d on %s: %s)",
                    info.pid,
                    info.hostname,
                    verdict.reason,
                )
                return False
            ledger.unregister_agent(info.owner)
    finally:
        ledger.close()
    return True


def _first_registered(runtime: Runtime) -> bool:
    """Whether this agent registered before any other live one on the ledger."""
    agents = [a for a in runtime.ledger.agents() if a.kind == "run"]
    mine = next((a for a in agents if a.owner == runtime.owner), None)
    if mine is None:
        return True
    for info in agents:
        if info.owner == runtime.owner or not liveness(info).alive:
            continue
        if (info.started_at, info.owner) < (mine.started_at, mine.owner):
            log.error(
                "another agent already runs on this ledger (pid %d on %s, started "
                "just before this one)",
                info.pid,
                info.hostname,
            )
            return False
    return True


def _stop_while_starting() -> None:
    """Until the agent serves, a stop signal ends it at once: nothing is under way
    yet (the first login may retry for a long while when Compass is away)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        del frame
        log.warning("%s while starting: stopped", signal.Signals(signum).name)
        logging.shutdown()
        os._exit(0)

    for signum in STOP_SIGNALS:
        signal.signal(signum, handle)


def _log_in(runtime: Runtime) -> None:
    """Log in now, so bad credentials stop the agent at once (AuthenticationFailed)."""
    try:
        runtime.client.authenticate()
    except AuthenticationFailed:
        raise
    except CompassError as exc:
        log.warning("Compass is not reachable yet (%s); passes will retry", exc)


def _serve(runtime: Runtime) -> int:
    service = AgentService(runtime)
    _on_signals(service, runtime)
    service.start()
    service.wait()
    timeout = runtime.config.agent.shutdown_timeout
    if not service.shutdown(timeout):
        _stop_now(runtime, f"shutdown_timeout ({timeout:.0f} s) reached")
    if isinstance(service.fatal, RegistrationLost):
        return 1  # another agent runs on the ledger now
    if service.fatal is not None:
        return 2
    log.info("agent stopped")
    return 0


def _on_signals(service: AgentService, runtime: Runtime) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        del frame
        name = signal.Signals(signum).name
        if service.stopping.is_set():
            _stop_now(runtime, f"second {name}")
        service.request_stop(name)

    for signum in STOP_SIGNALS:
        signal.signal(signum, handle)


def _stop_now(runtime: Runtime, why: str) -> None:
    """Exit at once. Safe: every upload step is checkpointed in the ledger first."""
    log.warning(
        "%s: stopping now; uploads in flight resume from their checkpoint at the "
        "next start",
        why,
    )
    try:
        runtime.ledger.unregister_agent(runtime.owner)
    except Exception:
        log.debug("could not unregister from the ledger", exc_info=True)
    logging.shutdown()
    os._exit(0)

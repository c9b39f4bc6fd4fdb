"""How a cstor service runs as a process of its own: `python -m services.<name>`.

Every service's `__main__` hands its `run(settings, stop)` to `run_service`, so the four
start, log, stop and collect garbage alike, in compose as under `cstor up`, and none needs
the development launcher to run.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Awaitable, Callable

import uvloop

from cstor import logs
from cstor.settings import Settings, SettingsError
from cstor.stream import StreamReplicasError

ServiceRun = Callable[[Settings, asyncio.Event], Awaitable[None]]
"""A service's main coroutine: serve with these settings until the event is set."""


def configure_logging(log_format: logs.LogFormat = "text", service: str = "cstor") -> None:
    """One log format for every cstor process (CSTOR_LOG_FORMAT), `service` naming it."""
    logs.configure(log_format, service)


def run_service(run: ServiceRun, service: str) -> None:
    """Run one service with the settings of the environment until SIGINT or SIGTERM.

    A setting that is wrong ends the process with its message and status 2, not a
    traceback, as the `cstor` command does.
    """
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"cstor: {error}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings.log_format, service)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    tune_garbage_collector()
    try:
        uvloop.run(serve())
    except StreamReplicasError as error:  # CSTOR_STREAM_REPLICAS the servers cannot hold
        print(f"cstor: {error}", file=sys.stderr)
        sys.exit(2)


def tune_garbage_collector() -> None:
    """Collect cycles less often, and never scan what start-up loaded again.

    A service allocates a few objects per event or request and keeps few; Python's
    default (a collection every 700 allocations, each older generation every 10 of
    the one below) spent a sixth of the copier's CPU per small object
    (`bench/datapath.py`). Start-up objects (modules, classes) go to a generation
    that is never collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)

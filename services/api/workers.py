"""Several api worker processes on one port, each binding it with SO_REUSEPORT.

The api is Python: one process answers on one core at most. Worker processes each
listen on the same address with SO_REUSEPORT, so the kernel spreads new connections
over them evenly (a socket shared by all of them would let whichever woke first take
a burst of connections, and keep-alive clients stay where they landed). A worker
serves pages and REST only; the process that started them runs the outbox relay, so
the workers spend nothing on it. A worker that dies is started again; a worker whose
parent dies is stopped by the kernel (PR_SET_PDEATHSIG), so none is left serving.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
from multiprocessing.process import BaseProcess

import uvicorn

from cstor.runtime import configure_logging, tune_garbage_collector
from cstor.settings import Settings
from services.api.app import create_app

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def uvicorn_config(app: object, settings: Settings) -> uvicorn.Config:
    """How every api process runs uvicorn, one process or many."""
    trusted = [str(network) for network in settings.trusted_proxy_networks()]
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        # Uvicorn's lines go to the root logger, in the process's format (CSTOR_LOG_FORMAT).
        log_config=None,
        lifespan="on",
        # Uvicorn's own default trusts X-Forwarded-For from 127.0.0.1, so anyone on the
        # machine could pick the address sign-in throttling counts; only the proxies in
        # CSTOR_TRUSTED_PROXIES are trusted (uvicorn then takes the right-most address none
        # of them is, and X-Forwarded-Proto for the session cookie's Secure flag).
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted,
    )


class WorkerPool:
    """``settings.api_workers`` processes serving the api on ``settings.api_port``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[BaseProcess] = []
        # Whether the relay's NATS connection is connected, set by this process and read by
        # the workers' readiness: they have no connection of their own.
        self.nats_connected = self._context.RawValue(ctypes.c_bool, False)

    def start(self) -> None:
        self._workers = [self._start_one() for _ in range(self.settings.api_workers)]

    def _start_one(self) -> BaseProcess:
        worker = self._context.Process(
            target=serve_worker,
            args=(self.settings, os.getpid(), self.nats_connected),
            name="cstor-api-worker",
        )
        worker.start()
        return worker

    def restart_exited(self) -> int:
        """Start again any worker that died; returns how many were."""
        restarted = 0
        for index, worker in enumerate(self._workers):
            if worker.exitcode is not None:
                log.warning(
                    "api worker %s exited with %s; restarting it", worker.pid, worker.exitcode
                )
                self._workers[index] = self._start_one()
                restarted += 1
        return restarted

    def stop(self, timeout: float = 10.0) -> None:
        """Ask each worker to finish its requests and stop (SIGTERM); kill the late ones."""
        for worker in self._workers:
            if worker.exitcode is None:
                worker.terminate()
        for worker in self._workers:
            worker.join(timeout)
            if worker.exitcode is None:
                worker.kill()
                worker.join()


def serve_worker(settings: Settings, parent: int, nats_connected: ctypes.c_bool) -> None:
    """A worker process: the api without the relay, until SIGTERM or its parent's end."""
    _die_with_parent(parent)
    configure_logging(settings.log_format, "api")  # a spawned process starts with none
    # The app is built here, in the worker: its lifespan's pools are the worker's own.
    app = create_app(settings, relay=False, nats_connected=lambda: bool(nats_connected.value))
    config = uvicorn_config(app, settings)
    tune_garbage_collector()  # as every cstor service's process does
    uvicorn.Server(config).run(sockets=[reuse_port_socket(settings.api_host, settings.api_port)])


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other workers may bind to the same address too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _die_with_parent(parent: int) -> None:
    """Ask Linux to stop this worker (SIGTERM) when the process that started it dies."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # it died before that was asked
        os._exit(1)

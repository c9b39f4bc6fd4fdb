"""Run cstor's services as child processes, and the embedded servers they need."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from cstor.secrets.cipher import load_or_create_key
from cstor.settings import Settings
from launcher import embedded

log = logging.getLogger(__name__)

SERVICES = ("api", "projector", "planner", "transfer")
# What opens connections' secrets (the api also signs its CSRF tokens with the key): only
# the services that read or write those secrets get them. The projector folds events.
SECRET_SETTINGS = ("CSTOR_SECRET_KEY", "CSTOR_SECRETS_MANAGER_SECRET_KEY")
SERVICES_WITH_SECRETS = frozenset({"api", "planner", "transfer"})
LOCAL_ADMIN = "admin@localhost"  # the embedded stack's own account (launcher.local_admin)


@dataclass
class ServiceProcesses:
    """The four services (transfer as N replicas), each its own process, logging to a file."""

    settings: Settings
    transfer_replicas: int = 1
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> None:
        for name in SERVICES:
            replicas = self.transfer_replicas if name == "transfer" else 1
            for replica in range(replicas):
                self.start_one(name, f"{name}-{replica}" if replicas > 1 else name)

    def start_one(self, service: str, label: str) -> subprocess.Popen[bytes]:
        logs = self.settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{label}.log", "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", f"services.{service}"],
                env=service_environment(service, self.settings),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes[label] = process
        return process

    def restart_exited(self) -> list[str]:
        """Start again any service that died; returns their labels."""
        restarted = []
        for label, process in list(self.processes.items()):
            if process.poll() is not None:
                log.warning("%s exited with %s; restarting it", label, process.returncode)
                self.start_one(label.split("-")[0], label)
                restarted.append(label)
        return restarted

    def stop(self, timeout: float = 15.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def service_environment(service: str, settings: Settings) -> dict[str, str]:
    """A service's environment: ours with the settings, less the secrets it has no use
    for (a secret set in our own environment too)."""
    env = {**os.environ, **settings.to_env()}
    if service not in SERVICES_WITH_SECRETS:
        for name in SECRET_SETTINGS:
            env.pop(name, None)
    return env


@dataclass(frozen=True)
class StackOptions:
    """Where the embedded stack keeps its data and which ports it listens on."""

    data_dir: Path = Path(".cstor")
    api_port: int = 8000
    postgres_port: int = 0  # 0: a free port
    nats_port: int = 0
    database_url: str = ""  # given: use that Postgres instead of starting one
    nats_url: str = ""
    transfer_replicas: int = 1
    nats_cluster: int = 0  # > 1: a local JetStream cluster of that many nodes, stream R3


@contextlib.contextmanager
def running_stack(options: StackOptions) -> Iterator[ServiceProcesses]:
    """Postgres and NATS (unless URLs are given) and the four services, stopped on exit."""
    data_dir = options.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        database_url = options.database_url
        if not database_url:
            port = options.postgres_port or embedded.free_port()
            database_url = stack.enter_context(embedded.start_postgres(data_dir, port)).url
        nats_url = options.nats_url
        configured = Settings.from_env()
        if options.nats_cluster > 1 and not nats_url:
            cluster = embedded.start_nats_cluster(data_dir / "nats-cluster", options.nats_cluster)
            nats_url = stack.enter_context(cluster).url
            replicas = min(3, options.nats_cluster)
            configured = msgspec.structs.replace(configured, stream_replicas=replicas)
        elif not nats_url:
            port = options.nats_port or embedded.free_port()
            nats_url = stack.enter_context(embedded.start_nats(data_dir, port)).url
        settings = msgspec.structs.replace(
            configured,
            database_url=database_url,
            nats_url=nats_url,
            data_dir=data_dir,
            api_port=options.api_port,
            # The local admin, signed up by the stack at its first start, sees the admin pages.
            admin_emails=configured.admin_emails or LOCAL_ADMIN,
        )
        if not settings.secret_key:
            settings = msgspec.structs.replace(settings, secret_key=load_or_create_key(data_dir))
        services = ServiceProcesses(settings, options.transfer_replicas)
        stack.callback(services.stop)
        services.start()
        yield services

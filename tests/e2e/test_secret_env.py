"""CSTOR_SECRET_KEY reaches only the processes that open connections' secrets: the api,
the planner and transfer; never the projector, nor the embedded Postgres, NATS and S3
servers. Read from /proc/<pid>/environ of the real processes of a running stack."""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from cryptography.fernet import Fernet

from launcher.embedded import free_port, start_rclone_s3
from launcher.local_admin import wait_for_api
from launcher.stack import StackOptions, running_stack

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


def environ(pid: int) -> bytes:
    """A process's environment as the kernel holds it (NUL-separated NAME=value)."""
    return Path(f"/proc/{pid}/environ").read_bytes()


def environ_while_running(pid: int) -> bytes:
    """As `environ`, or nothing for a process that ended since it was listed (Postgres
    starts and ends backends of its own, e.g. for autovacuum, at any time)."""
    try:
        return environ(pid)
    except (FileNotFoundError, ProcessLookupError):
        return b""


def name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:  # gone meanwhile
        return ""


def test_only_the_services_that_open_secrets_are_given_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operator who set the key (and a Secrets Manager key) in their environment
    key = Fernet.generate_key().decode()
    manager_key = "secrets-manager-key-" + Fernet.generate_key().decode()[:12]
    monkeypatch.setenv("CSTOR_SECRET_KEY", key)
    monkeypatch.setenv("CSTOR_SECRETS_MANAGER_SECRET_KEY", manager_key)
    secrets = (key.encode(), manager_key.encode())

    # When the embedded stack starts: Postgres, NATS, the four services, and an S3 server
    options = StackOptions(data_dir=tmp_path / "stack", api_port=free_port())
    with (
        running_stack(options) as services,
        start_rclone_s3(tmp_path / "s3", free_port(), "demo-access", "demo-secret") as s3,
        httpx.Client(base_url=f"http://127.0.0.1:{options.api_port}") as api,
    ):
        wait_for_api(api, services)
        pids = {label: process.pid for label, process in services.processes.items()}
        descendants = psutil.Process().children(recursive=True)

        # Then the api, planner and transfer have the key (and theirs only)
        for label in ("api", "planner", "transfer"):
            assert all(secret in environ(pids[label]) for secret in secrets), label
        # And the projector has neither
        assert not any(secret in environ(pids["projector"]) for secret in secrets)
        # And no process of Postgres, NATS or rclone has them
        servers = [p for p in descendants if name(p) in ("postgres", "nats-server")]
        assert {name(p) for p in servers} == {"postgres", "nats-server"}
        assert s3.pid is not None
        for pid in [p.pid for p in servers] + [s3.pid]:
            assert not any(secret in environ_while_running(pid) for secret in secrets), pid


def test_compose_gives_the_key_only_to_the_api_planner_and_transfer() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    given = {name for name, s in services.items() if "CSTOR_SECRET_KEY" in s.get("environment", {})}
    assert given == {"api", "planner", "transfer"}
    # And every cstor service still has the rest of its settings
    for name in ("api", "planner", "transfer", "projector"):
        assert {"CSTOR_DATABASE_URL", "CSTOR_NATS_URL"} <= set(services[name]["environment"])

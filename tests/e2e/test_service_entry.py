"""Each service runs as `python -m services.<name>` (as compose runs it) from its own
package, without the launcher: started alone on real Postgres and NATS, it serves, and
stops cleanly on SIGTERM; a wrong setting ends it with its message, not a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet

from launcher.embedded import free_port

SERVICES = ("api", "planner", "transfer", "projector")


def without_launcher(tmp_path: Path) -> str:
    """A PYTHONPATH on which `import launcher` fails, as in an image without it."""
    shadow = tmp_path / "shadow" / "launcher"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ImportError('a service imported the launcher, which production lacks')\n"
    )
    return str(shadow.parent)


def service_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSTOR_")}
    # The shadow first, then any PYTHONPATH the tests run with (a checkout other than the
    # installed one must be the code the service runs).
    path = [without_launcher(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    env.update(settings, PYTHONPATH=os.pathsep.join(path))
    return env


def schema_applied(database_url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with psycopg.connect(database_url, connect_timeout=2) as conn:
                row = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])

    return ready


def api_healthy(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def probe_ready(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def wait_for(ready: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        assert process.poll() is None, "the service exited during start-up"
        assert time.monotonic() < deadline, "the service did not become ready in 60 s"
        time.sleep(0.2)


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_runs_as_its_own_module_without_the_launcher(
    name: str, database_url: str, nats_url: str, tmp_path: Path
) -> None:
    # Given the settings compose gives a service, and a Python that cannot import the launcher
    port, health_port = free_port(), free_port()
    env = service_env(
        tmp_path,
        CSTOR_DATABASE_URL=database_url,
        CSTOR_NATS_URL=nats_url,
        CSTOR_SECRET_KEY=Fernet.generate_key().decode(),
        CSTOR_API_HOST="127.0.0.1",
        CSTOR_API_PORT=str(port),
        CSTOR_API_WORKERS="1",
        CSTOR_HEALTH_PORT=str(health_port),
        CSTOR_DATA_DIR=str(tmp_path / "data"),
    )
    log = tmp_path / f"{name}.log"

    # When it is started as compose starts it
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=env,
            cwd=tmp_path,  # not the checkout, whose launcher/ would come first on sys.path
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # Then it comes up on its own: the api answers, the others have migrated the schema
        wait_for(api_healthy(port) if name == "api" else schema_applied(database_url), process)
        # And it is ready by its probe, the api's on its own port, the others' on theirs
        wait_for(probe_ready(port if name == "api" else health_port), process)

        # And SIGTERM stops it cleanly
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "services.planner"],
        ["-m", "services.projector"],
        ["-m", "launcher", "service", "api"],
    ],
)
def test_a_wrong_setting_ends_a_service_with_its_message(argv: list[str], tmp_path: Path) -> None:
    # Given a port that is not a number
    env = service_env(tmp_path, CSTOR_API_PORT="eighty")
    env.pop("PYTHONPATH")  # `cstor service` is the launcher's own command

    # When the service is started (directly, or by the launcher's command for it)
    done = subprocess.run(
        [sys.executable, *argv], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    # Then it ends with status 2 and the setting's name, not a traceback
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("cstor: ")
    assert "CSTOR_API_PORT" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_log_format_ends_a_service_with_its_message(tmp_path: Path) -> None:
    # Given a log format cstor does not write
    env = service_env(tmp_path, CSTOR_LOG_FORMAT="xml")

    # When a service is started
    done = subprocess.run(
        [sys.executable, "-m", "services.transfer"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    # Then it ends with status 2, naming the variable and the formats it takes
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("cstor: ")
    assert "CSTOR_LOG_FORMAT" in done.stderr
    assert "(it takes 'text' or 'json')" in done.stderr
    assert "Traceback" not in done.stderr

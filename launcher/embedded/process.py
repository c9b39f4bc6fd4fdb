"""A server of the embedded stack as a child process: started, awaited, stopped.

`cstor up` / `cstor demo` and the test suite start real servers from pip-installed
binaries, on 127.0.0.1 only. Each server is a context manager; stopping it is graceful.
On Linux a server started from the main thread also stops when its parent process dies,
so a crashed CLI or test run leaves nothing behind. The servers themselves are in
postgres.py, nats.py and s3.py beside this module.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedServer:
    """A server running as a child process, with its output in a log file."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, log_path: Path | None) -> None:
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._process.pid if self.running and self._process else None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and return once it serves requests."""
        raise NotImplementedError

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the server to shut down, and kill it if it has not within `timeout` seconds."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(self.stop_signal)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's log, for error messages."""
        if self._log is None:
            return ""
        fd = self._log.fileno()
        size = os.fstat(fd).st_size
        start = max(0, size - 8192)
        # pread leaves alone the file offset that the child shares with us.
        text = os.pread(fd, size - start, start).decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _spawn(
        self,
        argv: Sequence[str | Path],
        *,
        account: pwd.struct_passwd | None = None,
        cwd: Path | None = None,
    ) -> None:
        """Start the child; as `account` (its user and group only) when one is given."""
        if self._log is None:
            self._log = self._open_log()
        self._process = subprocess.Popen(
            [str(arg) for arg in argv],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=server_environment(),
            **run_as(account),
            # Its own session: Ctrl-C reaches only us, and we stop servers in order.
            start_new_session=True,
            preexec_fn=_die_with_parent(self.stop_signal),
        )

    def _open_log(self) -> IO[bytes]:
        if self.log_path is None:
            return tempfile.TemporaryFile()  # still there for log_tail, gone on close
        return self.log_path.open("a+b")  # readable too, for log_tail

    def _wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        """Poll `ready` until it is true; on failure stop the child and raise with its log."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                problem = "exited during start-up"
            elif ready():
                return
            elif time.monotonic() > deadline:
                problem = f"did not become ready within {timeout:.0f} s"
            else:
                time.sleep(0.05)
                continue
            tail = self.log_tail()
            self.stop(timeout=5)
            raise RuntimeError(f"{self.name} {problem}; end of its log:\n{tail}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def server_environment() -> dict[str, str]:
    """Our environment less cstor's own settings: a server reads none of them, and
    CSTOR_SECRET_KEY must reach no process that has no use for it."""
    return {name: value for name, value in os.environ.items() if not name.startswith("CSTOR_")}


def find_binary(name: str, package: str) -> Path:
    """A binary installed by a pip package: in this interpreter's bin dir, else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found; install it with: pip install '{package}'")
    return Path(found)


def _die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send the child `sig` when its parent dies.

    Linux sends it when the *thread* that forked the child exits, so it is only
    armed from the main thread; a server started from a worker thread (e.g.
    anyio.to_thread) would otherwise be stopped when that thread is retired.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork, not in the child
    parent = os.getpid()

    def arm() -> None:
        # Runs after the switch to `user=`, which would otherwise clear the setting.
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before we armed it
            os._exit(1)

    return arm


def run_as(account: pwd.struct_passwd | None) -> dict[str, Any]:
    """subprocess arguments that run a child as `account`: its user and group, no others.

    With `user=` alone the child would keep root's group, and root-group folders
    that shut out their group (0701, as pytest makes them) would shut it out too.
    """
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

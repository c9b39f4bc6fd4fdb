"""The embedded stack's servers: Postgres, NATS JetStream and S3, each a child process
on 127.0.0.1 (process.py), for `cstor up`, `cstor demo`, the benchmarks and the tests."""

from __future__ import annotations

from launcher.embedded.nats import EmbeddedNats, EmbeddedNatsCluster, start_nats, start_nats_cluster
from launcher.embedded.postgres import POSTGRES_SYSTEM_USER, EmbeddedPostgres, start_postgres
from launcher.embedded.process import EmbeddedServer, free_port
from launcher.embedded.s3 import EmbeddedS3, start_moto, start_rclone_s3

__all__ = [
    "POSTGRES_SYSTEM_USER",
    "EmbeddedNats",
    "EmbeddedNatsCluster",
    "EmbeddedPostgres",
    "EmbeddedS3",
    "EmbeddedServer",
    "free_port",
    "start_moto",
    "start_nats",
    "start_nats_cluster",
    "start_postgres",
    "start_rclone_s3",
]

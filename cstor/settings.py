"""The one settings object, read from the environment (12-factor)."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin, get_type_hints
from urllib.parse import unquote, urlsplit

import msgspec

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Counts, sizes and waits that cannot work at zero (a transfer of concurrency 0 waits for
# ever, copying nothing): refused at the start, naming the variable, not found hours later.
AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PartSize = Annotated[int, msgspec.Meta(ge=1, le=5 * 1024**3)]
"""S3 takes no part over 5 GiB: a larger setting would fail every multipart copy."""


MIN_STREAM_BYTES = 1024 * 1024
"""The smallest CSTOR_STREAM_MAX_BYTES: a stream must hold far more than one event."""


class SettingsError(ValueError):
    """A CSTOR_* variable holds a value cstor cannot use; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a cstor process needs to know about where it runs."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/cstor"
    nats_url: str = "nats://127.0.0.1:4222"
    data_dir: Path = Path(".cstor")
    secret_key: str = ""
    # Where connection secrets are kept: encrypted with secret_key in Postgres, or in AWS
    # Secrets Manager (Postgres then keeps only each secret's ARN). Empty endpoint: AWS's
    # own for the region; empty keys: boto3's usual chain (AWS_* variables, an IAM role).
    secrets_backend: Literal["postgres", "aws-secrets-manager"] = "postgres"
    secrets_manager_endpoint: str = ""
    secrets_manager_region: str = "us-east-1"
    secrets_manager_access_key: str = ""
    secrets_manager_secret_key: str = ""
    secrets_manager_prefix: str = "cstor/connections/"
    api_host: str = "127.0.0.1"
    api_port: Port = 8000
    # Processes answering the api's requests: Python uses one core per process. With more
    # than one, each is a worker of its own and the api's first process only runs the relay.
    # One more than the cores: the kernel hands each worker its share of the keep-alive
    # connections by a hash, unevenly, and a worker with more can then use the time
    # another leaves (bench/api_load.py on 2 cores: p95 226-282 ms with 3, 272-475 with 2).
    api_workers: int = 3
    # The reverse proxies in front of the api (addresses or CIDRs, comma-separated): only a
    # request from one of them has its client read from X-Forwarded-For (the right-most
    # address no trusted proxy wrote), as sign-in throttling counts it. Empty: none, and the
    # client is whoever connected, whatever headers it sends.
    trusted_proxies: str = ""
    # How every service writes its log lines: "text" for a terminal, "json" (one object a
    # line: time, level, service, message, and the migration, packet or key it concerns)
    # for compose and Kubernetes.
    log_format: Literal["text", "json"] = "text"
    # Liveness and readiness for Kubernetes' probes (cstor.health): the planner, transfer and
    # projector answer /healthz and /readyz on this port (0: no server); the api answers
    # them on its own port. The api is not ready while the relay is more than
    # relay_max_lag events behind the store.
    health_host: str = "127.0.0.1"
    health_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    relay_max_lag: AtLeastOne = 10_000
    stream_name: str = "CSTOR"
    # How long the stream remembers a message's Nats-Msg-Id (its event id) to drop a copy:
    # a relay resumes after the stream's last event, so a longer outage duplicates nothing.
    stream_duplicate_window: Seconds = 120.0
    # How much the stream keeps (cstor.bus.StreamLimits): messages older than max_age
    # seconds (default 7 days; 0: for ever) and, with max_bytes set (-1: no limit), the
    # oldest beyond that size are dropped. The store stays the source of truth: a consumer
    # further behind loses what aged out, and `cstor rebuild-read-models` folds it again.
    # No byte limit by default: one larger than the JetStream server's storage makes the
    # stream fail to start, and one reached drops messages nobody has read yet.
    stream_max_age: Annotated[float, msgspec.Meta(ge=0)] = 7 * 24 * 3600.0
    stream_max_bytes: int = -1
    # Copies of the stream JetStream keeps, each on its own server of a cluster (3 in
    # production, against a CSTOR_NATS_URL listing the cluster's servers); a single
    # server holds 1. Consumers follow the stream's.
    stream_replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    # Failures of an event, for any reason but an outage, before its consumer records it
    # as a dead letter and goes on (cstor.store.deadletters).
    consumer_max_failures: AtLeastOne = 5
    # Who may see the admin pages and endpoints (dead letters): comma-separated emails of
    # signed-up users. Nobody by default; the embedded stack names its local admin.
    # Sign-up does not prove an address: sign the account up before naming it here.
    admin_emails: str = ""
    packet_max_bytes: AtLeastOne = 200 * 1024 * 1024
    packet_max_objects: AtLeastOne = 250
    transfer_concurrency: AtLeastOne = 64
    copy_attempts: AtLeastOne = 3
    planner_ack_wait: Seconds = 30.0  # the same, for a migration being listed and planned
    transfer_ack_wait: Seconds = 30.0  # seconds without a heartbeat before a packet is redelivered
    # Large objects: multipart above the threshold, parts of at least part_size, two in
    # flight per 100 MiB up to parts_per_object; a replica holds at most transfer_memory
    # bytes of object data (parts in flight x part size), whatever it copies.
    transfer_multipart_threshold: AtLeastOne = 64 * 1024 * 1024
    transfer_part_size: PartSize = 16 * 1024 * 1024
    transfer_parts_per_object: AtLeastOne = 30
    transfer_memory: AtLeastOne = 512 * 1024 * 1024
    # Same store and keys on both sides: CopyObject up to this size, UploadPartCopy above.
    server_copy_threshold: AtLeastOne = 5 * 1024 * 1024 * 1024
    server_copy_part_size: PartSize = 512 * 1024 * 1024

    def __post_init__(self) -> None:
        self.trusted_proxy_networks()  # a typo stops the start, naming the variable
        self._check_stream_limits()
        self.nats_servers()  # a malformed entry stops the start, naming the variable

    def nats_servers(self) -> list[str]:
        """CSTOR_NATS_URL as a list: one server, or a cluster's, separated by commas."""
        servers = [entry.strip() for entry in self.nats_url.split(",")]
        for entry in servers:
            _check_nats_server(entry)
        return servers

    def _check_stream_limits(self) -> None:
        """Limits JetStream would refuse, or a stream too small to hold a message."""
        if self.stream_max_bytes != -1 and self.stream_max_bytes < MIN_STREAM_BYTES:
            raise ValueError(
                f"CSTOR_STREAM_MAX_BYTES: {self.stream_max_bytes} is too small a stream;"
                f" -1 is no limit, else at least {MIN_STREAM_BYTES} (1 MiB)"
            )
        if 0 < self.stream_max_age < self.stream_duplicate_window:
            raise ValueError(
                f"CSTOR_STREAM_MAX_AGE: {self.stream_max_age:g} s is shorter than"
                f" CSTOR_STREAM_DUPLICATE_WINDOW ({self.stream_duplicate_window:g} s);"
                " JetStream keeps a message at least that long (0 is for ever)"
            )

    def trusted_proxy_networks(self) -> list[IPNetwork]:
        """CSTOR_TRUSTED_PROXIES as networks (an address is a network of one)."""
        networks = []
        for entry in filter(None, (e.strip() for e in self.trusted_proxies.split(","))):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"CSTOR_TRUSTED_PROXIES: {entry!r} is not an IP address or a CIDR"
                    " (like 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return networks

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read CSTOR_* variables; anything unset keeps its default."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in msgspec.structs.fields(cls):
            raw = env.get("CSTOR_" + field.name.upper())
            if raw is not None and raw != "":
                values[field.name] = raw
        try:
            return msgspec.convert(values, cls, strict=False, dec_hook=_decode_path)
        except msgspec.ValidationError as error:
            raise SettingsError(_worded(str(error))) from None

    @property
    def admins(self) -> frozenset[str]:
        """The admins' emails, lower-cased."""
        return frozenset(e.strip().lower() for e in self.admin_emails.split(",") if e.strip())

    def to_env(self) -> dict[str, str]:
        """The CSTOR_* variables that reproduce these settings in a child process."""
        return {
            "CSTOR_" + name.upper(): str(value)
            for name, value in msgspec.structs.asdict(self).items()
        }

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment the eventsourcing library reads for its PostgreSQL persistence."""
        url = urlsplit(self.database_url)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "cstor.store.recorder:ColumnarRecorder",
            # The tables are made by cstor.store.migrations, before the application starts.
            "CREATE_TABLE": "no",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "cstor",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "8",
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_LOCK_TIMEOUT": "30",
        }


def _check_nats_server(entry: str) -> None:
    """One entry of CSTOR_NATS_URL: nats:// or tls://, a host and a port."""
    parsed = urlsplit(entry)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in ("nats", "tls") or not parsed.hostname or port is None:
        raise ValueError(
            f"CSTOR_NATS_URL: {entry!r} is not a NATS server; expected nats://host:port"
            " (or tls://host:port), several separated by commas"
        )


def _worded(error: str) -> str:
    """msgspec's message as the operator reads it: naming CSTOR_NAME (msgspec says
    `$.name`), and for a field of a few values, the values it takes."""
    field = re.search(r"`\$\.(\w+)`", error)
    message = re.sub(r"`\$\.(\w+)`", lambda m: "CSTOR_" + m[1].upper(), error)
    kind = get_type_hints(Settings).get(field[1]) if field else None
    if get_origin(kind) is Literal:
        message += f" (it takes {' or '.join(map(repr, get_args(kind)))})"
    return message


def _decode_path(type_: type, value: object) -> object:
    if type_ is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot read {type_} from the environment")

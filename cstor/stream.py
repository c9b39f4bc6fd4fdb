"""The event stream on JetStream: every ``cstor.>`` subject, on file, within its limits."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from cstor import subjects
from cstor.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamLimits:
    """What the event stream keeps, and for how long (CSTOR_STREAM_*)."""

    # Seconds the stream drops a message whose ``Nats-Msg-Id`` it has already stored.
    duplicate_window: float = 120.0
    # Seconds a message is kept (0: for ever). A consumer that falls further behind loses
    # what aged out; the read models are folded again from the store (rebuild-read-models).
    max_age: float = 7 * 24 * 3600.0
    # Bytes the stream keeps, the oldest messages dropped beyond (-1: no limit).
    max_bytes: int = -1
    # Copies of the stream, each on its own server of a JetStream cluster (1 on one server).
    replicas: int = 1

    @classmethod
    def of(cls, settings: Settings) -> StreamLimits:
        return cls(
            duplicate_window=settings.stream_duplicate_window,
            max_age=settings.stream_max_age,
            max_bytes=settings.stream_max_bytes,
            replicas=settings.stream_replicas,
        )


class StreamReplicasError(RuntimeError):
    """The stream's replicas cannot be had from these servers (one server, or too few)."""


# JetStream's error codes for replicas it cannot place: not clustered; too few servers.
_REPLICAS_REFUSED = {10074, 10005}


async def ensure_stream(
    js: JetStreamContext, name: str, limits: StreamLimits = StreamLimits()
) -> None:
    """Create the event stream (file storage, every ``cstor.>`` subject) if it is missing.

    A stream made with other `limits` is changed to them: a process started with new
    CSTOR_STREAM_* settings applies them, and says so once in its log. Replicas change on a
    cluster (JetStream copies the stream to the new servers); a single server refuses more
    than one, with StreamReplicasError naming CSTOR_STREAM_REPLICAS.
    """
    try:
        await _ensure(js, name, limits)
    except APIError as error:
        if limits.replicas > 1 and error.err_code in _REPLICAS_REFUSED:
            raise StreamReplicasError(
                f"CSTOR_STREAM_REPLICAS: {limits.replicas} replicas of stream {name} need a"
                f" JetStream cluster of at least {limits.replicas} servers; the NATS server"
                f" refused ({error.description}). Set CSTOR_STREAM_REPLICAS=1 for a single"
                " server, or list the cluster's servers in CSTOR_NATS_URL"
            ) from None
        raise


async def _ensure(js: JetStreamContext, name: str, limits: StreamLimits) -> None:
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=name,
                subjects=[subjects.ALL],
                storage=StorageType.FILE,
                duplicate_window=limits.duplicate_window,
                max_age=limits.max_age,
                max_bytes=limits.max_bytes,
                num_replicas=limits.replicas,
            )
        )
        return
    held = StreamLimits(
        duplicate_window=info.config.duplicate_window,
        max_age=info.config.max_age or 0.0,  # none: for ever
        max_bytes=info.config.max_bytes or -1,
        replicas=info.config.num_replicas or 1,
    )
    if held != limits:
        await js.update_stream(
            info.config,
            duplicate_window=limits.duplicate_window,
            max_age=limits.max_age,
            max_bytes=limits.max_bytes,
            num_replicas=limits.replicas,
        )
        log.info("stream %s: limits changed from %s to %s", name, held, limits)

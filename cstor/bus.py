"""NATS JetStream adapter: connection, stream, and the one consumer loop of every service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from cstor import contracts, subjects

log = logging.getLogger(__name__)


class TransientError(Exception):
    """Work that may succeed if tried again later: the message is nak'ed with a delay."""


async def connect(url: str, name: str) -> Client:
    """A NATS connection that keeps reconnecting while the server is away."""
    return await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        allow_reconnect=True,
    )


async def ensure_stream(js: JetStreamContext, name: str) -> None:
    """Create the event stream (file storage, every ``cstor.>`` subject) if it is missing."""
    config = StreamConfig(
        name=name,
        subjects=[subjects.ALL],
        storage=StorageType.FILE,
        duplicate_window=120.0,
    )
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)


@dataclass
class Delivery:
    """One message of the stream, decoded, with what the handler needs to settle it."""

    msg: Msg
    event: contracts.AnyEvent
    attempt: int
    stream_sequence: int
    settled: bool = False

    async def in_progress(self) -> None:
        await self.msg.in_progress()


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer: who reads what, how many at once, how patiently."""

    stream: str
    durable: str
    filter_subjects: Sequence[str]
    batch: int = 1
    workers: int = 1
    ack_wait: float = 60.0
    # One worker handling its batches in order may ack only the last of each: the stream
    # takes it for all before it (AckPolicy.ALL), one message instead of one per event.
    ack_last: bool = False


Handler = Callable[[list[Delivery]], Awaitable[None]]


async def consume(
    js: JetStreamContext, spec: ConsumerSpec, handle: Handler, stop: asyncio.Event
) -> None:
    """Hand fetched batches to ``handle``; ack once it returns, nak with backoff if it fails.

    The handler commits its own work before returning, so an ack always follows a commit
    and a crash before the ack means redelivery. While it runs, the loop tells JetStream
    the work is in progress so long copies are not redelivered to another replica.
    """
    if spec.ack_last and spec.workers != 1:
        raise ValueError("ack_last needs the batches handled in order, by one worker")
    config = ConsumerConfig(
        durable_name=spec.durable,
        ack_policy=AckPolicy.ALL if spec.ack_last else AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=spec.ack_wait,
        max_ack_pending=max(1000, spec.batch * spec.workers * 4),
        filter_subjects=list(spec.filter_subjects),
    )
    await _add_consumer(js, spec.stream, config)
    subscription = await js.pull_subscribe_bind(spec.durable, stream=spec.stream)

    async def worker() -> None:
        while not stop.is_set():
            try:
                msgs = await _fetch(subscription, spec.batch)
            except (NatsTimeout, TimeoutError):
                continue  # nothing to do right now
            except Exception as error:  # the server is away: wait for the reconnect
                log.warning("%s: fetch failed (%r); retrying", spec.durable, error)
                await asyncio.sleep(1.0)
                continue
            deliveries = await _decode(msgs)
            if deliveries:
                await _handle(spec, handle, deliveries, stop)

    try:
        await asyncio.gather(*(worker() for _ in range(spec.workers)))
    finally:
        # A pull subscription left open makes the connection's drain() wait for its timeout.
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()


async def _add_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create the durable consumer, or update it; one made with another ack policy, which
    cannot change, is made again, from the start of the stream (its consumer skips what
    it has applied: the projector keeps its position with its rows)."""
    try:
        await js.add_consumer(stream, config)
    except APIError:  # 'ack policy can not be updated', among others
        assert config.durable_name is not None
        found = await js.consumer_info(stream, config.durable_name)
        if found.config.ack_policy == config.ack_policy:
            raise
        log.info("%s: ack policy now %s; consumer made again", config.durable_name,
                 config.ack_policy)  # fmt: skip
        await js.delete_consumer(stream, config.durable_name)
        await js.add_consumer(stream, config)


async def _fetch(subscription: JetStreamContext.PullSubscription, batch: int) -> list[Msg]:
    """Wait up to a second for a message; then take up to `batch` in all, as many as
    are there within 20 ms.

    One ``fetch(batch, timeout=1.0)`` could also hold the messages it had for the rest
    of its second: in the stack, a migration's completion sometimes reached the read
    models a second after it was recorded (nats-py alone did not show it). Here the
    wait after the first message is bounded whatever the client and server do.
    """
    msgs = await subscription.fetch(1, timeout=1.0)
    if batch > 1:
        with contextlib.suppress(NatsTimeout, TimeoutError):
            msgs += await subscription.fetch(batch - 1, timeout=0.02)
    return msgs


async def _decode(msgs: list[Msg]) -> list[Delivery]:
    deliveries = []
    for msg in msgs:
        try:
            event = contracts.decoder.decode(msg.data)
        except msgspec.DecodeError:
            log.error("unreadable message on %s terminated", msg.subject)
            await msg.term()
            continue
        meta = msg.metadata
        deliveries.append(Delivery(msg, event, meta.num_delivered, meta.sequence.stream))
    return deliveries


async def _handle(
    spec: ConsumerSpec, handle: Handler, deliveries: list[Delivery], stop: asyncio.Event
) -> None:
    """Handle a batch, then ack it; a failed batch is nak'ed with backoff, or, on an
    ordered consumer (`ack_last`), tried again in place: messages after it would be
    handled first while it waited for redelivery, and the projector, which skips what is
    behind its position, would then never apply it."""
    heartbeat = asyncio.create_task(_keep_alive(deliveries, spec.ack_wait / 3))
    attempt = max(d.attempt for d in deliveries)
    try:
        while True:
            try:
                await handle(deliveries)
                break
            except Exception as error:
                delay = min(30.0, 0.5 * 2 ** (attempt - 1))
                transient = isinstance(error, TransientError)
                log.log(
                    logging.WARNING if transient else logging.ERROR,
                    "%s: handling failed (attempt %d), retry in %.1fs: %s",
                    spec.durable,
                    attempt,
                    delay,
                    error,
                    exc_info=not transient,
                )
                if spec.ack_last and not await _stopped_within(stop, delay):
                    attempt += 1
                    continue
                # Redelivered after `delay`; stopping, an ordered consumer's at once
                # (redeliveries go before newer messages).
                for delivery in deliveries:
                    if not delivery.settled:
                        with contextlib.suppress(Exception):
                            await delivery.msg.nak(delay=None if spec.ack_last else delay)
                return
    finally:
        heartbeat.cancel()
    if spec.ack_last:
        await deliveries[-1].msg.ack()  # and, by the consumer's policy, all before it
        return
    for delivery in deliveries:
        if not delivery.settled:
            await delivery.msg.ack()


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, or less if `stop` is set first; whether it was."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()


async def _keep_alive(deliveries: list[Delivery], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        for delivery in deliveries:
            with contextlib.suppress(Exception):
                await delivery.in_progress()

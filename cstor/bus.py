"""NATS JetStream adapter: the connection, and the one consumer loop of every service
(the stream itself: cstor.stream)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError

from cstor import contracts, logs, outages

log = logging.getLogger(__name__)


class TransientError(Exception):
    """Work that may succeed if tried again later: the message is nak'ed with a delay."""


async def connect(url: str, name: str) -> Client:
    """A NATS connection that keeps reconnecting while the server is away.

    `url` is one server or several separated by commas (a cluster's): the client connects
    to any of them and, when that one goes away, to another, for ever.
    """
    return await nats.connect(
        [server.strip() for server in url.split(",")],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        allow_reconnect=True,
    )


@dataclass
class Delivery:
    """One message of the stream, decoded, with what the handler needs to settle it."""

    msg: Msg
    event: contracts.AnyEvent
    attempt: int
    stream_sequence: int
    settled: bool = False
    # How often its handling failed, in place, for a reason other than an outage; since when.
    failures: int = 0
    first_failed_at: datetime | None = None

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
    # Failures of a message, for any reason but an outage, before it is a dead letter.
    max_failures: int = 5


Handler = Callable[[list[Delivery]], Awaitable[None]]


class DeadLetterSink(Protocol):
    """Where a consumer acking each message counts its failures and buries the hopeless."""

    async def failed(
        self,
        consumer: str,
        event: contracts.Event,
        stream_sequence: int,
        error: BaseException,
        bury_at: int,
    ) -> bool:
        """Count a failure; at the `bury_at`-th, record a dead letter. Whether it is one."""
        ...

    async def recovered(self, consumer: str, stream_sequences: Sequence[int]) -> None:
        """Forget the failures of messages that were handled in the end."""
        ...


async def consume(
    js: JetStreamContext,
    spec: ConsumerSpec,
    handle: Handler,
    stop: asyncio.Event,
    *,
    dead_letters: DeadLetterSink | None = None,
    salvage: Handler | None = None,
) -> None:
    """Hand fetched batches to ``handle``; ack once it returns, nak with backoff if it fails.

    The handler commits its own work before returning, so an ack always follows a commit
    and a crash before the ack means redelivery. While it runs, the loop tells JetStream
    the work is in progress so long copies are not redelivered to another replica.

    No message stops a consumer for good: one acked by itself goes to ``dead_letters``
    after `max_failures` failures that are not outages; an ordered consumer's batch goes
    to ``salvage`` (see `_handle_in_order`). Without them, a message is tried for ever.
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
    await _add_consumer_patiently(js, spec, config, stop)
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
                await _handle(spec, handle, deliveries, stop, dead_letters, salvage)

    try:
        await asyncio.gather(*(worker() for _ in range(spec.workers)))
    finally:
        # A pull subscription left open makes the connection's drain() wait for its timeout.
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()


async def _add_consumer_patiently(
    js: JetStreamContext, spec: ConsumerSpec, config: ConsumerConfig, stop: asyncio.Event
) -> None:
    """`_add_consumer`, tried again while JetStream does not answer: a cluster electing
    the stream's leader answers no one for a few seconds."""
    while True:
        try:
            await _add_consumer(js, spec.stream, config)
            return
        except (NatsTimeout, TimeoutError) as error:
            if stop.is_set():
                raise
            log.warning("%s: making the consumer timed out (%r); retrying", spec.durable, error)
            await asyncio.sleep(1.0)


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
    spec: ConsumerSpec,
    handle: Handler,
    deliveries: list[Delivery],
    stop: asyncio.Event,
    dead_letters: DeadLetterSink | None,
    salvage: Handler | None,
) -> None:
    """Handle a batch, then settle it: in order (`ack_last`) or message by message; every
    line logged meanwhile names the migration and packet the batch's events share."""
    heartbeat = asyncio.create_task(_keep_alive(deliveries, spec.ack_wait / 3))
    try:
        with logs.about_events([delivery.event for delivery in deliveries]):
            if spec.ack_last:
                await _handle_in_order(spec, handle, deliveries, stop, salvage)
            else:
                await _handle_each(spec, handle, deliveries, dead_letters)
    finally:
        heartbeat.cancel()


async def _handle_in_order(
    spec: ConsumerSpec,
    handle: Handler,
    deliveries: list[Delivery],
    stop: asyncio.Event,
    salvage: Handler | None,
) -> None:
    """Handle the batch, trying it again in place until it is handled, then ack its last.

    Nak'ed, messages after it would be handled first while it waited for redelivery,
    and the projector, which skips what is behind its position, would never apply it.
    An outage is waited out however long it lasts; after `max_failures` failures for
    any other reason, the batch goes to `salvage`, which applies what it can and
    records the rest as dead letters, so that one event nobody can apply does not hold
    up every later one.
    """
    attempt = max(d.attempt for d in deliveries)
    failures = 0
    while True:
        step = salvage if salvage is not None and failures >= spec.max_failures else handle
        try:
            await step(deliveries)
            break
        except Exception as error:
            if not is_transient(error):
                failures += 1
                _note_failure(deliveries)
            delay = _backoff(attempt)
            _log_failure(spec, attempt, delay, error)
            if await _stopped_within(stop, delay):
                # Stopping: redelivered at once, before any newer message.
                for delivery in deliveries:
                    with contextlib.suppress(Exception):
                        await delivery.msg.nak()
                return
            attempt += 1
    await deliveries[-1].msg.ack()  # and, by the consumer's policy, all before it


async def _handle_each(
    spec: ConsumerSpec,
    handle: Handler,
    deliveries: list[Delivery],
    dead_letters: DeadLetterSink | None,
) -> None:
    """Handle the batch and ack each message; a failed one is nak'ed with backoff, or,
    at its `max_failures`-th failure that is not an outage, recorded as a dead letter
    and terminated. A batch failing for such a reason is handled again message by
    message, so that one bad message does not hold back the others."""
    failed = await _failures(spec, handle, deliveries)
    for delivery, error in failed:
        await _settle_failed(spec, dead_letters, delivery, error)
    handled = [d for d in deliveries if not d.settled]
    for delivery in handled:
        await delivery.msg.ack()
    redelivered = [d.stream_sequence for d in handled if d.attempt > 1]
    if dead_letters is not None and redelivered:
        try:
            await dead_letters.recovered(spec.durable, redelivered)
        except Exception as error:  # a stale count only makes a later burial come sooner
            log.warning("%s: could not clear failure counts (%r)", spec.durable, error)


async def _failures(
    spec: ConsumerSpec, handle: Handler, deliveries: list[Delivery]
) -> list[tuple[Delivery, Exception]]:
    """Handle the batch; the messages that failed, each with its error."""
    try:
        await handle(deliveries)
        return []
    except Exception as error:
        _log_failure(spec, max(d.attempt for d in deliveries), None, error)
        if is_transient(error) or len(deliveries) == 1:
            return [(delivery, error) for delivery in deliveries]
    failed: list[tuple[Delivery, Exception]] = []
    for delivery in deliveries:
        try:
            await handle([delivery])
        except Exception as error:
            _log_failure(spec, delivery.attempt, None, error)
            failed.append((delivery, error))
    return failed


async def _settle_failed(
    spec: ConsumerSpec, dead_letters: DeadLetterSink | None, delivery: Delivery, error: Exception
) -> None:
    """Bury the message if this failure is its last allowed, else nak it with backoff."""
    delivery.settled = True
    if dead_letters is not None and not is_transient(error):
        try:
            buried = await dead_letters.failed(
                spec.durable, delivery.event, delivery.stream_sequence, error, spec.max_failures
            )
        except Exception as sink_error:  # Postgres away too: tried again on redelivery
            log.warning("%s: could not count a failure of sequence %d (%r)",
                        spec.durable, delivery.stream_sequence, sink_error)  # fmt: skip
            buried = False
        if buried:
            with contextlib.suppress(Exception):
                await delivery.msg.term()
            return
    with contextlib.suppress(Exception):
        await delivery.msg.nak(delay=_backoff(delivery.attempt))


def is_transient(error: BaseException) -> bool:
    """Whether trying again later may work without anyone changing anything."""
    return isinstance(error, TransientError) or outages.is_outage(error)


def _backoff(attempt: int) -> float:
    return min(30.0, 0.5 * 2.0 ** (attempt - 1))


def _note_failure(deliveries: list[Delivery]) -> None:
    when = datetime.now(UTC)
    for delivery in deliveries:
        delivery.failures += 1
        if delivery.first_failed_at is None:
            delivery.first_failed_at = when


def _log_failure(spec: ConsumerSpec, attempt: int, delay: float | None, error: Exception) -> None:
    transient = is_transient(error)
    log.log(
        logging.WARNING if transient else logging.ERROR,
        "%s: handling failed (attempt %d), retry in %.1fs: %s",
        spec.durable,
        attempt,
        _backoff(attempt) if delay is None else delay,
        error,
        exc_info=not transient,
    )


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

"""The event stream (cstor.stream) on a real nats-server: made, and changed, with the
limits of CSTOR_STREAM_*."""

from __future__ import annotations

import asyncio

import pytest

from cstor import bus, stream
from launcher.embedded import EmbeddedNats


async def test_the_stream_keeps_message_ids_for_the_duplicate_window_it_is_given(
    nats_server: EmbeddedNats,
) -> None:
    nc = await bus.connect(nats_server.url, "bus-test")
    js = nc.jetstream()
    # Given a stream made with the default window
    await stream.ensure_stream(js, "CSTOR")
    assert (await js.stream_info("CSTOR")).config.duplicate_window == 120.0

    # When a process starts with a shorter one (CSTOR_STREAM_DUPLICATE_WINDOW)
    await stream.ensure_stream(js, "CSTOR", stream.StreamLimits(duplicate_window=2.0))

    # Then the stream drops a copy within it, and stores one again only after it
    await js.publish("cstor.test", b"1", headers={"Nats-Msg-Id": "one"})
    assert (await js.publish("cstor.test", b"1", headers={"Nats-Msg-Id": "one"})).duplicate
    await asyncio.sleep(3.0)
    assert not (await js.publish("cstor.test", b"1", headers={"Nats-Msg-Id": "one"})).duplicate
    assert (await js.stream_info("CSTOR")).config.duplicate_window == 2.0
    await nc.close()


async def test_a_new_stream_is_made_with_the_limits_it_is_given(nats_server: EmbeddedNats) -> None:
    nc = await bus.connect(nats_server.url, "bus-test")
    js = nc.jetstream()

    # When a process makes the stream with the default limits
    await stream.ensure_stream(js, "CSTOR")

    # Then it keeps messages a week, with no byte limit
    config = (await js.stream_info("CSTOR")).config
    assert config.max_age == 7 * 24 * 3600.0
    assert config.max_bytes == -1
    assert config.duplicate_window == 120.0
    await nc.close()


async def test_a_stream_made_with_other_limits_is_changed_to_the_new_ones_and_says_so_once(
    nats_server: EmbeddedNats, caplog: pytest.LogCaptureFixture
) -> None:
    nc = await bus.connect(nats_server.url, "bus-test")
    js = nc.jetstream()
    # Given a stream made before it had limits: kept for ever, of any size, holding a message
    await js.add_stream(name="CSTOR", subjects=["cstor.>"], duplicate_window=120.0)
    await js.publish("cstor.test", b"1")
    assert (await js.stream_info("CSTOR")).config.max_age in (None, 0)

    # When processes start with CSTOR_STREAM_MAX_AGE=3600, CSTOR_STREAM_MAX_BYTES=64 MiB
    limits = stream.StreamLimits(max_age=3600.0, max_bytes=64 * 1024 * 1024)
    with caplog.at_level("INFO", logger="cstor.stream"):
        await stream.ensure_stream(js, "CSTOR", limits)
        await stream.ensure_stream(js, "CSTOR", limits)

    # Then the stream has the new limits and keeps its message; the change is logged once
    info = await js.stream_info("CSTOR")
    assert (info.config.max_age, info.config.max_bytes) == (3600.0, 64 * 1024 * 1024)
    assert info.state.messages == 1
    changed = [r.getMessage() for r in caplog.records if "limits changed" in r.getMessage()]
    assert len(changed) == 1
    assert "max_age=3600.0" in changed[0]
    await nc.close()


async def test_a_message_older_than_the_streams_max_age_is_dropped(
    nats_server: EmbeddedNats,
) -> None:
    nc = await bus.connect(nats_server.url, "bus-test")
    js = nc.jetstream()
    # Given a stream keeping messages 2 s (its duplicate window 1 s)
    await stream.ensure_stream(js, "CSTOR", stream.StreamLimits(duplicate_window=1.0, max_age=2.0))
    await js.publish("cstor.test", b"1")
    assert (await js.stream_info("CSTOR")).state.messages == 1

    # When more than that has passed, Then the message is gone
    await asyncio.sleep(3.5)
    assert (await js.stream_info("CSTOR")).state.messages == 0
    await nc.close()


async def test_replicas_a_single_server_cannot_hold_are_refused_naming_the_setting(
    nats_server: EmbeddedNats,
) -> None:
    nc = await bus.connect(nats_server.url, "bus-test")
    js = nc.jetstream()
    # When a process asks a single server for an R3 stream, new or already there
    with pytest.raises(stream.StreamReplicasError, match="CSTOR_STREAM_REPLICAS: 3 replicas"):
        await stream.ensure_stream(js, "CSTOR", stream.StreamLimits(replicas=3))
    await stream.ensure_stream(js, "CSTOR")
    with pytest.raises(stream.StreamReplicasError, match="need a JetStream cluster"):
        await stream.ensure_stream(js, "CSTOR", stream.StreamLimits(replicas=3))

    # Then the stream keeps its one replica
    assert (await js.stream_info("CSTOR")).config.num_replicas == 1
    await nc.close()


async def test_a_client_given_several_servers_connects_to_one_that_answers(
    nats_server: EmbeddedNats,
) -> None:
    # Given a server list whose first entry has nobody listening
    nc = await bus.connect(f"nats://127.0.0.1:1, {nats_server.url}", "bus-test")
    js = nc.jetstream()
    await stream.ensure_stream(js, "CSTOR")
    assert (await js.publish("cstor.test", b"1")).seq == 1
    await nc.close()

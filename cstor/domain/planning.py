"""Planning rules: which listed objects go into which packet."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class PlannedObject:
    """An object of the source listing that is to be copied."""

    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class PacketLimits:
    """How large a packet may grow before it is closed."""

    max_bytes: int = 200 * MiB
    max_objects: int = 1000
    # NATS carries a packet as one message; keys may be up to 1 KiB each.
    max_key_bytes: int = 512 * 1024


def plan_packets(
    objects: Iterable[PlannedObject], limits: PacketLimits
) -> Iterator[list[PlannedObject]]:
    """Group objects into packets in listing order; an object too large for a packet goes alone."""
    packet: list[PlannedObject] = []
    packet_bytes = 0
    key_bytes = 0
    for obj in objects:
        obj_key_bytes = len(obj.key.encode())
        if packet and (
            packet_bytes + obj.size > limits.max_bytes
            or len(packet) >= limits.max_objects
            or key_bytes + obj_key_bytes > limits.max_key_bytes
        ):
            yield packet
            packet, packet_bytes, key_bytes = [], 0, 0
        packet.append(obj)
        packet_bytes += obj.size
        key_bytes += obj_key_bytes
    if packet:
        yield packet


def destination_key(key: str, source_prefix: str, destination_prefix: str) -> str:
    """Where a source key lands: its source prefix replaced by the destination prefix."""
    return destination_prefix + key.removeprefix(source_prefix)

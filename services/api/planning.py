"""Planning use cases of the api: validate a migration's scope, estimate it, scan a bucket,
and sync a finished migration again."""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

import anyio

from cstor import s3
from cstor.decisions import Scope, estimate, filters_from_dict
from services.api.commands import Unprocessable, validated_filters
from services.api.deps import Services
from services.api.schemas import EstimateOut, MigrationCreate, PrefixTotals, ScanOut

# A conservative nominal rate for estimates: per-object overhead plus bytes at line rate.
NOMINAL_OBJECTS_PER_SECOND = 300.0
NOMINAL_BYTES_PER_SECOND = 100.0 * 1024 * 1024


def scope_of(data: MigrationCreate) -> Scope:
    return Scope(
        source_bucket=data.source_bucket,
        destination_bucket=data.destination_bucket,
        source_prefix=data.source_prefix,
        destination_prefix=data.destination_prefix,
        overwrite=data.overwrite,
        filters=filters_from_dict(validated_filters(data.filters)),
    )


async def estimate_migration(services: Services, owner: str, data: MigrationCreate) -> EstimateOut:
    """List both sides and count what would be copied and skipped, recording nothing."""
    scope = scope_of(data)
    source = await _endpoint(services, owner, data.source_connection_id, "source")
    destination = await _endpoint(services, owner, data.destination_connection_id, "destination")
    try:
        counts = await anyio.to_thread.run_sync(estimate, scope, source, destination)
    except s3.S3Error as error:
        raise Unprocessable(f"The estimate could not list the buckets: {error}") from None
    seconds = max(
        counts["objects_to_copy"] / NOMINAL_OBJECTS_PER_SECOND,
        counts["bytes_to_copy"] / NOMINAL_BYTES_PER_SECOND,
    )
    return EstimateOut(**counts, estimated_seconds=round(seconds, 1))


async def scan_bucket(
    services: Services, owner: str, connection_id: UUID, bucket: str, prefix: str
) -> ScanOut:
    """Count a bucket's objects and bytes, in all and by top-level prefix, streaming the listing."""
    endpoint = await _endpoint(services, owner, connection_id, "")

    def scan() -> ScanOut:
        by_prefix: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        objects = total = 0
        for page in s3.list_pages(endpoint, bucket, prefix):
            for obj in page:
                relative = obj.key.removeprefix(prefix)
                top = relative.split("/", 1)[0] + "/" if "/" in relative else ""
                entry = by_prefix[prefix + top]
                entry[0] += 1
                entry[1] += obj.size
                objects += 1
                total += obj.size
        return ScanOut(
            bucket=bucket,
            prefix=prefix,
            objects=objects,
            bytes=total,
            prefixes=[
                PrefixTotals(prefix=name, objects=count, bytes=size)
                for name, (count, size) in sorted(by_prefix.items())
            ],
        )

    try:
        return await anyio.to_thread.run_sync(scan)
    except s3.S3Error as error:
        raise Unprocessable(f"The bucket {bucket!r} cannot be scanned: {error}") from None


async def _endpoint(services: Services, owner: str, connection_id: UUID, role: str) -> s3.Endpoint:
    if await services.connections.get(owner, connection_id) is None:
        which = f"The {role} connection" if role else "The connection"
        raise Unprocessable(f"{which} {connection_id} does not exist.")
    return await services.connections.endpoint(connection_id)

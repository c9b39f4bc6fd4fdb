"""A bucket's scan: its objects and bytes, in all and by top-level prefix."""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

import anyio

from cstor import s3
from cstor.domain.bucket_names import check_bucket_name
from cstor.domain.exceptions import InvalidRequest
from services.api.buckets.schemas import PrefixTotals, ScanOut
from services.api.connections.commands import usable_connection
from services.api.deps import Services


async def scan_bucket(
    services: Services, owner: str, connection_id: UUID, bucket: str, prefix: str
) -> ScanOut:
    """Count a bucket's objects and bytes, in all and by top-level prefix, streaming the listing."""
    check_bucket_name(bucket, "bucket")
    connection, endpoint = await usable_connection(services, owner, connection_id, "")
    side = s3.connection_side(connection.name)  # a scan is of a connection, not a migration

    def scan() -> ScanOut:
        by_prefix: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        objects = total = 0
        for page in s3.list_pages(endpoint, bucket, prefix, side=side):
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
        raise InvalidRequest(f"The bucket {bucket!r} cannot be scanned: {error}") from None

"""The transfer service's record of open multipart uploads, in Postgres.

A replica killed mid-upload leaves the upload id and its finished parts here; the
replica that gets the packet next resumes from them (or aborts the upload), so no
upload is ever left orphaned. Keyed by the object's id; rows go once it is copied.
"""

from __future__ import annotations

import asyncpg

from cstor.s3 import JournaledUpload


class PostgresUploadJournal:
    """`cstor.s3.UploadJournal` on two small tables owned by the transfer service."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def find(self, upload_key: str) -> JournaledUpload | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT bucket, key, upload_id, part_size, source_etag, checksum_algorithm"
                " FROM transfer_uploads WHERE object_id = $1",
                upload_key,
            )
            if row is None:
                return None
            parts = await conn.fetch(
                "SELECT number, md5 FROM transfer_upload_parts WHERE object_id = $1", upload_key
            )
        return JournaledUpload(
            bucket=row["bucket"],
            key=row["key"],
            upload_id=row["upload_id"],
            part_size=row["part_size"],
            source_etag=row["source_etag"],
            parts={part["number"]: part["md5"] for part in parts},
            checksum_algorithm=row["checksum_algorithm"],
        )

    async def started(self, upload_key: str, upload: JournaledUpload) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM transfer_uploads WHERE object_id = $1", upload_key)
            await conn.execute(
                "INSERT INTO transfer_uploads (object_id, bucket, key, upload_id, part_size,"
                " source_etag, checksum_algorithm) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                upload_key,
                upload.bucket,
                upload.key,
                upload.upload_id,
                upload.part_size,
                upload.source_etag,
                upload.checksum_algorithm,
            )

    async def part_done(self, upload_key: str, number: int, md5_hex: str) -> None:
        await self.pool.execute(
            "INSERT INTO transfer_upload_parts (object_id, number, md5) VALUES ($1, $2, $3)"
            " ON CONFLICT (object_id, number) DO UPDATE SET md5 = excluded.md5",
            upload_key,
            number,
            md5_hex,
        )

    async def forget(self, upload_key: str) -> None:
        await self.pool.execute("DELETE FROM transfer_uploads WHERE object_id = $1", upload_key)

"""Benchmark: the dashboard over a migration of 1,000,000 objects.

Seeds the read models (as the projector would have written them) in an embedded
Postgres, signs a user in, and times the migration's page, the object search (by
status and by key prefix, a later page) and the migrations list, in-process.
The last line is ``p95_ms detail=X objects=Y list=Z`` (the target: each < 150 ms).
Run: ``python bench/dashboard.py [--objects 1000000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from cstor.credentials import load_or_create_key
from cstor.embedded import free_port, start_postgres
from cstor.settings import Settings
from services.api.app import create_app

PASSWORD = "bench password"


async def seed(database_url: str, owner: str, objects: int) -> uuid.UUID:
    """One running migration of `objects` objects, every 50th failed, and 20 older ones."""
    conn = await asyncpg.connect(database_url)
    try:
        now = datetime.now(UTC)
        migration_id = uuid.uuid4()
        for n in range(21):
            await conn.execute(
                "INSERT INTO migrations_view (id, owner, name, status, source_connection_id,"
                " source_bucket, source_prefix, destination_connection_id, destination_bucket,"
                " destination_prefix, planning_done, objects_planned, bytes_planned,"
                " objects_copied, bytes_copied, objects_failed, created_at, started_at,"
                " updated_at) VALUES ($1, $2, $3, $4, $5, 'src', '', $6, 'dst', '', true,"
                " $7, $8, $9, $10, $11, $12, $13, $12)",
                migration_id if n == 0 else uuid.uuid4(),
                owner,
                "big one" if n == 0 else f"older {n}",
                "running" if n == 0 else "completed",
                uuid.uuid4(),
                uuid.uuid4(),
                objects,
                objects * 4096,
                objects * 9 // 10,
                objects * 9 // 10 * 4096,
                objects // 50,
                now - timedelta(minutes=n),
                now - timedelta(minutes=n + 30),
            )
        batch = 100_000
        for start in range(0, objects, batch):
            rows = [
                (
                    uuid.uuid4(),
                    migration_id,
                    f"{n % 100:02d}/album-{n % 977:03d}/img-{n:07d}.jpg",
                    "failed" if n % 50 == 0 else ("planned" if n % 10 == 1 else "copied"),
                    4096,
                    "etag",
                    "" if n % 50 == 0 else f"md5:{n:032x}",
                    "SlowDown after 3 attempts" if n % 50 == 0 else "",
                    1,
                    now - timedelta(seconds=objects - n),
                )
                for n in range(start, min(start + batch, objects))
            ]
            await conn.copy_records_to_table(
                "objects_view",
                records=rows,
                columns=[
                    "id",
                    "migration_id",
                    "key",
                    "status",
                    "size",
                    "etag",
                    "checksum",
                    "error",
                    "version",
                    "updated_at",
                ],
            )
        # The throughput series, as the projector keeps it for the chart.
        await conn.execute(
            "INSERT INTO throughput_view (migration_id, span, second, bytes)"
            " SELECT migration_id, span,"
            " floor(extract(epoch FROM updated_at) / span)::bigint * span, sum(size)"
            " FROM objects_view, unnest(ARRAY[1, 60, 3600]) AS span"
            " WHERE migration_id = $1 AND status = 'copied' GROUP BY 1, 2, 3",
            migration_id,
        )
        await conn.execute("ANALYZE objects_view; ANALYZE migrations_view; ANALYZE throughput_view")
        return migration_id
    finally:
        await conn.close()


async def p95(client: AsyncTestClient[Any], paths: list[str], rounds: int) -> float:
    timings = []
    for n in range(rounds):
        path = paths[n % len(paths)]
        started = time.perf_counter()
        response = await client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
    return statistics.quantiles(timings, n=20)[18]


async def run(objects: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cstor-bench-dash-") as work:
        data_dir = Path(work)
        with start_postgres(data_dir, free_port(), fast=True) as postgres:
            settings = Settings(
                database_url=postgres.url,
                data_dir=data_dir,
                secret_key=load_or_create_key(data_dir),
            )
            app = create_app(settings, relay=False)
            async with AsyncTestClient(app=app) as client:
                await client.post(
                    "/api/v1/users", json={"email": "bench@localhost", "password": PASSWORD}
                )
                form = await client.get("/sign-in")
                token = re.search(r'name="_csrf_token" value="([^"]+)"', form.text)
                assert token is not None
                await client.post(
                    "/sign-in",
                    data={
                        "email": "bench@localhost",
                        "password": PASSWORD,
                        "_csrf_token": token[1],
                    },
                )
                owner = str((await client.get("/api/v1/me")).json()["id"])
                started = time.perf_counter()
                migration_id = await seed(settings.database_url, owner, objects)
                print(f"seeded {objects:,} objects in {time.perf_counter() - started:.1f} s")
                here = f"/migrations/{migration_id}"
                detail = await p95(client, [here, f"{here}/progress"], rounds)
                search = await p95(
                    client,
                    [
                        f"{here}/objects?status=failed",
                        f"{here}/objects?status=failed&cursor=50/album-500/img-0500000.jpg",
                        f"/api/v1/migrations/{migration_id}/objects?prefix=42/album-1",
                        f"{here}/objects?status=planned&cursor=99/",
                    ],
                    rounds,
                )
                listing = await p95(client, ["/", "/migrations/rows"], rounds)
    print(f"p95_ms detail={detail:.1f} objects={search:.1f} list={listing:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(run(args.objects, args.rounds))


if __name__ == "__main__":
    main()

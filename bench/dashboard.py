"""Benchmark: the dashboard over a migration of 1,000,000 objects.

Seeds the read models in an embedded Postgres by folding the migrations' events with
the projector's projection (bench/readmodel_seed.py), signs a user in, and times the
migration's page, the object search (by status and by key prefix, a later page) and the
migrations list, in-process.
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
import readmodel_seed
from litestar.testing import AsyncTestClient

from cstor.secrets.cipher import load_or_create_key
from cstor.settings import Settings
from launcher.embedded import free_port, start_postgres
from services.api.app import create_app

PASSWORD = "bench password"


async def seed(database_url: str, owner: str, objects: int) -> uuid.UUID:
    """One running migration of `objects` objects, every 50th failed, every 10th still
    planned, and 20 older completed ones: their events folded by the projection."""
    conn = await asyncpg.connect(database_url)
    try:
        feed = readmodel_seed.Feed(conn)
        now = datetime.now(UTC)
        for n in range(20, 0, -1):
            older = await readmodel_seed.migration(
                feed, owner, f"older {n}", now - timedelta(minutes=n), now - timedelta(minutes=n)
            )
            await readmodel_seed.planned(feed, older, now - timedelta(minutes=n))
            await readmodel_seed.completed(feed, older, now - timedelta(minutes=n))
        migration_id = await readmodel_seed.migration(
            feed, owner, "big one", now, now - timedelta(minutes=30)
        )

        def at(n: int) -> datetime:
            return now - timedelta(seconds=objects - n)

        everything = readmodel_seed.Objects(objects, _key, _outcome, at)
        await readmodel_seed.planned(feed, migration_id, at(objects - 1), everything)
        await readmodel_seed.analyze(conn)
        return migration_id
    finally:
        await conn.close()


def _key(n: int) -> str:
    return f"{n % 100:02d}/album-{n % 977:03d}/img-{n:07d}.jpg"


def _outcome(n: int) -> str:
    return "failed" if n % 50 == 0 else ("planned" if n % 10 == 1 else "copied")


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

"""Benchmark: plan a migration of a million source objects, half already at the destination.

A local `rclone serve s3` serves a folder of small files (the destination's copies are
hard links, so identical); the planner lists both sides page by page, decides every
object and records the packets in an embedded Postgres. The same run measures
`rclone copy --dry-run` on the same two endpoints. The last line is
``planned=N skipped=M seconds=S peak_rss_mb=R rclone_seconds=T rclone_rss_mb=U``.
Run: ``python bench/planner.py --objects 1000000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil

from cstor import s3
from cstor.app.migrations import Migrations
from cstor.domain.planning import PacketLimits
from cstor.settings import Settings
from cstor.store.migrations import migrate_url
from launcher import embedded
from services.planner.planning import plan_migration

SOURCE_KEYS = ("planbenchsource1", "plan-bench-source-secret")
DEST_KEYS = ("planbenchdestin2", "plan-bench-destin-secret")
PER_FOLDER = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the seeded files here")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        work = args.work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        started = time.perf_counter()
        _seed(work, args.objects)
        print(f"seeded {args.objects} objects in {time.perf_counter() - started:.0f} s")
        source = stack.enter_context(
            embedded.start_rclone_s3(work / "source", embedded.free_port(), *SOURCE_KEYS)
        )
        dest = stack.enter_context(
            embedded.start_rclone_s3(work / "dest", embedded.free_port(), *DEST_KEYS)
        )
        postgres = stack.enter_context(
            embedded.start_postgres(work / "postgres", embedded.free_port())
        )
        rclone_seconds, rclone_rss = _measure(lambda: _rclone_dry_run(source, dest))
        result = multiprocessing.Manager().dict()
        plan = multiprocessing.Process(target=_plan, args=(postgres.url, source, dest, result))
        seconds, rss = _measure_process(plan)

    print(
        f"planned={result['planned']} skipped={result['skipped']} seconds={seconds:.1f} "
        f"peak_rss_mb={rss:.0f} rclone_seconds={rclone_seconds:.1f} "
        f"rclone_rss_mb={rclone_rss:.0f}"
    )


def _seed(work: Path, count: int) -> None:
    """Small files in folders of 1,000; every other one also at the destination (a hard link)."""
    if (work / "seeded").exists():
        return
    for n in range(count):
        folder = f"f{n // PER_FOLDER:05d}"
        if n % PER_FOLDER == 0:
            (work / "source" / "data" / folder).mkdir(parents=True, exist_ok=True)
            (work / "dest" / "data" / folder).mkdir(parents=True, exist_ok=True)
        path = work / "source" / "data" / folder / f"o{n:08d}"
        path.write_bytes(b"%d" % n)
        if n % 2 == 0:
            os.link(path, work / "dest" / "data" / folder / f"o{n:08d}")
    (work / "seeded").touch()


def _plan(
    database_url: str,
    source: embedded.EmbeddedS3,
    dest: embedded.EmbeddedS3,
    result: dict[str, int],
) -> None:
    asyncio.run(migrate_url(database_url))
    app = Migrations(Settings(database_url=database_url).eventsourcing_env())
    migration_id = app.request(
        name="bench",
        owner="bench",
        source_connection_id=uuid.uuid4(),
        source_bucket="data",
        source_prefix="",
        destination_connection_id=uuid.uuid4(),
        destination_bucket="data",
        destination_prefix="",
    )
    migration = app.start_planning(migration_id)
    totals = plan_migration(
        app,
        migration,
        s3.Endpoint(
            url=source.endpoint, access_key=source.access_key, secret_key=source.secret_key
        ),
        s3.Endpoint(url=dest.endpoint, access_key=dest.access_key, secret_key=dest.secret_key),
        PacketLimits(),
    )
    result["planned"], result["skipped"] = totals.objects, totals.skipped


def _measure_process(process: multiprocessing.Process) -> tuple[float, float]:
    started = time.perf_counter()
    process.start()
    peak = _watch(psutil.Process(process.pid), lambda: not process.is_alive())
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"planning failed with exit code {process.exitcode}")
    return time.perf_counter() - started, peak


def _measure(run: Callable[[], subprocess.Popen[bytes]]) -> tuple[float, float]:
    started = time.perf_counter()
    child = run()
    peak = _watch(psutil.Process(child.pid), lambda: child.poll() is not None)
    if child.wait() != 0:
        raise SystemExit("rclone copy --dry-run failed")
    return time.perf_counter() - started, peak


def _watch(process: psutil.Process, done: Callable[[], bool]) -> float:
    """Peak resident memory in MiB, sampled every 0.1 s until ``done``."""
    peak = 0
    while not done():
        with contextlib.suppress(psutil.Error):
            peak = max(peak, process.memory_info().rss)
        time.sleep(0.1)
    return peak / 2**20


def _rclone_dry_run(
    source: embedded.EmbeddedS3, dest: embedded.EmbeddedS3
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    for name, server in (("SRC", source), ("DST", dest)):
        env |= {
            f"RCLONE_CONFIG_{name}_TYPE": "s3",
            f"RCLONE_CONFIG_{name}_PROVIDER": "Other",
            f"RCLONE_CONFIG_{name}_ENDPOINT": server.endpoint,
            f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": server.access_key,
            f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": server.secret_key,
        }
    rclone = shutil.which("rclone") or "rclone"
    return subprocess.Popen(
        [
            rclone,
            "copy",
            "--dry-run",
            "SRC:data",
            "DST:data",
            "--config",
            "",
            "--checksum",  # compare size and MD5 from the listings, as cstor does
            "--checkers",
            "32",
            "--log-level",
            "ERROR",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    main()

"""Benchmark: a cross-endpoint migration through the whole cstor stack, against rclone.

Everything runs on this machine, on loopback: Postgres, NATS, two `rclone serve s3`
endpoints with different credentials, the four cstor services. The same run measures
the peers on the same endpoints:

- small: N x 16 KiB objects, cstor (request to completed, verified) vs `rclone copy`;
  cstor's end is seen on its event feed (NATS, ``cstor.migration.<id>.completed``),
  as a script would wait for it, then checked through the API;
- large: 2 x 256 MiB objects, cstor vs a plain streaming GET->PUT loop, with the
  peak RSS of the transfer replica(s) while cstor copies them;
- same-endpoint: the N small objects into another bucket of the source endpoint with
  the same keys (server-side copies), cstor vs `rclone copy` and `s5cmd cp`.

The last line is ``ratio_small_vs_rclone=X ratio_large_vs_raw=Y`` (higher is better).
Run: ``python bench/transfer.py [--objects 5000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import obstore
import psutil
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from obstore.store import S3Store

from cstor.secrets.cipher import load_or_create_key
from cstor.settings import Settings
from launcher import embedded
from launcher.local_admin import sign_in_local_admin, wait_for_api
from launcher.stack import ServiceProcesses

os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
MiB = 1024 * 1024
SOURCE_KEYS = ("benchsourcekey01", "bench-source-secret-01")
DEST_KEYS = ("benchdestkey0002", "bench-dest-secret-0002")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--small-size", type=int, default=16 * 1024)
    parser.add_argument("--large-count", type=int, default=2)
    parser.add_argument("--large-size", type=int, default=256 * MiB)
    parser.add_argument(
        "--large-rounds",
        type=int,
        default=3,
        help="cstor and the plain loop take turns; the medians are reported",
    )
    parser.add_argument("--transfer-replicas", type=int, default=1)
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cstor-bench-")))
        _seed(work / "source" / "small", args.objects, args.small_size)
        _seed(work / "source" / "large", args.large_count, args.large_size)
        for bucket in ("cstor-small", "rclone-small"):
            (work / "dest" / bucket).mkdir(parents=True)
        for round_ in range(args.large_rounds):
            for bucket in (f"cstor-large-{round_}", f"raw-large-{round_}"):
                (work / "dest" / bucket).mkdir(parents=True)
        for bucket in ("cstor-same", "rclone-same", "s5cmd-same"):
            (work / "source" / bucket).mkdir(parents=True)
        source = stack.enter_context(
            embedded.start_rclone_s3(work / "source", embedded.free_port(), *SOURCE_KEYS)
        )
        dest = stack.enter_context(
            embedded.start_rclone_s3(work / "dest", embedded.free_port(), *DEST_KEYS)
        )
        api, nats_url = stack.enter_context(_cstor(stack, work, args.transfer_replicas))
        feed = stack.enter_context(_EventFeed(nats_url))
        connections = _connect(api, source, dest)

        rows: list[tuple[str, str, float, float, str]] = []
        small_bytes = args.objects * args.small_size
        # rclone hashes a file the first time it is listed (its ETag), and keeps the hash:
        # whoever listed first paid for both. Neither peer does now.
        _list_once(source, "small")
        seconds = _migrate(api, connections, "small", "cstor-small", args.objects, feed)
        rows.append(("small", "cstor", seconds, args.objects / seconds, "objects/s"))
        seconds = _rclone_copy(source, dest, "small", "rclone-small")
        rows.append(("small", "rclone copy", seconds, args.objects / seconds, "objects/s"))

        large_mib = args.large_count * args.large_size / MiB
        _list_once(source, "large")  # hashed beforehand, as the small objects were
        # Others share the machine: the two take turns, and each reports its median.
        cstor_runs, raw_runs = [], []
        with _PeakRss("services.transfer") as transfer_rss:
            for round_ in range(args.large_rounds):
                cstor_runs.append(
                    _migrate(
                        api, connections, "large", f"cstor-large-{round_}", args.large_count, feed
                    )
                )
                raw_runs.append(
                    asyncio.run(_raw_copy(source, dest, "large", f"raw-large-{round_}"))
                )
        seconds = statistics.median(cstor_runs)
        rows.append(("large", "cstor", seconds, large_mib / seconds, "MiB/s"))
        seconds = statistics.median(raw_runs)
        rows.append(("large", "plain GET->PUT loop", seconds, large_mib / seconds, "MiB/s"))

        same = (connections[0], connections[0])
        seconds = _migrate(api, same, "small", "cstor-same", args.objects, feed)
        rows.append(("same", "cstor (server-side)", seconds, args.objects / seconds, "objects/s"))
        seconds = _rclone_copy(source, source, "small", "rclone-same")
        rows.append(("same", "rclone copy", seconds, args.objects / seconds, "objects/s"))
        seconds = _s5cmd_copy(source, "small", "s5cmd-same")
        rows.append(("same", "s5cmd cp", seconds, args.objects / seconds, "objects/s"))

    print(f"\n{'workload':<8} {'tool':<22} {'seconds':>9} {'rate':>12}")
    for workload, tool, secs, rate, unit in rows:
        print(f"{workload:<8} {tool:<22} {secs:>9.2f} {rate:>10.1f} {unit}")
    print(
        f"small: {args.objects} x {args.small_size} B ({small_bytes / MiB:.0f} MiB); "
        f"large: {args.large_count} x {args.large_size // MiB} MiB "
        f"(median of {args.large_rounds}; each: cstor "
        f"{', '.join(f'{large_mib / s:.0f}' for s in cstor_runs)}, plain "
        f"{', '.join(f'{large_mib / s:.0f}' for s in raw_runs)} MiB/s); "
        f"same: the small objects, server-side, within the source endpoint"
    )
    print(
        f"peak RSS of the transfer replica(s) during large: "
        f"{transfer_rss.peak / MiB:.0f} MiB (load average {os.getloadavg()[0]:.1f})"
    )
    ratio_small = rows[0][3] / rows[1][3]
    ratio_large = rows[2][3] / rows[3][3]
    print(f"ratio_small_vs_rclone={ratio_small:.2f} ratio_large_vs_raw={ratio_large:.2f}")


def _seed(folder: Path, count: int, size: int) -> None:
    rng = random.Random(count * 7 + size)
    block = rng.randbytes(min(size, 4 * MiB))
    for n in range(count):
        path = folder / f"{n % 50:02d}" / f"object-{n:06d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as file:
            file.write(n.to_bytes(8, "big"))  # every object distinct
            remaining = size - 8
            while remaining > 0:
                chunk = block[: min(len(block), remaining)]
                file.write(chunk)
                remaining -= len(chunk)


@contextlib.contextmanager
def _cstor(
    stack: contextlib.ExitStack, work: Path, replicas: int
) -> Iterator[tuple[httpx.Client, str]]:
    """The whole stack on this machine: its API client, and its NATS URL."""
    data_dir = work / "cstor"
    postgres = stack.enter_context(embedded.start_postgres(data_dir, embedded.free_port()))
    broker = stack.enter_context(embedded.start_nats(data_dir, embedded.free_port()))
    settings = Settings(
        database_url=postgres.url,
        nats_url=broker.url,
        data_dir=data_dir,
        secret_key=load_or_create_key(data_dir),
        api_port=embedded.free_port(),
    )
    services = ServiceProcesses(settings, transfer_replicas=replicas)
    services.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.api_port}", timeout=60) as api:
            wait_for_api(api, services)
            sign_in_local_admin(api, data_dir)
            yield api, broker.url
    finally:
        services.stop()


def _connect(
    api: httpx.Client, source: embedded.EmbeddedS3, dest: embedded.EmbeddedS3
) -> tuple[str, str]:
    ids = []
    for server in (source, dest):
        response = api.post(
            "/api/v1/connections",
            json={
                "name": server.endpoint,
                "endpoint": server.endpoint,
                "access_key": server.access_key,
                "secret_key": server.secret_key,
            },
        )
        response.raise_for_status()
        ids.append(response.json()["id"])
    return ids[0], ids[1]


class _EventFeed:
    """How migrations ended, as cstor publishes it on NATS, heard in a thread of its own."""

    ENDS = ("completed", "failed", "cancelled")

    def __init__(self, url: str) -> None:
        self._url = url
        self._ended: dict[str, str] = {}
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> _EventFeed:
        self._thread.start()
        self._nc = asyncio.run_coroutine_threadsafe(self._subscribe(), self._loop).result(30)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._nc.close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    async def _subscribe(self) -> NatsClient:
        nc = await nats.connect(self._url)
        await nc.subscribe("cstor.migration.*.*", cb=self._heard)
        await nc.flush()
        return nc

    async def _heard(self, msg: Msg) -> None:
        _, _, migration_id, event = msg.subject.split(".")
        if event in self.ENDS:
            with self._changed:
                self._ended[migration_id] = event
                self._changed.notify_all()

    def wait(self, migration_id: str, timeout: float = 3600) -> str:
        """How the migration ended, once it has."""
        with self._changed:
            if not self._changed.wait_for(lambda: migration_id in self._ended, timeout):
                raise SystemExit(f"cstor migration {migration_id} did not end in {timeout} s")
            return self._ended[migration_id]


def _migrate(
    api: httpx.Client,
    connections: tuple[str, str],
    bucket: str,
    target: str,
    expected: int,
    feed: _EventFeed | None = None,
) -> float:
    """Seconds from the request to the migration's end (heard on `feed`, or polled)."""
    started = time.perf_counter()
    response = api.post(
        "/api/v1/migrations",
        json={
            "source_connection_id": connections[0],
            "source_bucket": bucket,
            "destination_connection_id": connections[1],
            "destination_bucket": target,
        },
    )
    response.raise_for_status()
    migration_id = response.json()["id"]
    seconds = 0.0
    if feed is not None:
        feed.wait(migration_id)
        seconds = time.perf_counter() - started
    while True:  # the API's read models follow the same events within milliseconds
        state = api.get(f"/api/v1/migrations/{migration_id}").json()
        if state["status"] in _EventFeed.ENDS:
            break
        time.sleep(0.05)
    seconds = seconds or time.perf_counter() - started
    if state["status"] != "completed" or state["objects_copied"] != expected:
        raise SystemExit(f"cstor migration of {bucket} did not copy everything: {state}")
    return seconds


def _rclone_copy(
    source: embedded.EmbeddedS3, dest: embedded.EmbeddedS3, bucket: str, target: str
) -> float:
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
    started = time.perf_counter()
    subprocess.run(
        [
            rclone,
            "copy",
            f"SRC:{bucket}",
            f"DST:{target}",
            "--transfers",
            "32",
            "--checkers",
            "32",
            "--config",
            "",
        ],
        env=env,
        check=True,
    )
    return time.perf_counter() - started


def _s5cmd_copy(server: embedded.EmbeddedS3, bucket: str, target: str) -> float:
    """s5cmd copying within one endpoint: server-side CopyObject per object."""
    env = dict(os.environ) | {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_REGION": "us-east-1",
    }
    s5cmd = shutil.which("s5cmd") or str(Path(sys.executable).parent / "s5cmd")
    started = time.perf_counter()
    subprocess.run(
        [
            s5cmd,
            "--endpoint-url",
            server.endpoint,
            "--numworkers",
            "64",
            "cp",
            f"s3://{bucket}/*",
            f"s3://{target}/",
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _list_once(server: embedded.EmbeddedS3, bucket: str) -> None:
    store = S3Store(
        bucket,
        endpoint=server.endpoint,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        region="us-east-1",
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )
    for _ in obstore.list(store):
        pass


class _PeakRss:
    """Samples the resident memory of this process's children named `label`, while open.

    A service runs as ``python -m services.<name>`` (launcher/stack.py); the label
    matched ``cstor service <name>`` before, and found nothing once that changed
    (a peak of 0 MiB).
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = psutil.Process()
        watched = [p for p in me.children(recursive=True) if self.label in " ".join(p.cmdline())]
        while not self._stop.wait(0.05):
            for process in watched:
                with contextlib.suppress(psutil.Error):
                    self.peak = max(self.peak, process.memory_info().rss)


async def _raw_copy(
    source: embedded.EmbeddedS3, dest: embedded.EmbeddedS3, bucket: str, target: str
) -> float:
    """The plain peer: list, then stream each object GET -> PUT, objects in parallel."""

    def store(server: embedded.EmbeddedS3, name: str) -> S3Store:
        return S3Store(
            name,
            endpoint=server.endpoint,
            access_key_id=server.access_key,
            secret_access_key=server.secret_key,
            region="us-east-1",
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )

    src, dst = store(source, bucket), store(dest, target)
    started = time.perf_counter()
    keys = [meta["path"] for page in obstore.list(src) for meta in page]

    async def copy(key: str) -> None:
        result = await obstore.get_async(src, key)
        await obstore.put_async(
            dst, key, result.stream(min_chunk_size=8 * MiB), chunk_size=16 * MiB, max_concurrency=8
        )

    await asyncio.gather(*(copy(key) for key in keys))
    return time.perf_counter() - started


if __name__ == "__main__":
    main()

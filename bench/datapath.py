"""Measure cross-endpoint copy speed: boto3 threads vs obstore async vs `rclone copy`.

Starts two `rclone serve s3` servers with different credentials on loopback,
seeds the source, and copies every object to the destination with each
candidate data path. Run: `python bench/datapath.py [--objects 2000 --size 16384]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import obstore
import psutil
import uvloop
from botocore.config import Config
from obstore.store import S3Store

from cstor import s3
from cstor.s3 import wire

os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
BUCKET = "bench"
RCLONE = shutil.which("rclone") or "rclone"


@dataclass(frozen=True)
class Server:
    """One `rclone serve s3` process."""

    url: str
    key: str
    secret: str
    root: Path
    pid: int

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def rclone_server(root: Path, key: str, secret: str) -> Iterator[Server]:
    port = free_port()
    proc = subprocess.Popen(
        [
            RCLONE,
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{port}",
            "--auth-key",
            f"{key},{secret}",
            "--etag-hash",
            "MD5",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield Server(f"http://127.0.0.1:{port}", key, secret, root, proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def boto_client(server: Server, pool: int) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=server.key,
        aws_secret_access_key=server.secret,
        config=Config(max_pool_connections=pool, s3={"addressing_style": "path"}),
    )


def obstore_store(server: Server) -> S3Store:
    return S3Store(
        BUCKET,
        config={
            "endpoint": server.url,
            "access_key_id": server.key,
            "secret_access_key": server.secret,
            "region": "us-east-1",
            "virtual_hosted_style_request": False,
        },
        client_options={"allow_http": True, "timeout": "300s"},
    )


def seed(root: Path, keys: list[str], size: int) -> None:
    for i, key in enumerate(keys):
        path = root / BUCKET / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(i.to_bytes(8, "big") + os.urandom(size - 8))


def copy_boto3(src: Server, dst: Server, keys: list[str], threads: int) -> None:
    get, put = boto_client(src, threads), boto_client(dst, threads)

    def one(key: str) -> None:
        body = get.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        put.put_object(Bucket=BUCKET, Key=key, Body=body)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, keys))


async def copy_obstore(src: Server, dst: Server, keys: list[str], concurrency: int) -> None:
    get, put = obstore_store(src), obstore_store(dst)
    limit = asyncio.Semaphore(concurrency)

    async def one(key: str) -> None:
        async with limit:
            result = await obstore.get_async(get, key)
            data = await result.bytes_async()
            await obstore.put_async(put, key, data)

    await asyncio.gather(*(one(k) for k in keys))


async def copy_wire(src: Server, dst: Server, keys: list[str], concurrency: int) -> None:
    """cstor.s3.wire: GET and PUT (with Content-MD5) over kept-alive HTTP/1.1."""
    get = wire.WireClient(s3.Endpoint(url=src.url, access_key=src.key, secret_key=src.secret))
    put = wire.WireClient(s3.Endpoint(url=dst.url, access_key=dst.key, secret_key=dst.secret))
    limit = asyncio.Semaphore(concurrency)

    async def one(key: str) -> None:
        for attempt in range(3):  # rclone serve s3 fails a few concurrent PUTs (500)
            try:
                async with limit:
                    data = (await get.get(BUCKET, key, {})).body
                    md5 = hashlib.md5(data, usedforsecurity=False).digest()
                    await put.put(
                        BUCKET, key, {"Content-MD5": base64.b64encode(md5).decode()}, data
                    )
                return
            except s3.S3Error as error:
                if not error.transient or attempt == 2:
                    raise

    await asyncio.gather(*(one(k) for k in keys))


async def copy_cstor(src: Server, dst: Server, keys: list[str], concurrency: int) -> None:
    """The product's data path: cstor.s3.ObjectCopier, verified copies, planned ETags."""
    source = s3.Endpoint(url=src.url, access_key=src.key, secret_key=src.secret)
    destination = s3.Endpoint(url=dst.url, access_key=dst.key, secret_key=dst.secret)
    copier = s3.ObjectCopier(source, destination)
    planned = [obj for page in s3.list_pages(source, BUCKET) for obj in page]
    limit = asyncio.Semaphore(concurrency)

    async def one(obj: s3.ListedObject) -> None:
        for attempt in range(3):  # as the transfer service does: rclone fails a few PUTs
            try:
                async with limit:
                    await copier.copy(BUCKET, obj.key, BUCKET, obj.key, obj.size, obj.etag)
                return
            except s3.S3Error as error:
                if not error.transient or attempt == 2:
                    raise

    await asyncio.gather(*(one(obj) for obj in planned))


def copy_rclone(src: Server, dst: Server, *extra: str) -> None:
    env = dict(os.environ)
    for name, server in (("SRC", src), ("DST", dst)):
        env |= {
            f"RCLONE_CONFIG_{name}_TYPE": "s3",
            f"RCLONE_CONFIG_{name}_PROVIDER": "Other",
            f"RCLONE_CONFIG_{name}_ENDPOINT": server.url,
            f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": server.key,
            f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": server.secret,
        }
    subprocess.run(
        [
            RCLONE,
            "copy",
            f"SRC:{BUCKET}",
            f"DST:{BUCKET}",
            "--transfers",
            "32",
            "--checkers",
            "32",
            "-q",
            *extra,
        ],
        env=env,
        check=True,
    )


async def copy_large_obstore(src: Server, dst: Server, key: str, part: int, inflight: int) -> None:
    """GET stream -> obstore multipart PUT with fixed part size."""
    get, put = obstore_store(src), obstore_store(dst)
    result = await obstore.get_async(get, key)
    md5s: list[bytes] = []

    async def chunks() -> Any:
        async for chunk in result.stream(min_chunk_size=part):
            md5s.append(hashlib.md5(chunk).digest())
            yield chunk

    out = await obstore.put_async(
        put, key, chunks(), use_multipart=True, chunk_size=part, max_concurrency=inflight
    )
    print("   e_tag", out["e_tag"], "parts", len(md5s))


def copy_large_boto_parts(src: Server, dst: Server, key: str, part: int, inflight: int) -> None:
    """obstore GET stream -> boto3 upload_part in threads."""
    get, put = obstore_store(src), boto_client(dst, inflight)
    upload = put.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    stream = obstore.get(get, key).stream(min_chunk_size=part)
    with ThreadPoolExecutor(inflight) as pool:
        futures = []
        for number, chunk in enumerate(stream, start=1):
            futures.append(
                pool.submit(
                    put.upload_part,
                    Bucket=BUCKET,
                    Key=key,
                    UploadId=upload,
                    PartNumber=number,
                    Body=chunk,
                )
            )
        parts = [{"PartNumber": i, "ETag": f.result()["ETag"]} for i, f in enumerate(futures, 1)]
    put.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )


def client_cpu_seconds() -> float:
    """CPU used so far by this process and its finished children (`rclone copy`)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


RESULTS: dict[str, list[tuple[float, float, float]]] = {}


def measure(
    label: str,
    count: int,
    unit: str,
    src: Server,
    tmp: Path,
    copy: Callable[[Server, Server], object],
) -> None:
    """Time one copy into a fresh destination server (rclone caches directory listings).

    Wall-clock rate depends on what else runs on the machine; CPU per item
    (copier, and copier + both servers) does much less.
    """
    root = Path(tempfile.mkdtemp(dir=tmp))
    (root / BUCKET).mkdir()
    with rclone_server(root, "DSTKEY0123456789", "dstsecret0123456") as dst:
        cpu = (client_cpu_seconds(), src.cpu_seconds() + dst.cpu_seconds())
        start = time.perf_counter()
        copy(src, dst)
        elapsed = time.perf_counter() - start
        client = client_cpu_seconds() - cpu[0]
        servers = src.cpu_seconds() + dst.cpu_seconds() - cpu[1]
        copied = sum(1 for p in (root / BUCKET).rglob("*") if p.is_file())
    shutil.rmtree(root)
    RESULTS.setdefault(label, []).append((count / elapsed, client / count, servers / count))
    print(
        f"{label:<40} {count / elapsed:7.0f} {unit}/s  ({elapsed:.2f}s, {copied} files)  "
        f"copier CPU {1000 * client / count:.2f} ms/{unit}, servers {1000 * servers / count:.2f}",
        flush=True,
    )


def summary() -> None:
    """Median of every measurement over the rounds."""
    print("\nmedian over rounds: rate, copier CPU ms/item, copier+servers CPU ms/item")
    for label, rows in RESULTS.items():
        rate, client, servers = (statistics.median(col) for col in zip(*rows, strict=True))
        print(f"{label:<40} {rate:7.0f}/s  {1000 * client:6.2f}  {1000 * (client + servers):6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--size", type=int, default=16 * 1024)
    parser.add_argument("--large-mib", type=int, default=256, help="0 skips the large test")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    keys = [f"d{i % 20:02d}/obj-{i:06d}" for i in range(args.objects)]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        seed(Path(tmp, "src"), keys, args.size)
        with rclone_server(Path(tmp, "src"), "SRCKEY0123456789", "srcsecret0123456") as src:
            small: list[tuple[str, Callable[[Server, Server], object]]] = [
                ("rclone copy --transfers 32 --checkers 32", copy_rclone),
                ("boto3 threads=16", lambda s, d: copy_boto3(s, d, keys, 16)),
                ("boto3 threads=32", lambda s, d: copy_boto3(s, d, keys, 32)),
                ("wire async c=32", lambda s, d: asyncio.run(copy_wire(s, d, keys, 32))),
                ("wire uvloop c=32", lambda s, d: uvloop.run(copy_wire(s, d, keys, 32))),
                ("obstore uvloop c=32", lambda s, d: uvloop.run(copy_obstore(s, d, keys, 32))),
                ("obstore async c=32", lambda s, d: asyncio.run(copy_obstore(s, d, keys, 32))),
                ("obstore async c=64", lambda s, d: asyncio.run(copy_obstore(s, d, keys, 64))),
                ("obstore async c=128", lambda s, d: asyncio.run(copy_obstore(s, d, keys, 128))),
                ("cstor ObjectCopier c=32", lambda s, d: uvloop.run(copy_cstor(s, d, keys, 32))),
                ("cstor ObjectCopier c=64", lambda s, d: uvloop.run(copy_cstor(s, d, keys, 64))),
            ]
            for _ in range(args.rounds):
                for label, fn in small:
                    measure(label, len(keys), "objects", src, tmp, fn)
        if not args.large_mib:
            summary()
            return
        mib = args.large_mib
        (tmp / "big" / BUCKET).mkdir(parents=True)
        with (tmp / "big" / BUCKET / "large").open("wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        part = 16 << 20
        with rclone_server(tmp / "big", "SRCKEY0123456789", "srcsecret0123456") as src:
            large: list[tuple[str, Callable[[Server, Server], object]]] = [
                ("rclone copy (large)", copy_rclone),
                (
                    "obstore stream -> obstore multipart",
                    lambda s, d: asyncio.run(copy_large_obstore(s, d, "large", part, 4)),
                ),
                (
                    "obstore stream -> boto3 upload_part",
                    lambda s, d: copy_large_boto_parts(s, d, "large", part, 4),
                ),
                (
                    "cstor ObjectCopier (multipart)",
                    lambda s, d: asyncio.run(copy_cstor(s, d, ["large"], 1)),
                ),
            ]
            for _ in range(args.rounds):
                for label, fn in large:
                    measure(label, mib, "MiB", src, tmp, fn)
    summary()


if __name__ == "__main__":
    main()

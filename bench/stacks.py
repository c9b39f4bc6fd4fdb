"""What each HTTP stack of cstor.s3 buys: each job cstor gives one stack, done by it and
by the stack that would replace it, on loopback against `rclone serve s3`.

- listing (urllib3 + ElementTree, signed by botocore) vs boto3's list_objects_v2;
- small objects, GET + PUT (`wire`) vs boto3 (threads) vs obstore;
- a large object's GET stream (urllib3, cstor's since obstore was replaced) vs
  obstore's and boto3's streaming bodies;
- multipart parts, PUT to presigned URLs (urllib3, threads) vs boto3's upload_part.

CPU is this process's (user + system, every thread, obstore's Rust ones included): it
depends much less on what else runs on the machine than the rates do.
Run: ``python bench/stacks.py [--listed 20000 --small 2000 --large-mib 256 --rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import obstore
import urllib3
from datapath import (
    BUCKET,
    Server,
    boto_client,
    copy_boto3,
    copy_obstore,
    copy_wire,
    obstore_store,
    rclone_server,
    seed,
)

from cstor import s3
from cstor.s3 import control
from cstor.s3.listing import list_pages
from cstor.s3.part_stream import STREAM_CHUNK

MIB = 1 << 20
PART = 16 * MIB
CHUNK = STREAM_CHUNK
"""What a GET stream hands over at once, in every stack as in cstor's (4 MiB)."""
RESULTS: dict[str, list[tuple[float, float]]] = {}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(label: str, count: float, unit: str, run: Callable[[], object]) -> None:
    started_cpu, started = cpu(), time.perf_counter()
    run()
    seconds, spent = time.perf_counter() - started, cpu() - started_cpu
    RESULTS.setdefault(label, []).append((count / seconds, 1000 * spent / count))
    print(f"{label:<44} {count / seconds:9.0f} {unit}/s  CPU {1000 * spent / count:7.3f} ms/{unit}")


def endpoint(server: Server) -> s3.Endpoint:
    return s3.Endpoint(url=server.url, access_key=server.key, secret_key=server.secret)


def list_cstor(server: Server) -> int:
    return sum(len(page) for page in list_pages(endpoint(server), BUCKET))


def list_boto3(server: Server) -> int:
    pages = boto_client(server, 4).get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return sum(len(page.get("Contents", [])) for page in pages)


def read_obstore(server: Server, key: str) -> int:
    async def read() -> int:
        result = await obstore.get_async(obstore_store(server), key)
        return sum([len(chunk) async for chunk in result.stream(min_chunk_size=CHUNK)])

    return asyncio.run(read())


def read_urllib3(server: Server, key: str) -> int:
    url = control.client(endpoint(server)).generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": key}
    )
    response = urllib3.PoolManager().request("GET", url, preload_content=False)
    assert response.status == 200, response.status
    total = sum(len(chunk) for chunk in response.stream(CHUNK))
    response.release_conn()
    return total


def read_boto3(server: Server, key: str) -> int:
    body = boto_client(server, 1).get_object(Bucket=BUCKET, Key=key)["Body"]
    return sum(len(chunk) for chunk in body.iter_chunks(CHUNK))


def put_parts(server: Server, parts: int, *, presigned: bool) -> None:
    """`parts` parts of 16 MiB, four at a time, into one upload (aborted after)."""
    # cstor's own client (SigV4, checksums only where required), for both ways
    client, http = control.client(endpoint(server)), urllib3.PoolManager(maxsize=8)
    upload = client.create_multipart_upload(Bucket=BUCKET, Key="parts")["UploadId"]
    body = os.urandom(PART)

    def one(number: int) -> None:
        params = {"Bucket": BUCKET, "Key": "parts", "UploadId": upload, "PartNumber": number}
        if presigned:
            url = client.generate_presigned_url("upload_part", Params=params)
            assert http.request("PUT", url, body=body).status == 200
        else:
            client.upload_part(Body=body, **params)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(1, parts + 1)))
    client.abort_multipart_upload(Bucket=BUCKET, Key="parts", UploadId=upload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listed", type=int, default=20000)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        listed = [f"d{i % 20:02d}/obj-{i:06d}" for i in range(args.listed)]
        seed(tmp / "list", listed, 16)
        small = [f"s{i % 20:02d}/obj-{i:06d}" for i in range(args.small)]
        seed(tmp / "small", small, 16 * 1024)
        (tmp / "large" / BUCKET).mkdir(parents=True)
        with (tmp / "large" / BUCKET / "large").open("wb") as file:
            for _ in range(args.large_mib):
                file.write(os.urandom(MIB))
        parts = max(1, args.large_mib // 16)
        with (
            rclone_server(tmp / "list", "LISTKEY012345678", "listsecret012345") as lister,
            rclone_server(tmp / "small", "SRCKEY0123456789", "srcsecret0123456") as src,
            rclone_server(tmp / "large", "BIGKEY0123456789", "bigsecret0123456") as big,
        ):
            list_cstor(lister)  # rclone hashes each file when first listed: not measured
            read_urllib3(big, "large")
            for _ in range(args.rounds):
                _round(args, lister, src, big, small, parts, tmp)
    print("\nmedian over rounds: rate, CPU per item")
    for label, rows in RESULTS.items():
        rate, spent = (statistics.median(column) for column in zip(*rows, strict=True))
        print(f"{label:<44} {rate:9.0f}/s  {spent:7.3f} ms")


def _round(
    args: Any, lister: Server, src: Server, big: Server, small: list[str], parts: int, tmp: Path
) -> None:
    n = args.listed
    measure("listing: cstor (urllib3 + ElementTree)", n, "object", lambda: list_cstor(lister))
    measure("listing: boto3 list_objects_v2", n, "object", lambda: list_boto3(lister))
    for label, copy in (
        ("small GET+PUT: wire (cstor) c=32", lambda d: asyncio.run(copy_wire(src, d, small, 32))),
        ("small GET+PUT: boto3 threads=32", lambda d: copy_boto3(src, d, small, 32)),
        ("small GET+PUT: obstore c=32", lambda d: asyncio.run(copy_obstore(src, d, small, 32))),
    ):
        root = Path(tempfile.mkdtemp(dir=tmp))
        (root / BUCKET).mkdir()
        with rclone_server(root, "DSTKEY0123456789", "dstsecret0123456") as dst:
            measure(label, len(small), "object", lambda copy=copy, dst=dst: copy(dst))
    mib = args.large_mib
    for label, read in (
        ("large GET stream: obstore", read_obstore),
        ("large GET stream: urllib3 (cstor)", read_urllib3),
        ("large GET stream: boto3", read_boto3),
    ):
        measure(label, mib, "MiB", lambda read=read: _whole(read(big, "large"), mib))
    measure(
        "parts PUT: urllib3 presigned (cstor)",
        parts * 16, "MiB", lambda: put_parts(big, parts, presigned=True),
    )  # fmt: skip
    measure(
        "parts PUT: boto3 upload_part",
        parts * 16, "MiB", lambda: put_parts(big, parts, presigned=False),
    )  # fmt: skip


def _whole(read: int, mib: int) -> None:
    if read != mib * MIB:
        raise SystemExit(f"read {read} bytes of {mib} MiB")


if __name__ == "__main__":
    main()

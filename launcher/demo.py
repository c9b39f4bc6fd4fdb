"""`cstor demo`: two local S3 servers, a seeded bucket, and a real migration through the API."""

from __future__ import annotations

import contextlib
import random
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from launcher import embedded
from launcher.local_admin import ADMIN_EMAIL, sign_in_local_admin, wait_for_api
from launcher.stack import ServiceProcesses

SOURCE_KEYS = ("demo-source-key1", "demo-source-secret-0001")
DESTINATION_KEYS = ("demo-target-key2", "demo-target-secret-0002")
MiB = 1024 * 1024


def run_demo(services: ServiceProcesses, *, objects: int, exit_when_done: bool) -> int:
    """Seed, migrate through the REST API, show progress, verify the destination independently."""
    settings = services.settings
    root = settings.data_dir / "demo"
    seeded = _seed(root / "source" / "photos", objects)
    (root / "destination" / "archive").mkdir(parents=True, exist_ok=True)
    api = f"http://127.0.0.1:{settings.api_port}"
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(
            embedded.start_rclone_s3(
                root / "source", embedded.free_port(), *SOURCE_KEYS, log_path=root / "source.log"
            )
        )
        destination = stack.enter_context(
            embedded.start_rclone_s3(
                root / "destination",
                embedded.free_port(),
                *DESTINATION_KEYS,
                log_path=root / "destination.log",
            )
        )
        client = stack.enter_context(httpx.Client(base_url=api, timeout=30.0))
        wait_for_api(client, services)
        password = sign_in_local_admin(client, settings.data_dir)
        migration = _start_migration(client, source, destination)
        print(f"event feed: nats --server {settings.nats_url} sub 'cstor.>'")
        print(f"dashboard: {api}/migrations/{migration['id']}")
        print(f"sign in as {ADMIN_EMAIL}, password {password} ({settings.data_dir}/admin.json)")
        final = _follow(client, migration["id"], services)
        verified = _verify(source, destination, final)
        size = sum(seeded.values()) / MiB
        if verified == len(seeded) and final["objects_failed"] == 0:
            summary = f"{verified} objects copied and verified ({size:.1f} MiB)"
            ok = True
        else:
            summary = (
                f"only {verified} of {len(seeded)} objects copied and verified; "
                f"{final['objects_failed']} failed"
            )
            ok = False
        if not exit_when_done:
            print(f"{summary}. Dashboard: {api}/  (Ctrl-C stops)")
            while True:
                time.sleep(1.0)
                services.restart_exited()
        print(summary)
        return 0 if ok else 1
    return 1


def _seed(folder: Path, count: int) -> dict[str, int]:
    """Files of mixed sizes (one of 12 MiB), written before the server starts serving them."""
    rng = random.Random(2026)
    sizes: dict[str, int] = {}
    for n in range(count):
        if n == 0:
            size = 12 * MiB
        elif n % 50 == 0:
            size = rng.randint(1 * MiB, 3 * MiB)
        elif n % 25 == 0:
            size = 0
        else:
            size = rng.randint(1, 256 * 1024)
        sizes[f"{2020 + n % 5}/album-{n % 17:02d}/img-{n:05d}.jpg"] = size
    if not folder.exists():
        for key, size in sizes.items():
            path = folder / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(rng.randbytes(size))
    return sizes


def _start_migration(
    client: httpx.Client, source: embedded.EmbeddedS3, destination: embedded.EmbeddedS3
) -> dict[str, Any]:
    ids = []
    for name, server in (("demo source", source), ("demo destination", destination)):
        response = client.post(
            "/api/v1/connections",
            json={
                "name": name,
                "endpoint": server.endpoint,
                "access_key": server.access_key,
                "secret_key": server.secret_key,
            },
        )
        _check(response)
        ids.append(response.json()["id"])
    response = client.post(
        "/api/v1/migrations",
        json={
            "name": "demo: photos → archive",
            "source_connection_id": ids[0],
            "source_bucket": "photos",
            "destination_connection_id": ids[1],
            "destination_bucket": "archive",
        },
    )
    _check(response)
    result: dict[str, Any] = response.json()
    return result


def _follow(client: httpx.Client, migration_id: str, services: ServiceProcesses) -> dict[str, Any]:
    """Print progress until the migration ends; return its final state."""
    started = time.monotonic()
    while True:
        response = client.get(f"/api/v1/migrations/{migration_id}")
        _check(response)
        state: dict[str, Any] = response.json()
        elapsed = time.monotonic() - started
        line = (
            f"{state['status']:>10}: {state['objects_copied']}/{state['objects_planned']} objects, "
            f"{state['bytes_copied'] / MiB:.1f}/{state['bytes_planned'] / MiB:.1f} MiB, "
            f"{state['objects_failed']} failed, {elapsed:.1f} s"
        )
        print(line, file=sys.stderr)
        if state["status"] in ("completed", "failed"):
            return state
        services.restart_exited()
        time.sleep(1.0)


def _verify(
    source: embedded.EmbeddedS3, destination: embedded.EmbeddedS3, final: dict[str, Any]
) -> int:
    """Count destination objects whose size and MD5 ETag equal the source's."""
    if final["status"] != "completed":
        return 0
    want = _listing(source, "photos")
    have = _listing(destination, "archive")
    return sum(1 for key, entry in want.items() if have.get(key) == entry)


def _listing(server: embedded.EmbeddedS3, bucket: str) -> dict[str, tuple[int, str]]:
    s3 = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    listing = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            listing[obj["Key"]] = (obj["Size"], obj["ETag"].strip('"'))
    return listing


def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise SystemExit(f"the api refused {response.request.url.path}: {response.text}")

"""Benchmark: the api under load, with a migration running.

Everything runs on this machine, on loopback: Postgres, NATS, two `rclone serve s3`
endpoints, the four cstor services as processes (the api with ``--api-workers``
workers, CSTOR_API_WORKERS). One real migration copies between the two endpoints,
bandwidth-limited so that it keeps running for the whole load; a finished migration of
``--objects`` objects (and 20 older ones) is seeded into the read models by folding its
events with the projector's projection (bench/readmodel_seed.py, as bench/dashboard.py).

Then ``--clients`` clients, each in a closed loop for ``--seconds``, read: a migration's
page (HTML, signed-in session cookie), its progress fragment (an htmx poll), the object
search (REST with a token, by key prefix) and the migrations list (REST and page).
Prints p50/p95/p99 per route and overall, requests/s and errors; the last line is
``api_load p50_ms=A p95_ms=B p99_ms=C rps=D errors=E ...`` (the target: p95 < 250 ms,
p99 < 500 ms at 50 clients, 0 errors).
Run: ``python bench/api_load.py [--seconds 30] [--clients 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import httpx
import msgspec
import psutil
import readmodel_seed

from cstor.secrets.cipher import load_or_create_key
from cstor.settings import Settings
from launcher import embedded
from launcher.local_admin import ADMIN_EMAIL, sign_in_local_admin, wait_for_api
from launcher.stack import ServiceProcesses

KiB = 1024
SOURCE_KEYS = ("loadsourcekey001", "load-source-secret-001")
DEST_KEYS = ("loaddestkey00002", "load-dest-secret-00002")
WARM_UP_SECONDS = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the load lasts")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument(
        "--objects", type=int, default=200_000, help="objects of the seeded finished migration"
    )
    parser.add_argument(
        "--live-objects", type=int, default=3000, help="16 KiB objects the running one copies"
    )
    parser.add_argument(
        "--api-workers", type=int, default=0, help="api worker processes (0: cstor's default)"
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cstor-bench-load-")))
        _seed_files(work / "source" / "live", args.live_objects, 16 * KiB)
        (work / "dest" / "live-copy").mkdir(parents=True)
        source = stack.enter_context(
            embedded.start_rclone_s3(work / "source", embedded.free_port(), *SOURCE_KEYS)
        )
        dest = stack.enter_context(
            embedded.start_rclone_s3(work / "dest", embedded.free_port(), *DEST_KEYS)
        )
        api, settings = stack.enter_context(_cstor(stack, work, args.api_workers))
        target = _prepare(api, settings, source, dest, args)
        results = asyncio.run(_load(target, args.clients, args.seconds))
        still = api.get(f"/api/v1/migrations/{target.live_id}").json()
        _report(results, args, settings, still)


@dataclass(frozen=True)
class Target:
    """What the clients read, and how they prove who they are."""

    base_url: str
    token: str
    cookies: str  # a signed-in browser's: its session, its CSRF token
    live_id: str
    finished_id: str


@dataclass
class Results:
    """Each request's route, latency (ms) and outcome, during the measured seconds."""

    seconds: float = 0.0
    timings: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    spread: list[int] = field(default_factory=list)


def _seed_files(folder: Path, count: int, size: int) -> None:
    block = random.Random(count).randbytes(size)
    for n in range(count):
        path = folder / f"{n % 20:02d}" / f"object-{n:06d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(n.to_bytes(8, "big") + block[8:])


@contextlib.contextmanager
def _cstor(
    stack: contextlib.ExitStack, work: Path, api_workers: int
) -> Iterator[tuple[httpx.Client, Settings]]:
    """The whole stack on this machine, and a REST client signed in as the local admin."""
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
    if api_workers:
        settings = msgspec.structs.replace(settings, api_workers=api_workers)
    services = ServiceProcesses(settings)
    services.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.api_port}", timeout=60) as api:
            wait_for_api(api, services)
            yield api, settings
    finally:
        services.stop()


def _prepare(
    api: httpx.Client,
    settings: Settings,
    source: embedded.EmbeddedS3,
    dest: embedded.EmbeddedS3,
    args: argparse.Namespace,
) -> Target:
    """Sign in (token and session), start the live migration, seed the finished one."""
    password = sign_in_local_admin(api, settings.data_dir)
    token = api.headers["Authorization"].removeprefix("Bearer ")
    cookies = _browser_cookies(str(api.base_url), password)
    owner = api.get("/api/v1/me").json()["id"]
    connections = [_connection(api, server) for server in (source, dest)]
    # Slow enough to be still copying when the load ends: about three times as long.
    total = args.live_objects * 16 * KiB
    bandwidth = max(int(total / (3 * (args.seconds + WARM_UP_SECONDS) + 30)), 16 * KiB)
    created = api.post(
        "/api/v1/migrations",
        json={
            "name": "live",
            "source_connection_id": connections[0],
            "source_bucket": "live",
            "destination_connection_id": connections[1],
            "destination_bucket": "live-copy",
            "limits": {"bandwidth_bytes_per_second": bandwidth},
        },
    )
    created.raise_for_status()
    live_id = created.json()["id"]
    started = time.perf_counter()
    finished_id = asyncio.run(_seed_read_models(settings.database_url, owner, args.objects))
    print(f"seeded {args.objects:,} objects in {time.perf_counter() - started:.1f} s")
    _wait_copying(api, live_id)
    return Target(str(api.base_url).rstrip("/"), token, cookies, live_id, str(finished_id))


def _browser_cookies(base_url: str, password: str) -> str:
    """A dashboard session, signed in through the sign-in form as a browser would."""
    with httpx.Client(base_url=base_url, timeout=60) as browser:
        form = browser.get("/sign-in")
        csrf = re.search(r'name="_csrf_token" value="([^"]+)"', form.text)
        if csrf is None:
            raise SystemExit("the sign-in form has no CSRF token")
        browser.post(
            "/sign-in",
            data={"email": ADMIN_EMAIL, "password": password, "_csrf_token": csrf[1]},
        )
        session = browser.cookies.get("cstor_session")
        if not session:
            raise SystemExit("signing in to the dashboard gave no session cookie")
        # The browser's cookies as it sends them back: the session and the CSRF token's.
        return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


def _connection(api: httpx.Client, server: embedded.EmbeddedS3) -> str:
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
    return str(response.json()["id"])


def _wait_copying(api: httpx.Client, migration_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = api.get(f"/api/v1/migrations/{migration_id}").json()
        if state["objects_copied"] > 0:
            return
        if state["status"] in ("completed", "failed", "cancelled"):
            raise SystemExit(f"the live migration ended before the load: {state}")
        time.sleep(0.2)
    raise SystemExit(f"the live migration copied nothing in {timeout} s")


async def _seed_read_models(database_url: str, owner: str, objects: int) -> uuid.UUID:
    """A finished migration of ``objects`` objects, every 50th failed, and 20 older ones,
    folded from their events by the projection (bench/readmodel_seed.py)."""
    conn = await asyncpg.connect(database_url)
    try:
        feed = readmodel_seed.Feed(conn)
        now = datetime.now(UTC)
        for n in range(20, -1, -1):
            requested = now - timedelta(hours=n + 2)
            migration_id = await readmodel_seed.migration(
                feed, owner, "big one" if n == 0 else f"older {n}", requested,
                requested + timedelta(minutes=1),
            )  # fmt: skip
            count = objects if n == 0 else 0

            def at(k: int, count: int = count) -> datetime:
                return now - timedelta(hours=1, seconds=count - k)

            everything = readmodel_seed.Objects(count, _key, _outcome, at)
            await readmodel_seed.planned(feed, migration_id, at(count - 1), everything)
            await readmodel_seed.completed(feed, migration_id, now - timedelta(hours=n + 1))
        await readmodel_seed.analyze(conn)
        return migration_id
    finally:
        await conn.close()


def _outcome(n: int) -> str:
    return "failed" if n % 50 == 0 else "copied"


def _key(n: int) -> str:
    return f"{n % 100:02d}/album-{n % 977:03d}/img-{n:07d}.jpg"


# The load -----------------------------------------------------------------------------


def _routes(target: Target, rng: random.Random) -> list[tuple[str, str, dict[str, str]]]:
    """One round of a client: (route, path, headers), on one of the two migrations."""
    migration = rng.choice((target.live_id, target.finished_id))
    page = {"Cookie": target.cookies}
    poll = page | {"HX-Request": "true", "HX-Current-URL": f"/migrations/{migration}"}
    rest = {"Authorization": f"Bearer {target.token}"}
    prefix = f"{rng.randrange(100):02d}/album-{rng.randrange(10)}"
    return [
        ("page: migration", f"/migrations/{migration}", page),
        ("htmx: progress", f"/migrations/{migration}/progress", poll),
        (
            "rest: object search",
            f"/api/v1/migrations/{target.finished_id}/objects?prefix={prefix}",
            rest,
        ),
        ("rest: migrations", "/api/v1/migrations", rest),
        ("page: migrations", "/", page),
    ]


async def _load(target: Target, clients: int, seconds: float) -> Results:
    """``clients`` closed loops for ``seconds`` (after a warm-up that is not counted)."""
    results = Results()
    start = time.monotonic() + WARM_UP_SECONDS
    end = start + seconds
    loads = [_client(target, n, start, end, results) for n in range(clients)]
    port = int(target.base_url.rsplit(":", 1)[1])
    await asyncio.gather(_cpu_during(start, end, port, results), *loads)
    results.seconds = seconds
    return results


async def _client(target: Target, number: int, start: float, end: float, results: Results) -> None:
    rng = random.Random(number)
    # aiohttp, not httpx: the clients share the machine's cores with the api, and httpx
    # spent 1.5 ms of CPU per request (aiohttp about a quarter of it).
    connector = aiohttp.TCPConnector(limit=1)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        target.base_url, connector=connector, timeout=timeout
    ) as client:
        while time.monotonic() < end:
            for route, path, headers in _routes(target, rng):
                began = time.monotonic()
                if began >= end:
                    return
                problem = await _get(client, path, headers)
                if began < start:
                    continue  # warming up
                results.timings[route].append((time.monotonic() - began) * 1000)
                if problem:
                    results.errors[route] += 1
                    if len(results.examples) < 5:
                        results.examples.append(f"{route} {path}: {problem}")


async def _get(client: aiohttp.ClientSession, path: str, headers: dict[str, str]) -> str:
    """What went wrong with the request, or an empty string."""
    try:
        async with client.get(path, headers=headers) as response:
            body = await response.read()
    except (aiohttp.ClientError, TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    if response.status != 200:
        return f"{response.status} {body[:200].decode(errors='replace')}"
    return ""


async def _cpu_during(start: float, end: float, port: int, results: Results) -> None:
    """The CPU seconds each of the stack's programs (and this bench) used from start to end."""
    await asyncio.sleep(start - time.monotonic())
    before = _cpu_by_program()
    results.spread = _connections_per_api_process(port)
    await asyncio.sleep(end - time.monotonic())
    after = _cpu_by_program()
    results.cpu = {name: after[name] - before.get(name, 0.0) for name in after}


def _connections_per_api_process(port: int) -> list[int]:
    """How many of the clients' connections each api process holds (the kernel spreads
    them over the workers; one holding more answers each of them later)."""
    counts = []
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if _program(process) != "api":
                continue
            held = [c for c in process.net_connections() if c.status == "ESTABLISHED"]
            if mine := [c for c in held if c.laddr.port == port]:
                counts.append(len(mine))
    return sorted(counts, reverse=True)


def _cpu_by_program() -> dict[str, float]:
    me = psutil.Process()
    totals: dict[str, float] = defaultdict(float)
    for process in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            totals[_program(process)] += times.user + times.system
    return totals


def _program(process: psutil.Process) -> str:
    """ "api", "transfer", ..., "postgres", "nats", "rclone" or "bench": what the process,
    or the nearest of its parents that says, is (an api worker is the api's child)."""
    for each in [process, *process.parents()]:
        if each.pid == os.getpid():
            return "bench"
        argv = each.cmdline()
        if argv[1:2] == ["-m"] and len(argv) > 2 and argv[2].startswith("services."):
            return argv[2].removeprefix("services.")
        for program in ("postgres", "nats", "rclone"):
            if program in each.name():
                return program
    return process.name()


# The report ---------------------------------------------------------------------------


def _percentiles(timings: list[float]) -> tuple[float, float, float]:
    if len(timings) < 2:
        only = timings[0] if timings else 0.0
        return only, only, only
    cuts = statistics.quantiles(timings, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def _report(
    results: Results, args: argparse.Namespace, settings: Settings, live: dict[str, object]
) -> None:
    every = [t for timings in results.timings.values() for t in timings]
    errors = sum(results.errors.values())
    print(
        f"\n{'route':<22} {'requests':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    for route, timings in results.timings.items():
        p50, p95, p99 = _percentiles(timings)
        print(
            f"{route:<22} {len(timings):>9} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f}"
            f" {results.errors[route]:>7}"
        )
    p50, p95, p99 = _percentiles(every)
    print(f"{'all':<22} {len(every):>9} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {errors:>7}")
    for example in results.examples:
        print(f"error: {example}")
    busy = sorted(results.cpu.items(), key=lambda item: -item[1])
    print(
        "CPU seconds used during the load: "
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in busy if seconds >= 0.05)
    )
    print(f"the clients' connections held by each api process: {results.spread}")
    print(
        f"the live migration during the load: {live['status']},"
        f" {live['objects_copied']}/{live['objects_planned']} objects copied"
    )
    load = os.getloadavg()
    requests = max(len(every), 1)
    print(
        f"CPU per request: api {results.cpu.get('api', 0) * 1000 / requests:.2f} ms,"
        f" postgres {results.cpu.get('postgres', 0) * 1000 / requests:.2f} ms,"
        f" this bench {results.cpu.get('bench', 0) * 1000 / requests:.2f} ms"
    )
    print(
        f"api_load p50_ms={p50:.1f} p95_ms={p95:.1f} p99_ms={p99:.1f}"
        f" rps={len(every) / results.seconds:.1f} errors={errors} clients={args.clients}"
        f" seconds={args.seconds:g} api_workers={getattr(settings, 'api_workers', 1)}"
        f" load={load[0]:.2f},{load[1]:.2f},{load[2]:.2f}"
    )


if __name__ == "__main__":
    main()

"""The `cstor` command: `up`, `demo`, `rotate-key`, `rebuild-read-models`, `service <name>`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import msgspec

from cstor.runtime import configure_logging
from cstor.settings import Settings, SettingsError
from cstor.store.pool import create_pool
from launcher.stack import SERVICES, StackOptions, running_stack


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `cstor` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging()
    try:
        code = args.command(args)
    except KeyboardInterrupt:
        code = 130
    except SettingsError as error:
        print(f"cstor: {error}", file=sys.stderr)
        code = 2
    sys.exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cstor", description="Migrate objects between S3-compatible stores."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start Postgres, NATS and the four services")
    _stack_options(up)
    up.set_defaults(command=_up)

    demo = commands.add_parser(
        "demo", help="as `up`, plus two local S3 servers and a real migration between them"
    )
    _stack_options(demo)
    demo.add_argument("--exit", action="store_true", help="exit when the migration finishes")
    demo.add_argument("--objects", type=int, default=500, help="objects to seed (default 500)")
    demo.set_defaults(command=_demo)

    rotate = commands.add_parser(
        "rotate-key",
        help="re-encrypt every stored secret with the first key of CSTOR_SECRET_KEY (new,old)",
    )
    rotate.add_argument("--data-dir", type=Path, default=Path(".cstor"))
    rotate.add_argument("--database-url", default="", help="default: CSTOR_DATABASE_URL")
    rotate.set_defaults(command=_rotate_key)

    rebuild = commands.add_parser(
        "rebuild-read-models",
        help="fold every stored event into the projector's read models again",
        description="Empty the projector's read models (migrations, objects, throughput) and"
        " fold every event of the event store into them again, in order, in one transaction,"
        " up to the end of the stream, where the projector then goes on. Run it once the cause"
        " of the projector's dead letters is fixed: those that now apply are removed, the"
        " others are kept. It is safe to run with the projector stopped (stop it first); a"
        " projector left running waits for it, and readers see the old read models until it"
        " commits.",
    )
    rebuild.add_argument("--database-url", default="", help="default: CSTOR_DATABASE_URL")
    rebuild.add_argument("--nats-url", default="", help="default: CSTOR_NATS_URL")
    rebuild.set_defaults(command=_rebuild_read_models)

    service = commands.add_parser("service", help="run one service (what compose runs)")
    service.add_argument("name", choices=SERVICES)
    service.set_defaults(command=_service)
    return parser


def _stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=Path(".cstor"))
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--postgres-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--nats-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--database-url", default="", help="use this Postgres, start none")
    parser.add_argument("--nats-url", default="", help="use this NATS, start none")
    parser.add_argument("--transfer-replicas", type=int, default=1)
    parser.add_argument(
        "--nats-cluster",
        type=_cluster_size,
        default=0,
        metavar="N",
        help="start a local JetStream cluster of N nodes (3 or more), the stream with 3 replicas",
    )


def _cluster_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 3:
        raise argparse.ArgumentTypeError(f"{value!r}: a cluster has at least 3 nodes")
    return size


def _options(args: argparse.Namespace) -> StackOptions:
    return StackOptions(
        data_dir=args.data_dir,
        api_port=args.api_port,
        postgres_port=args.postgres_port,
        nats_port=args.nats_port,
        database_url=args.database_url,
        nats_url=args.nats_url,
        transfer_replicas=args.transfer_replicas,
        nats_cluster=args.nats_cluster,
    )


def _up(args: argparse.Namespace) -> int:
    import httpx

    from launcher.local_admin import ADMIN_EMAIL, sign_in_local_admin, wait_for_api

    with _terminate_as_interrupt(), running_stack(_options(args)) as services:
        api = f"http://127.0.0.1:{args.api_port}"
        with httpx.Client(base_url=api, timeout=30.0) as client:
            wait_for_api(client, services)
            password = sign_in_local_admin(client, services.settings.data_dir)
        print(f"event feed: {services.settings.nats_url} (stream {services.settings.stream_name})")
        print(f"cstor is running: dashboard at {api}/  (Ctrl-C stops)")
        print(f"sign in as {ADMIN_EMAIL} with password {password}, or sign up for an account")
        while True:
            time.sleep(1.0)
            services.restart_exited()


def _demo(args: argparse.Namespace) -> int:
    from launcher.demo import run_demo  # the demo pulls in S3 seeding only when asked for

    with _terminate_as_interrupt(), running_stack(_options(args)) as services:
        return run_demo(services, objects=args.objects, exit_when_done=args.exit)


def _rotate_key(args: argparse.Namespace) -> int:
    from cstor.secrets.cipher import SecretCipher, load_or_create_key
    from cstor.store.connections import KeyRotation, reencrypt_secrets
    from cstor.store.migrations import migrate

    settings = Settings.from_env()
    key = settings.secret_key or load_or_create_key(args.data_dir)
    database_url = args.database_url or settings.database_url

    async def rotate() -> KeyRotation:
        pool = await create_pool(database_url, min_size=1, max_size=1)
        try:
            await migrate(pool)
            return await reencrypt_secrets(pool, SecretCipher(key))
        finally:
            await pool.close()

    done = asyncio.run(rotate())
    print(f"{done.reencrypted} connection secrets are now encrypted with the first key")
    if done.kept_in_secrets_manager:
        print(
            f"{done.kept_in_secrets_manager} connection secrets are kept in AWS Secrets Manager,"
            " which encrypts them with its own (KMS) key: the application key does not apply"
            " to them, so there is nothing to re-encrypt"
        )
    return 0


def _rebuild_read_models(args: argparse.Namespace) -> int:
    from cstor import outages
    from services.projector.rebuild import rebuild_from_store

    configured = Settings.from_env()
    settings = msgspec.structs.replace(
        configured,
        database_url=args.database_url or configured.database_url,
        nats_url=args.nats_url or configured.nats_url,
    )
    try:
        done = asyncio.run(rebuild_from_store(settings))
    except Exception as error:
        if not outages.is_outage(error):
            raise
        print(f"cstor: could not reach Postgres or NATS ({error}); nothing was changed",
              file=sys.stderr)  # fmt: skip
        return 1
    print(
        f"rebuilt the read models from {done.events} stored events; the projector goes on"
        f" after stream sequence {done.stream_sequence}"
    )
    print(f"{done.recovered} dead letters of the projector's now apply and were removed")
    if done.still_failing:
        print(f"{len(done.still_failing)} events still cannot be applied, kept as dead letters:")
        for failure in done.still_failing:
            print(f"  event {failure.event.event_id} at {failure.event.position}: {failure.error}")
    return 0


def _service(args: argparse.Namespace) -> int:
    """Become `python -m services.<name>`: each service is its own composition root, and
    runs without the launcher (as compose runs it); this command is kept for scripts."""
    os.execv(sys.executable, [sys.executable, "-m", f"services.{args.name}"])  # noqa: S606


class _terminate_as_interrupt:
    """Treat SIGTERM like Ctrl-C so the stack shuts down cleanly either way."""

    def __enter__(self) -> None:
        self._previous = signal.signal(signal.SIGTERM, self._raise)

    def __exit__(self, *_: object) -> None:
        signal.signal(signal.SIGTERM, self._previous)

    @staticmethod
    def _raise(*_: object) -> None:
        raise KeyboardInterrupt

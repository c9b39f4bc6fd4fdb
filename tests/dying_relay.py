"""A relay process that dies by SIGKILL right after JetStream acknowledged its first batch,
before it saved its position: ``python -m tests.dying_relay <database url> <nats url>``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from cstor import bus
from cstor.app.migrations import Migrations
from cstor.settings import Settings
from cstor.store.relay import OutboxRelay


class DyingRelay(OutboxRelay):
    """Killed between the stream's acknowledgement of a batch and its own commit of it."""

    async def publish_after(self, position: int) -> int:
        published_to = await super().publish_after(position)
        if published_to != position:
            os.kill(os.getpid(), signal.SIGKILL)
        return published_to


async def main(database_url: str, nats_url: str) -> None:
    app = Migrations(Settings(database_url=database_url).eventsourcing_env())
    nc = await bus.connect(nats_url, "dying-relay")
    await DyingRelay(app, nc, database_url).run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))

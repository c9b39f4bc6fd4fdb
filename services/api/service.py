"""Run the api under uvicorn until stopped."""

from __future__ import annotations

import asyncio

import uvicorn

from cstor.settings import Settings
from services.api.app import create_app


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Serve the api (and run the outbox relay) until ``stop`` is set."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving

"""Serve the inbox inside an asyncio program that already runs (the demo, the tests)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from temporalio.client import Client

from starter.web.app import create_app
from workers.settings import Settings


@contextlib.asynccontextmanager
async def serving(settings: Settings, client: Client | None = None) -> AsyncIterator[str]:
    """The inbox on `web_host:web_port` for the duration of the block; yields its URL."""
    config = uvicorn.Config(
        create_app(settings, client),
        host=settings.web_host,
        port=settings.web_port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    # The program around it owns SIGINT/SIGTERM and ends the block; uvicorn must not take them.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # it could not start (the port is taken): raise why
            raise OSError(f"the inbox could not listen on {settings.web_host}:{settings.web_port}")
        await asyncio.sleep(0.02)
    try:
        yield f"http://{settings.web_host}:{settings.web_port}"
    finally:
        server.should_exit = True
        await task

"""Serve the inbox or the codec server inside an asyncio program that already runs (the
demo, the tests)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from temporalio.client import Client

from starter.web.app import create_app
from workers.settings import Settings


@contextlib.asynccontextmanager
async def serving(settings: Settings, client: Client | None = None) -> AsyncIterator[str]:
    """The inbox on `web_host:web_port` for the duration of the block; yields its URL."""
    async with serving_app(
        create_app(settings, client), settings.web_host, settings.web_port, "the inbox"
    ) as url:
        yield url


@contextlib.asynccontextmanager
async def serving_codec(settings: Settings) -> AsyncIterator[str]:
    """The codec server on `codec_host:codec_port` for the block; yields its URL."""
    from starter.web.codec_server import create_codec_app

    async with serving_app(
        create_codec_app(settings), settings.codec_host, settings.codec_port, "the codec server"
    ) as url:
        yield url


@contextlib.asynccontextmanager
async def serving_app(app: Any, host: str, port: int, what: str) -> AsyncIterator[str]:
    """Any ASGI app on host:port for the duration of the block; yields its URL."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    # The program around it owns SIGINT/SIGTERM and ends the block; uvicorn must not take them.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # it could not start (the port is taken): raise why
            raise OSError(f"{what} could not listen on {host}:{port}")
        await asyncio.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task

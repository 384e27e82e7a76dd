"""The `orderflow` Typer app and what every command shares: connecting, JSON output."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from starter.orders import UserError
from workers.settings import get_settings

app = typer.Typer(
    help="orderflow: every order a durable Temporal workflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def run(coroutine_factory: Callable[[Any], Awaitable[T]], *, runtime: Any = None) -> T:
    """Connect to Temporal and run one client coroutine (`runtime`: the SDK runtime to use)."""
    from workers.client import ConnectionSettingsError, connect

    settings = get_settings()

    async def go() -> T:
        try:
            client = await connect(settings, runtime=runtime)
        except RuntimeError as error:
            raise UserError(
                f"cannot reach Temporal at {settings.resolved_temporal_address} "
                f"(start it with `orderflow dev`): {str(error).splitlines()[0]}"
            ) from None
        except ConnectionSettingsError as error:
            raise UserError(str(error)) from None
        return await coroutine_factory(client)

    return asyncio.run(go())

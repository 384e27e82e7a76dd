"""The `orderflow` command: run the stack, place orders, send decisions, inspect.

The commands live in `starter.commands`, one module per kind of user.
"""

import importlib
import os
import signal
import sys
from types import FrameType
from typing import NoReturn

import typer

from starter.app import app
from starter.orders import UserError

# Importing a group registers its commands; this order is the order of `orderflow --help`.
COMMAND_GROUPS = ("orders", "returns", "money", "intake", "inbox", "operations", "security", "erp")
for group in COMMAND_GROUPS:
    importlib.import_module(f"starter.commands.{group}")


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, and the true exit status even if the SDK aborts at exit.

    SIGTERM (how a supervisor stops a process) unwinds like Ctrl-C, so the embedded Temporal
    server and anything else a command started is stopped on either.
    """
    signal.signal(signal.SIGTERM, _interrupted)
    code = 0
    try:
        result = app(args=argv, standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == 130:  # Typer's answer to Ctrl-C (or SIGTERM, raised as one) in a command
            raise KeyboardInterrupt
    except typer.Exit as done:
        code = done.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted: stopped (with what the command had started)", file=sys.stderr)
        code = 130
    except typer.TyperException as error:  # usage errors: bad option, missing argument
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        print(f"error: {message} (see orderflow --help)", file=sys.stderr)
        code = getattr(error, "exit_code", 2)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    except Exception as error:
        code = report_unexpected(error)
    leave(code)


def report_unexpected(error: Exception) -> int:
    """An unexpected error as one line on standard error; exit status 1."""
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    print(f"error: {first}", file=sys.stderr)
    return 1


def leave(code: int) -> NoReturn:
    """Exit with `code` after flushing: temporalio can abort while the interpreter shuts down
    (sdk-python #300), so every entry point skips that shutdown."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

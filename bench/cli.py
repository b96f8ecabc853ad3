"""What the bench's and the soak's commands share: the --workers option, and running their main."""

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from systems import RUN_DIR, BenchError


def add_workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WORKERS", "1")),
        help="gunicorn workers per service (default $WORKERS or 1)",
    )


def run(name: str, main: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace) -> int:
    """main(args)'s exit status; 2 when the command itself could not run, 130 when interrupted."""

    async def guarded() -> int:
        # SIGTERM (a CI timeout, say) cancels us like Ctrl-C does, so the cleanup still stops everything.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        return await main(args)

    try:
        return asyncio.run(guarded())
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):  # everything was stopped on the way out
        print(f"{name}: interrupted", file=sys.stderr)
        return 130

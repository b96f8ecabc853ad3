"""`python -m chaos [--minutes M] [--seed S] [--ledger PATH]` (`make chaos`): exit 0 if no invariant was
violated, 1 naming each violation, 2 if the run itself could not happen."""

import argparse
import asyncio
import os
import random
import sys
from pathlib import Path

from chaos.run import Options, run
from chaos.system import unavailable


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("CHAOS_MINUTES") or 10))
    seed = os.environ.get("CHAOS_SEED")
    parser.add_argument("--seed", type=int, default=int(seed) if seed else random.randrange(2**31))
    parser.add_argument("--ledger", type=Path, default=None, help="the JSON lines file (default .run/chaos-SEED.jsonl)")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (server logs, data)")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    return Options(
        minutes=args.minutes,
        seed=args.seed,
        ledger_path=args.ledger or Path(f".run/chaos-{args.seed}.jsonl"),
        keep_folder=args.keep,
    )


def main() -> int:
    options = parse_args()
    why = unavailable()
    if why:
        print(f"chaos: cannot run here: {why}", file=sys.stderr)
        return 2
    try:
        verdict = asyncio.run(run(options))
    except Exception as exc:
        print(f"chaos: the run itself failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if not verdict["passed"]:
        for violation in verdict["violations"]:
            print(f"chaos: VIOLATION: {violation}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

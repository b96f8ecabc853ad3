"""A short chaos run (`make chaos` for the long one): every kind of fault at least once, overlapping,
under mixed load, with a fixed seed; then heal, and the checker must find nothing lost, doubled or left
half-done (chaos/checker.py says what it checks).

The run brings its own RabbitMQ node and PostgreSQL instance (free ports, a temporary folder): the
machine's servers are never touched. Skipped, with the reason, where either cannot be started here.
"""

import pytest

from chaos.faults import KINDS
from chaos.run import Options, run
from chaos.system import unavailable

pytestmark = pytest.mark.slow


async def test_a_short_chaos_run_with_every_kind_of_fault_loses_doubles_and_leaves_nothing(tmp_path):
    why = unavailable()
    if why:
        pytest.skip(f"chaos: {why}")
    ledger = tmp_path / "chaos.jsonl"
    verdict = await run(Options(minutes=0.5, seed=39, ledger_path=ledger, durations=(1.5, 5.0), gaps=(0.5, 3.0)))
    assert verdict["kinds_missing"] == [], verdict["kinds_missing"]
    assert set(verdict["kinds"]) == set(KINDS)
    assert verdict["violations"] == [], "\n".join(verdict["violations"])
    assert verdict["orders"] > 0 and verdict["status_changes"] > 0
    lines = ledger.read_text().splitlines()
    assert len(lines) == verdict["faults"] + 1  # one per fault, then the verdict

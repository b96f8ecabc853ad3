"""Turn each system's raw results into figures, compare ours with the baseline, print and save."""

import argparse
import json
import math
import os
import platform
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from figure import ratio
from phases import PHASES

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
FIGURES = [figure for phase in PHASES for figure in phase.FIGURES]
DIGITS = {figure.key: figure.digits for figure in FIGURES}


def figures(result: dict) -> dict[str, float | None]:
    """The flat figures of one system's raw result (missing parts give None)."""
    return {figure.key: figure.value(result) for figure in FIGURES}


def compare(results: dict[str, dict]) -> list[dict]:
    """One row per figure: ours, baseline, ratio, target and whether ours meets it."""
    ours, baseline = figures(results.get("ours", {})), figures(results.get("baseline", {}))
    rows = []
    for figure in FIGURES:
        mine, theirs = ours[figure.key], baseline[figure.key]
        rows.append(
            {
                "key": figure.key,
                "label": figure.label,
                "ours": mine,
                "baseline": theirs,
                "ratio": ratio(mine, theirs),
                "target": figure.target,
                "pass": figure.check(mine, theirs) if figure.check and "ours" in results else None,
            }
        )
    return rows


def fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def aligned(lines: list[tuple], aligns: str) -> str:
    """Columns aligned left (<) or right (>) as `aligns` says, under a rule below the first line."""
    cells = [tuple(str(cell) for cell in line) for line in lines]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    text = [
        "  ".join(f"{cell:{align}{width}}" for cell, align, width in zip(line, aligns, widths, strict=True)).rstrip()
        for line in cells
    ]
    text.insert(1, "-" * max(len(line) for line in text))
    return "\n".join(text)


def table(rows: list[dict]) -> str:
    lines = [("figure", "ours", "baseline", "ratio", "target", "")]
    for row in rows:
        verdict = {True: "PASS", False: "FAIL", None: ""}[row["pass"]] if row["target"] else ""
        places = DIGITS[row["key"]]
        ratio_text = "-" if row["ratio"] is None else f"{row['ratio']:.3g}x"
        lines.append(
            (row["label"], fmt(row["ours"], places), fmt(row["baseline"], places), ratio_text, row["target"], verdict)
        )
    return aligned(lines, "<>>><<")


def _span(values: list, render: Callable[[float], str]) -> str:
    present = [value for value in values if value is not None]
    return f"{render(min(present))} to {render(max(present))}" if present else "-"


def rounds_table(rounds: list[list[dict]]) -> str:
    """Every judged figure over the rounds: ours, the baseline and the ratio as min to max, and in how
    many rounds ours met its target (one machine varies from run to run)."""
    lines = [("figure", "ours", "baseline", "ratio", "target", "met")]
    for i, row in enumerate(rounds[0]):
        same = [r[i] for r in rounds]
        judged = [r["pass"] for r in same if r["pass"] is not None]
        if not row["target"] or not judged:
            continue
        places = DIGITS[row["key"]]
        lines.append(
            (
                row["label"],
                _span([r["ours"] for r in same], lambda v, places=places: fmt(v, places)),
                _span([r["baseline"] for r in same], lambda v, places=places: fmt(v, places)),
                _span([r["ratio"] for r in same], lambda v: f"{v:.2f}x"),
                row["target"],
                f"{sum(judged)} of {len(judged)}",
            )
        )
    return aligned(lines, "<>>><<")


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def document_head(started_at: datetime, args: argparse.Namespace) -> dict:
    """What a saved run starts with: when, which commit, its settings, and the machine it ran on."""
    return {
        "started_at": started_at.isoformat(),
        "git_commit": git_commit(),
        "settings": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }


def save_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")

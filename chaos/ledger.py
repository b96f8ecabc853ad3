"""The ledger: one JSON line per fault (what, when, how long, what the system did meanwhile), then the
verdict; and the same as a table.

What the system did in a fault's window comes from the book of answers (answered, refused by admission,
503 by cause, no answer) and from the customer service's /metrics, sampled every second: events set
aside for retry by cause, the consumer breaker's openings, and the longest event lag (the upper bound of
the highest event_lag_seconds bucket that grew).
"""

import asyncio
import itertools
import time
from pathlib import Path

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from chaos.faults import Record
from chaos.load import Book, tally

SAMPLE_EVERY = 1.0


class Sampler:
    """The customer service's event figures, every second, while the run lasts."""

    def __init__(self, url: str, t0: float) -> None:
        self.url, self.t0 = url, t0
        self.samples: list[tuple[float, dict[str, float]]] = []

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                figures = await self.scrape(http)
                if figures:
                    self.samples.append((time.monotonic() - self.t0, figures))
                await asyncio.sleep(SAMPLE_EVERY)  # the sampling period

    async def scrape(self, http: aiohttp.ClientSession) -> dict[str, float]:
        try:
            async with http.get(f"{self.url}/metrics") as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return {}
        figures: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "events_retried_total":
                    figures[f"retried {sample.labels['cause']}"] = sample.value
                elif sample.name == "consumer_breaker_open":
                    figures["breaker open"] = max(figures.get("breaker open", 0.0), sample.value)
                elif sample.name == "event_lag_seconds_bucket":
                    figures[f"lag<={sample.labels['le']}"] = sample.value
        return figures

    def window(self, start: float, end: float) -> dict:
        before = [figures for t, figures in self.samples if t <= start][-1:] or [{}]
        inside = [figures for t, figures in self.samples if start < t <= end + SAMPLE_EVERY]
        if not inside:
            return {"events_retried": None, "breaker_openings": None, "longest_event_lag_s": None}
        first, last = before[0], inside[-1]
        retried = {
            name.removeprefix("retried "): round(last[name] - first.get(name, 0.0))
            for name in last
            if name.startswith("retried ") and last[name] - first.get(name, 0.0) > 0
        }
        states = [first.get("breaker open", 0.0)] + [figures.get("breaker open", 0.0) for figures in inside]
        openings = sum(1 for a, b in itertools.pairwise(states) if b > a)
        grown = [name for name in last if name.startswith("lag<=") and last[name] > first.get(name, 0.0)]
        bounds = sorted(float(name.removeprefix("lag<=")) for name in grown)
        # Buckets are cumulative: the lowest that grew as much as +Inf bounds the longest lag seen.
        total = last.get("lag<=+Inf", 0.0) - first.get("lag<=+Inf", 0.0)
        longest = next(
            (b for b in bounds if last[f"lag<={_label(b)}"] - first.get(f"lag<={_label(b)}", 0.0) >= total), None
        )
        return {"events_retried": retried, "breaker_openings": openings, "longest_event_lag_s": longest}


def _label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else str(bound)


def fault_lines(records: list[Record], book: Book, sampler: Sampler) -> list[dict]:
    lines = []
    for record in sorted(records, key=lambda r: r.start):
        answers = [a for a in book.answers if record.start <= a.t <= record.end]
        lines.append(
            {
                "fault": record.kind,
                "detail": record.detail,
                "at_s": round(record.start, 1),
                "lasted_s": round(record.end - record.start, 1),
                "requests": tally(answers),
                **sampler.window(record.start, record.end),
                **({"nemesis_error": record.error} if record.error else {}),
            }
        )
    return lines


def write(path: Path, lines: list[dict], verdict: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for line in [*lines, verdict]:
            out.write(orjson.dumps(line) + b"\n")


def table(lines: list[dict], verdict: dict) -> str:
    rows = [("at s", "lasted", "fault", "requests", "retried", "breaker", "lag ≤ s")]
    for line in lines:
        requests = " ".join(f"{k}:{v}" for k, v in sorted(line["requests"].items()))
        retried = " ".join(f"{k}:{v}" for k, v in (line["events_retried"] or {}).items()) or "-"
        rows.append(
            (
                f"{line['at_s']:.1f}",
                f"{line['lasted_s']:.1f}",
                line["fault"] + (" (NEMESIS FAILED)" if "nemesis_error" in line else ""),
                requests or "-",
                retried,
                str(line["breaker_openings"] if line["breaker_openings"] is not None else "-"),
                str(line["longest_event_lag_s"] if line["longest_event_lag_s"] is not None else "-"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    text.append("")
    text.append(f"verdict: {'PASS' if verdict['passed'] else 'FAIL'}; {verdict['summary']}")
    text += [f"  violation: {violation}" for violation in verdict["violations"]]
    return "\n".join(text)

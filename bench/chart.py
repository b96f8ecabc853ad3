"""The chart of a run: throughput, POST latency, the event lag's distribution and CPU per order."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from phases.light_load import LAG_P99_TARGET_MS
from report import figures, fmt

COLORS = {"baseline": "#8c8c8c", "ours": "#1f77b4"}


def bar_group(ax, labels: list[str], series: dict[str, list[float | None]]) -> None:
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        heights = [v or 0 for v in values]
        bars = ax.bar(xs, heights, width, label=name, color=COLORS.get(name))
        ax.bar_label(bars, labels=[fmt(v, 1 if (v or 0) < 100 else 0) for v in values], fontsize=7, padding=1)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.legend(fontsize=8)


def throughput(ax, figs: dict[str, dict]) -> None:
    keys = {
        "POST /orders": "post_rps",
        "GET /customers/{id}": "get_customer_rps",
        "GET /orders?customer_id=": "get_orders_rps",
    }
    bar_group(ax, list(keys), {name: [fig[key] for key in keys.values()] for name, fig in figs.items()})
    ax.set_title("throughput (closed loop)", fontsize=9)
    ax.set_ylabel("requests/s")


def post_latency(ax, figs: dict[str, dict]) -> None:
    percentiles = ["p50", "p90", "p99", "max"]
    bar_group(ax, percentiles, {name: [fig[f"post_{p}"] for p in percentiles] for name, fig in figs.items()})
    ax.set_title("POST /orders latency under load", fontsize=9)
    ax.set_ylabel("ms")


def lag_distribution(ax, results: dict[str, dict]) -> None:
    for name, result in results.items():
        lags = sorted(result.get("lag_ms") or [])
        if lags:
            fractions = [(i + 1) / len(lags) for i in range(len(lags))]
            ax.step(lags, fractions, where="post", label=f"{name} (n={len(lags)})", color=COLORS[name])
    target = f"{LAG_P99_TARGET_MS} ms target (p99)"
    ax.axvline(LAG_P99_TARGET_MS, color="#d62728", linestyle="--", linewidth=1, label=target)
    ax.set_title("event lag at light load: order committed → count committed (CDF)", fontsize=9)
    ax.set_xlabel("ms")
    ax.set_ylabel("fraction of orders")
    ax.legend(fontsize=8)


def cpu_per_order(ax, figs: dict[str, dict]) -> None:
    parts = {
        "customer\nservice": "cpu_customer",
        "order\nservice": "cpu_order",
        "PostgreSQL": "cpu_postgresql",
        "RabbitMQ": "cpu_rabbitmq",
        "load\ngenerator": "cpu_loadgen",
    }
    bar_group(ax, list(parts), {name: [fig[key] for key in parts.values()] for name, fig in figs.items()})
    ax.set_title("CPU per order", fontsize=9)
    ax.set_ylabel("CPU ms per order")


def chart(path: Path, results: dict[str, dict], title: str) -> None:
    figs = {name: figures(result) for name, result in results.items()}
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    fig.suptitle(title, fontsize=10)
    throughput(axes[0][0], figs)
    post_latency(axes[0][1], figs)
    lag_distribution(axes[1][0], results)
    cpu_per_order(axes[1][1], figs)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)

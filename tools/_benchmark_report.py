"""The figures a benchmark reports (see `tools.benchmarking`): one
`Measurement` per configuration, the speed ratios between
configurations, and the report as a text table or a JSON file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from typing import Any

import kerasblocks as kb


@dataclasses.dataclass
class Measurement:
    """The figures of one configuration."""

    task: str
    mode: str
    batch_size: int
    first_call_s: float = math.nan
    step_ms: list[float] = dataclasses.field(default_factory=list)
    cpu_ratio: list[float] = dataclasses.field(default_factory=list)
    traces: int | None = None
    chosen: str = ""
    error: str = ""
    peak_rss_mb: float = 0.0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.step_ms) if self.step_ms else math.nan

    @property
    def best_ms(self) -> float:
        return min(self.step_ms) if self.step_ms else math.nan

    @property
    def items_per_s(self) -> float:
        return self.batch_size / (self.median_ms / 1e3)

    def as_dict(self, flops_per_item: float | None, peak: float | None):
        result = {
            "task": self.task,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "items_per_s": self.items_per_s,
            "median_ms_per_step": self.median_ms,
            "best_ms_per_step": self.best_ms,
            "first_call_s": self.first_call_s,
            "cpu_wall_ratio": statistics.median(self.cpu_ratio)
            if self.cpu_ratio
            else None,
            "trace_count": self.traces,
            "chosen_mode": self.chosen or None,
            "peak_rss_mb": self.peak_rss_mb or None,
            "samples_ms": self.step_ms,
            "error": self.error or None,
        }
        if flops_per_item and peak and self.step_ms:
            factor = 3.0 if self.task == "training" else 1.0
            achieved = factor * flops_per_item * self.items_per_s
            result["gflops_per_s"] = achieved / 1e9
            result["fraction_of_matmul_peak"] = achieved / peak
        return result


def ratios(results) -> dict[str, float]:
    """Speed of every mode relative to "keras" and "handwritten", and of
    "auto" relative to the faster of graph and XLA (same task, batch)."""
    by_key = {(r.task, r.mode, r.batch_size): r for r in results if r.step_ms}
    out = {}
    bases = {m for (_, m, _) in by_key if m.startswith("keras:")}
    bases |= {"keras", "keras_tfdata", "handwritten"}
    for (task, mode, batch), result in by_key.items():
        for base in sorted(bases):
            other = by_key.get((task, base, batch))
            if other is not None and mode != base:
                out[f"{task}/b{batch}/{mode}_vs_{base}"] = (
                    other.median_ms / result.median_ms
                )
        if "@" in mode:
            plain = by_key.get((task, mode.split("@")[0], batch))
            if plain is not None:
                out[f"{task}/b{batch}/{mode}_vs_float32"] = (
                    plain.median_ms / result.median_ms
                )
        if mode == "auto":
            best = [by_key.get((task, m, batch)) for m in ("graph", "xla")]
            best = [b.median_ms for b in best if b is not None]
            if best:
                out[f"{task}/b{batch}/auto_vs_best_of_graph_xla"] = (
                    min(best) / result.median_ms
                )
    return out


def format_table(report: dict[str, Any]) -> str:
    """The report as an aligned text table."""
    header = (
        "task",
        "mode",
        "batch",
        "items/s",
        "ms/step",
        "best ms",
        "first s",
        "cpu/wall",
        "traces",
        "%peak",
        "rss MB",
        "note",
    )
    rows = []
    for r in report["results"]:
        rows.append(
            (
                r["task"],
                r["mode"]
                + (
                    f"->{r['chosen_mode']}"
                    if r["chosen_mode"] and r["mode"] == "auto"
                    else ""
                ),
                str(r["batch_size"]),
                f"{r['items_per_s']:.1f}" if not r["error"] else "-",
                f"{r['median_ms_per_step']:.3f}" if not r["error"] else "-",
                f"{r['best_ms_per_step']:.3f}" if not r["error"] else "-",
                f"{r['first_call_s']:.2f}" if not r["error"] else "-",
                f"{r['cpu_wall_ratio']:.2f}" if r["cpu_wall_ratio"] else "-",
                "-" if r["trace_count"] is None else str(r["trace_count"]),
                f"{100 * r['fraction_of_matmul_peak']:.0f}"
                if r.get("fraction_of_matmul_peak")
                else "-",
                f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "-",
                (r["error"] or "")[:60],
            )
        )
    widths = [
        max(len(x[i]) for x in [header, *rows]) for i in range(len(header))
    ]
    lines = [
        "  ".join(
            c.ljust(w) for c, w in zip(line, widths, strict=True)
        ).rstrip()
        for line in [header, *rows]
    ]
    if report.get("matmul_peak_gflops"):
        lines.append(f"matmul peak: {report['matmul_peak_gflops']:.1f} GFLOP/s")
    if report.get("forward_gflops_per_item"):
        lines.append(
            f"forward: {report['forward_gflops_per_item']:.4f} GFLOP per item"
        )
    for name, value in sorted(report["ratios"].items()):
        lines.append(f"ratio {name}: {value:.2f}x")
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str) -> None:
    with kb.io._atomic.atomic_path(path) as temporary:
        with open(temporary, "w") as f:
            json.dump(report, f, indent=1, default=float)
            f.write("\n")

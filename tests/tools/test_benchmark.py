"""The benchmark tool runs end to end on a tiny model and writes JSON."""

import json

import keras
import pytest

from tests.tools._cli import run_tool
from tools import benchmarking


def _tiny():
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="tiny",
    )


def test_run_benchmark_reports_every_configuration():
    lines = []
    report = benchmarking.run_benchmark(
        _tiny,
        (6,),
        modes=("graph", "xla", "auto", "keras", "handwritten"),
        batch_sizes=(4, 8),
        rounds=2,
        min_seconds=0.01,
        progress=lines.append,
        measure_peak=False,
    )
    results = report["results"]
    assert len(results) == 2 * 5 * 2
    for entry in results:
        assert entry["error"] is None
        assert len(entry["samples_ms"]) == 2
        assert entry["items_per_s"] > 0 and entry["first_call_s"] > 0
        assert entry["peak_rss_mb"] > 50
        if entry["mode"] in ("graph", "xla", "auto"):
            assert entry["trace_count"] == 1
    assert "training/b4/graph_vs_keras" in report["ratios"]
    assert "inference/b8/auto_vs_best_of_graph_xla" in report["ratios"]
    assert report["forward_gflops_per_item"] == pytest.approx(
        2 * (6 * 4 + 4 * 3) / 1e9, rel=0.5
    )
    assert lines[-1] == "round 2/2 done"
    table = benchmarking.format_table(report)
    assert table.splitlines()[0].split()[:4] == [
        "task",
        "mode",
        "batch",
        "items/s",
    ]


def test_bad_grid_is_refused():
    with pytest.raises(ValueError, match="Unknown mode 'fastest'"):
        benchmarking.run_benchmark(_tiny, (6,), modes=("fastest",))
    with pytest.raises(ValueError, match="Batch sizes must be positive"):
        benchmarking.run_benchmark(_tiny, (6,), batch_sizes=(0,))


def test_command_line_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    completed = run_tool(
        "benchmark",
        "--mlp=6,5,3",
        "--batch_sizes=4",
        "--modes=graph,keras",
        "--tasks=inference",
        "--rounds=2",
        "--min_seconds=0.01",
        "--nopeak",
        "--precision=float32,mixed_bfloat16",
        f"--out={out}",
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [r["mode"] for r in report["results"]] == [
        "graph",
        "keras",
        "graph@mixed_bfloat16",
        "keras@mixed_bfloat16",
    ]
    assert "ratio inference/b4/graph_vs_keras" in completed.stdout
    # precisions side by side, as a speed-up over float32
    assert "ratio inference/b4/graph@mixed_bfloat16_vs_float32" in (
        completed.stdout
    )


def test_command_line_bad_flag_is_one_line():
    completed = run_tool("benchmark", "--model=no_such_net", timeout=300)
    assert completed.returncode == 2
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("kb-benchmark: error: Unknown model 'no_such_net'")
    assert "Traceback" not in completed.stderr


def test_runtime_ratios_are_tf_time_over_the_runtimes():
    from tools import _benchmark_runtimes as runtimes

    measured = {
        "warmup": {("tf", 8): 1.0, ("litert_int8", 8): 3.0},
        "samples": {
            ("tf", 8): [0.4, 0.2, 0.3],
            ("litert_int8", 8): [0.1, 0.12, 0.08],
        },
    }
    results = {r["runtime"]: r for r in runtimes.summarize(measured)}
    assert results["tf"]["vs_tf"] == 1.0
    assert results["litert_int8"]["vs_tf"] == pytest.approx(0.3 / 0.1)
    assert results["litert_int8"]["best_ms"] == pytest.approx(80.0)
    assert results["litert_int8"]["images_per_s"] == pytest.approx(80.0)
    assert results["litert_int8"]["warmup_s"] == 3.0
    table = runtimes.format_runtimes(
        {
            "model": "m",
            "input_shape": [8, 8, 3],
            "threads": 2,
            "rounds": 3,
            "load_average": [1.0, 1.0, 1.0],
            "results": list(results.values()),
        }
    )
    assert "litert_int8       8     100.00     80.00     80.0   3.00x" in table

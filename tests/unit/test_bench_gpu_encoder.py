"""bench/gpu_encoder.py runs as one script; without CUDA it measures and trains on the CPU only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_gpu_bench_runs_its_cpu_path_on_a_tiny_graph(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_encoder.py"), "--nodes", "200",
         "--relations", "4", "--edges", "2000", "--dim", "16", "--batch-size", "200",
         "--seconds", "1", "--threads", "1", "--mrr-epochs", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert [row["layers"] for row in figures["speed"]] == [0, 1]
    assert all(row["cpu"]["epochs_per_s"] > 0 for row in figures["speed"])
    [cpu] = [run for run in figures["trained"] if run["device"] == "cpu"]
    assert cpu["epochs"] == 2 and cpu["s_per_epoch"] > 0 and 0 < cpu["test_mrr"] <= 1
    assert "test MRR" in done.stdout
